// The notes collection both RxDB drivers open (rxdb.mjs under Node, rxdb-browser.mjs in
// Chromium): documents {id, text, n}, RxDB's primary key "id", and the fields of a note of
// docs/notes-format.md (path, created, mtime, size, device), so an RxDB app and couchgate-sync
// share the notes. And the benchmark's notes, written as an app writes them.

import { generateDocs } from './driver.mjs';

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

/**
 * The bench's notes as RxDB documents (primary key "id"), written `batchSize` at a time, as an
 * app writes them over time. One bulkInsert of them all would give every row one write time
 * (_meta.lwt), and RxDB's push then finds each batch by walking that run of equal times from its
 * start: its own cost, growing with the square of the count, whatever the replication sends.
 */
export function benchDocs(count, size) {
  return generateDocs(count, { size }).map(({ _id, ...rest }) => ({ id: _id, ...rest }));
}

export async function writeInBatches(collection, docs, batchSize = 100) {
  for (let at = 0; at < docs.length; at += batchSize) {
    await collection.bulkInsert(docs.slice(at, at + batchSize));
  }
}
