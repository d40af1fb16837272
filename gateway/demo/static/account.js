/**
 * The account page: devices, remote copies and the account itself, through /account/api with
 * the device token the notes demo stored (or one from the sign-in forms here).
 */

import { api, forgetSession, loadSession, saveSession, wireSignInForms } from './signin.js';

const $ = (id) => document.getElementById(id);
let session = loadSession();

function problem(text) {
  $('problem').textContent = text || '';
  $('problem').hidden = !text;
}

function size(bytes) {
  if (bytes == null) return '?';
  if (bytes < 1024) return `${bytes} B`;
  return bytes < 1048576 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1048576).toFixed(1)} MB`;
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

function button(label, onClick) {
  const td = document.createElement('td');
  const b = document.createElement('button');
  b.textContent = label;
  b.className = 'danger';
  b.addEventListener('click', () => onClick().catch((err) => problem(err.message)));
  td.append(b);
  return td;
}

async function load() {
  const call = (method, path) => api(method, path, { token: session.token });
  let devices;
  try {
    devices = await call('GET', '/account/api/devices');
  } catch (err) {
    if (err.status === 401) {
      forgetSession();
      session = null;
      $('account').hidden = true;
      $('signin').hidden = false;
      problem('This device was signed out (revoked). Sign in again.');
      return;
    }
    throw err;
  }
  $('signin').hidden = true;
  $('account').hidden = false;
  $('devices').replaceChildren(...devices.map((d) => {
    const tr = document.createElement('tr');
    tr.append(cell(d.current ? `${d.name} (this device)` : d.name), cell(d.last_seen),
      button(d.current ? 'Sign out' : 'Revoke', async () => {
        await call('DELETE', `/account/api/devices/${d.id}`);
        if (d.current) {
          forgetSession();
          location.reload();
        } else {
          await load();
        }
      }));
    return tr;
  }));
  const apps = await call('GET', '/account/api/apps');
  $('apps').replaceChildren(...apps.map((a) => {
    const tr = document.createElement('tr');
    tr.append(cell(a.app), cell(a.doc_count ?? '?'), cell(size(a.size)),
      button('Delete remote copy', async () => {
        if (!confirm(`Delete the server's copy of ${a.app}?`)) return;
        await call('DELETE', `/account/api/apps/${encodeURIComponent(a.app)}`);
        $('notice').textContent = `Deleted the server's copy of ${a.app}.`;
        await load();
      }));
    return tr;
  }));
  const shares = await call('GET', '/shares/api');
  $('shares').replaceChildren(...shares.map((sh) => {
    const tr = document.createElement('tr');
    tr.dataset.share = sh.id;
    // Links belong to the account: one made by a device revoked since stays live until revoked here.
    const maker = devices.find((d) => d.id === sh.device);
    tr.append(cell(sh.app), cell(maker ? maker.name : 'a device no longer signed in'),
      cell(sh.burn_after_reading ? `${sh.expires} (once)` : sh.expires),
      cell(size(sh.size)), button('Revoke', async () => {
        await call('DELETE', `/shares/api/${encodeURIComponent(sh.id)}`);
        $('notice').textContent = 'Revoked the share link.';
        await load();
      }));
    return tr;
  }));
}

$('export').addEventListener('click', async () => {
  // The browser holds the archive until it is saved; `couchgate-sync export` streams to disk.
  try {
    const resp = await fetch('/account/api/export', {
      headers: { Authorization: `Bearer ${session.token}` }, credentials: 'omit',
    });
    if (!resp.ok) throw new Error((await resp.json().catch(() => ({}))).reason || resp.statusText);
    const url = URL.createObjectURL(await resp.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = `couchgate-export-${new Date().toISOString().slice(0, 10)}.ndjson`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    $('notice').textContent = 'Export downloaded.';
  } catch (err) {
    problem(`The export failed: ${err.message}`);
  }
});

$('delete-account').addEventListener('click', async () => {
  if (!confirm('Delete your account and everything on this server? This cannot be undone.')) return;
  try {
    await api('DELETE', '/account/api', { token: session.token });
    forgetSession();
    location.replace('/demo/');
  } catch (err) {
    problem(err.message);
  }
});

wireSignInForms(document, {
  deviceName: () => 'Account page',
  onSignedIn: (signed) => {
    session = { ...(loadSession() || {}), ...signed };
    saveSession(session);
    problem('');
    load().catch((err) => problem(err.message));
  },
  onProblem: problem,
});

if (session?.token) load().catch((err) => problem(err.message));
else $('signin').hidden = false;
