/**
 * The shared-note page: read the key from the fragment (never sent to the server), fetch the
 * sealed copy, open it here, render its Markdown sanitized. An expired, revoked or unknown link
 * gets one and the same message; so does a link whose key does not open the copy.
 */

import { openShare, renderMarkdown } from '/shares/static/vendor/couchgate-share.js';

const $ = (id) => document.getElementById(id);

function show(id) {
  $('loading').hidden = true;
  $(id).hidden = false;
  document.body.dataset.state = id;
}

function shareId() {
  const parts = location.pathname.split('/');
  return parts.length === 3 && parts[1] === 's' ? parts[2] : '';
}

async function main() {
  const fragment = location.hash.slice(1);
  const id = shareId();
  if (!fragment || !id) {
    show(fragment ? 'dead' : 'broken');
    return;
  }
  let resp;
  try {
    resp = await fetch(`/s/${encodeURIComponent(id)}/data`, {
      headers: { Accept: 'application/json' }, credentials: 'omit', cache: 'no-store',
    });
  } catch {
    show('dead');
    return;
  }
  if (!resp.ok) {
    show('dead');
    return;
  }
  const copy = await resp.json();
  let note;
  try {
    note = await openShare(fragment, copy.e2e);
  } catch {
    show('broken');
    return;
  }
  $('note-name').textContent = note.name || 'Shared note';
  $('note-body').replaceChildren(renderMarkdown(note.text));
  const expires = new Date(copy.expires);
  $('note-expiry').textContent = copy.burn_after_reading
    ? 'This link worked once and is now used up: keep this page open to read it.'
    : `This link expires ${expires.toLocaleString()}.`;
  const stamp = document.createElement('time');
  stamp.dateTime = copy.expires;
  stamp.id = 'expires-at';
  stamp.hidden = true;
  $('note-expiry').append(stamp);
  show('note');
}

main();
