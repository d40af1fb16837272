"""couchgate: an end-to-end-encrypted sync gateway for the CouchDB replication protocol."""

__version__ = "0.1.0"
