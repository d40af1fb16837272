/**
 * The notes demo's "Share" button: seal one note under a fresh key (the share bundle), send the
 * sealed copy to /shares/api, and show the link. The key exists only in the link's fragment; it
 * never goes to the server and is not kept here.
 */

import { newShareKey, sealShare } from '/shares/static/vendor/couchgate-share.js';

import { api } from './signin.js';

const WEEK_S = 7 * 24 * 3600;

function titleOf(text) {
  const first = text.split('\n', 1)[0].replace(/^#+\s*/, '').trim();
  return first.slice(0, 80) || 'Shared note';
}

/** A Share button for `doc` (a note with `text`), as device `token` of app `app`. */
export function shareButton(doc, { token, app, onProblem }) {
  const wrap = document.createElement('div');
  wrap.className = 'share';
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'link';
  button.textContent = 'Share';
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const { fragment } = newShareKey();
      const e2e = await sealShare(fragment, { name: titleOf(doc.text), text: doc.text });
      const made = await api('POST', '/shares/api', {
        token, body: { e2e, app, expires_in: WEEK_S },
      });
      const link = document.createElement('input');
      link.readOnly = true;
      link.className = 'share-link';
      link.value = `${location.origin}/s/${made.id}#${fragment}`;
      link.setAttribute('aria-label', 'Share link');
      const note = document.createElement('span');
      note.className = 'hint';
      note.textContent = ` Anyone with this link can read this note until ${new Date(made.expires).toLocaleString()}.`;
      wrap.replaceChildren(link, note);
      link.select();
    } catch (err) {
      button.disabled = false;
      onProblem(`Could not share the note: ${err.message}`);
    }
  });
  wrap.append(button);
  return wrap;
}
