/**
 * The one browser module of share links (docs/share-links.md): seal a note under a fresh
 * per-share key, open it again with the key from the link's fragment, and render its Markdown
 * to sanitized HTML. Bundled by build.mjs into static/vendor/couchgate-share.js; the share page
 * and the demo's Share button both import it.
 */

import { Keyring } from '../../../encryption_plugin/js/src/keys.js';
import { openDoc, sealDoc } from '../../../encryption_plugin/js/src/envelope.js';
import { b64uDecode, b64uEncode } from '../../../encryption_plugin/js/src/codec.js';
import { randomBytes } from '../../../encryption_plugin/js/src/random.js';
import DOMPurify from 'dompurify';
import { marked } from 'marked';

export const SHARE_APP_ID = 'couchgate-share';
export const SHARE_DOC_ID = 'share';
const KEY_BYTES = 32;

/** A fresh share key: `{ key, fragment }` (the fragment is the key in base64url). */
export function newShareKey() {
  const key = randomBytes(KEY_BYTES);
  return { key, fragment: b64uEncode(key) };
}

function keyringOf(fragment) {
  const key = b64uDecode(fragment, 'share key');
  if (key.length !== KEY_BYTES) throw new RangeError('a share key is 32 bytes');
  return new Keyring(SHARE_APP_ID, key);
}

/** The share envelope (the ep1 string) of a note `{name, text}` under the fragment's key. */
export async function sealShare(fragment, note) {
  const body = { name: String(note.name ?? ''), type: 'text/markdown', text: String(note.text ?? '') };
  const sealed = await sealDoc({ _id: SHARE_DOC_ID, ...body }, keyringOf(fragment));
  return sealed.e2e;
}

/** The note `{name, type, text}` in a share envelope; throws if the key does not open it. */
export async function openShare(fragment, envelope) {
  const doc = await openDoc({ _id: SHARE_DOC_ID, e2e: envelope }, keyringOf(fragment));
  return { name: String(doc.name ?? ''), type: String(doc.type ?? ''), text: String(doc.text ?? '') };
}

const SAFE_URL = /^(?:https?:|mailto:|#)/i;

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  // Links leave without a referrer or an opener; anything but http(s)/mailto/#anchors goes.
  if (node.hasAttribute('href')) {
    if (!SAFE_URL.test(node.getAttribute('href').trim())) node.removeAttribute('href');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
  if (node.hasAttribute('src')) node.removeAttribute('src');
});

/** Markdown → a DocumentFragment with no script, no handler, no remote image: safe to insert. */
export function renderMarkdown(text) {
  const html = marked.parse(text, { async: false, gfm: true });
  return DOMPurify.sanitize(html, {
    RETURN_DOM_FRAGMENT: true,
    FORBID_TAGS: ['style', 'img', 'iframe', 'form', 'input', 'svg', 'math'],
    FORBID_ATTR: ['style'],
  });
}
