"""``GET /``: a small page for a person who opens couchgate in a browser, and CouchDB's JSON
welcome for everything else.

CouchDB clients (PouchDB, the replicator, ``curl``) ask for ``/`` to see what they talk to and
expect JSON, usually with ``Accept: application/json``, ``*/*`` or no Accept at all; so only a
request that prefers ``text/html`` outright gets the page, and a tie goes to JSON.
"""

from __future__ import annotations

import html

import mimeparse
from aiohttp import hdrs, web

from gateway import __version__, keys
from gateway.web import links

# The page runs no scripts and loads nothing: its one style sheet is inline.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    hdrs.VARY: "Accept",
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>couchgate</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 0 auto;
         padding: 1rem; color: #1d2330; }}
  h1 {{ margin-bottom: 0; }} .version {{ color: #5b6475; margin-top: 0; }}
  ul.links {{ padding: 0; list-style: none; }}
  ul.links li {{ margin: .4rem 0; }} ul.links a {{ font-weight: 600; }}
  pre {{ background: #f2f4f8; padding: .75rem; overflow-x: auto; border-radius: 6px; }}
  code {{ font-size: .9em; }}
</style>
</head>
<body>
<h1>couchgate</h1>
<p class="version">version {version}</p>
<p>An end-to-end-encrypted sync server for local-first apps. Devices keep their data, seal it
  before it leaves them, and replicate it through couchgate; this server stores only ciphertext.</p>
<ul class="links">
  <li><a href="/demo/" id="demo">The demo app</a>: encrypted notes that sync between your
    devices; pair a second one with a QR code.</li>
  <li><a href="/account" id="account">Your account</a>: your devices and your data, to revoke
    or delete.</li>
  <li><a href="/admin/" id="admin">The admin dashboard</a>: users, devices, invitations
    (its password is set with <code>couchgate admin set-password</code>).</li>
</ul>
<h2>For developers</h2>
<p>Each signed-in user has a CouchDB database per app at <code>{base}/db/&lt;app&gt;</code>.
  Point PouchDB at it with the device's token, and seal documents with the encryption plugin:</p>
<pre><code>const remote = new PouchDB('{base}/db/notes', {{
  fetch: (url, opts) =&gt; {{
    opts.headers.set('Authorization', 'Bearer ' + token);
    return PouchDB.fetch(url, opts);
  }},
}});
await remote.useEncryption(exportString);   // the key never reaches the server
local.sync(remote, {{ live: true, retry: true }});</code></pre>
<p>A token comes from <code>POST /auth/enroll</code> with a code from
  <code>couchgate users add</code>; the steps are in <code>docs/quickstart-app.md</code> of
  couchgate's source.</p>
</body>
</html>
"""


def wants_html(accept: str | None) -> bool:
    """True when the client prefers an HTML page over JSON; ties and no Accept go to JSON."""
    if not accept:
        return False
    # best_match gives a tie to the last of the offers.
    return bool(mimeparse.best_match(["text/html", "application/json"], accept) == "text/html")


async def root(request: web.Request) -> web.Response:
    if not wants_html(request.headers.get(hdrs.ACCEPT)):
        return web.json_response(
            {"couchgate": "Welcome", "version": __version__}, headers={hdrs.VARY: "Accept"}
        )
    # The address in the example comes from configuration, never from the Host header.
    base = links.site_url(request.config_dict[keys.SETTINGS])
    page = _PAGE.format(version=html.escape(__version__), base=html.escape(base))
    return web.Response(text=page, content_type="text/html", headers=_PAGE_HEADERS)
