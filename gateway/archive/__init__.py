"""Encrypted export and import of a person's data (docs/export.md): one newline-delimited JSON
archive of every app, documents as sealed as on the server, with their revision histories, so
another couchgate takes them back and devices carry on replicating without a conflict."""
