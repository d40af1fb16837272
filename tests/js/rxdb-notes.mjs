// The notes collection both RxDB drivers open (rxdb.mjs under Node, rxdb-browser.mjs in
// Chromium): documents {id, text, n}, RxDB's primary key "id", and the fields of a note of
// docs/notes-format.md (path, created, mtime, size, device), so an RxDB app and couchgate-sync
// share the notes.

export const NOTE_SCHEMA = {
  version: 0,
  primaryKey: 'id',
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 128 },
    text: { type: 'string' },
    n: { type: 'number' },
    path: { type: 'string' },
    created: { type: 'string' },
    mtime: { type: 'number' },
    size: { type: 'number' },
    device: { type: 'string' },
  },
  required: ['id'],
};

/** A document as the app wrote it: RxDB's own _meta, _rev and _attachments left out. */
export function plain(doc) {
  const { _meta, _rev, _attachments, ...rest } = doc.toJSON(true);
  return rest;
}
