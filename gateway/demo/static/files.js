/**
 * Files and kept versions in the notes demo (docs/notes-format.md): what the page lists besides
 * notes, and how it gets their bytes when someone opens one.
 *
 * The remote handle leaves attachments on the server (`attachments: 'on-demand'`), so the local
 * database holds every document's body but no attachment's bytes: a binary file, a binary
 * version and a chunk each carry `$remote_attachments` instead, and opening one fetches exactly
 * the attachments it needs (a large file: one per chunk it lists) with getRemoteAttachment. A
 * device that replicates everything instead has them in the local database; both are read here.
 */

import { REMOTE_ATTACHMENTS } from './vendor/couchgate-ep1.js';

/** Whether `doc` is a file the note list does not show: binary, or large (in chunks). */
export function isFile(doc) {
  return doc.kind === undefined && doc.text === undefined && typeof doc.path === 'string'
    && (Array.isArray(doc.chunks) || hasAttachment(doc, 'content'));
}

function hasAttachment(doc, name) {
  return Boolean(doc._attachments?.[name] || doc[REMOTE_ATTACHMENTS]?.[name]);
}

/** The kept versions in `docs`, by the id of the file they are a version of, newest first. */
export function versionsByFile(docs) {
  const byFile = new Map();
  for (const doc of docs) {
    if (doc.kind !== 'version' || typeof doc.of !== 'string') continue;
    if (!byFile.has(doc.of)) byFile.set(doc.of, []);
    byFile.get(doc.of).push(doc);
  }
  for (const list of byFile.values()) list.sort((a, b) => (b.mtime ?? 0) - (a.mtime ?? 0));
  return byFile;
}

async function attachment(doc, name, { local, remote }) {
  if (doc._attachments?.[name]) return local.getAttachment(doc._id, name, { rev: doc._rev });
  return remote.getRemoteAttachment(doc, name);
}

/**
 * The bytes of a file or version document, as a Blob: its text, its attachment, or its chunks
 * in order (each chunk document's body is local; its attachment is fetched when not).
 */
export async function contentOf(doc, dbs) {
  const text = doc.kind === 'version' ? doc.content : doc.text;
  if (typeof text === 'string') return new Blob([text], { type: 'text/plain' });
  if (Array.isArray(doc.chunks)) {
    const pieces = await Promise.all(doc.chunks.map(async (id) => {
      const chunk = await dbs.local.get(id).catch(() => {
        throw new Error('a piece of this file has not synced to this device yet');
      });
      return attachment(chunk, 'content', dbs);
    }));
    return new Blob(pieces);
  }
  return attachment(doc, 'content', dbs);
}

function sizeText(bytes) {
  if (typeof bytes !== 'number') return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1 << 20) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1 << 20)).toFixed(1)} MB`;
}

function basename(path) {
  return path.split('/').pop() || 'file';
}

/**
 * A button that opens `doc`: fetches its bytes and puts a download link (and, for text, the
 * text) in its place. `data-doc` lets a test find what it opened.
 */
export function openButton(doc, label, dbs, onProblem) {
  const wrap = document.createElement('div');
  wrap.className = 'open';
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'link';
  button.textContent = label;
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const blob = await contentOf(doc, dbs);
      const link = document.createElement('a');
      link.href = URL.createObjectURL(blob);
      link.download = basename(doc.path ?? doc._id);
      link.dataset.doc = doc._id;
      link.textContent = `Save ${link.download} (${sizeText(blob.size)})`;
      const parts = [link];
      if (blob.type === 'text/plain') {
        const pre = document.createElement('pre');
        pre.textContent = await blob.text();
        parts.push(pre);
      }
      wrap.replaceChildren(...parts);
    } catch (err) {
      button.disabled = false;
      onProblem(`Could not open it: ${err.message || err.reason}`);
    }
  });
  wrap.append(button);
  return wrap;
}

/** One list item per file (path, size, Open), each with its History when it has versions. */
export function fileItems(files, versions, dbs, onProblem) {
  return files.map((doc) => {
    const item = document.createElement('li');
    item.dataset.path = doc.path;
    const name = document.createElement('strong');
    name.textContent = doc.path;
    const size = document.createElement('span');
    size.className = 'hint';
    size.textContent = ` ${sizeText(doc.size)}`;
    item.append(name, size, openButton(doc, 'Open', dbs, onProblem));
    const kept = versions.get(doc._id);
    if (kept) item.append(historyList(kept, dbs, onProblem));
    return item;
  });
}

/** The kept versions of one file or note, folded: each is opened only when asked. */
export function historyList(kept, dbs, onProblem) {
  const details = document.createElement('details');
  details.className = 'history';
  const summary = document.createElement('summary');
  summary.textContent = `History (${kept.length})`;
  const list = document.createElement('ul');
  list.replaceChildren(...kept.map((version) => {
    const item = document.createElement('li');
    const when = new Date(version.mtime ?? version.created).toLocaleString();
    item.append(`${when} · ${version.device ?? ''} · ${sizeText(version.size)} `,
      openButton(version, 'Show', dbs, onProblem));
    return item;
  }));
  details.append(summary, list);
  return details;
}
