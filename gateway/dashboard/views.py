"""The dashboard's pages. Every page needs the admin session; every form post passes the CSRF
checks of :mod:`gateway.dashboard.session` before anything changes.

What the admin sees of a user is what the server holds anyway: ids, dates, device names, and
per app a document count and size. Documents are ciphertext and are never opened or shown.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from gateway import keys
from gateway.accounts import lifecycle
from gateway.auth import tokens
from gateway.auth.records.base import iso
from gateway.auth.records.devices import Device
from gateway.auth.records.users import User
from gateway.config import APP_NAME
from gateway.dashboard import session
from gateway.dashboard.figures import figures
from gateway.dashboard.records import AdminRecords, verify_password
from gateway.errors import NotFound, TooLarge
from gateway.shares import SHARES
from gateway.web import links

USERS_PER_PAGE = 50
LOGIN_FORM_LIMIT = 16 * 1024

routes = web.RouteTableDef()

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make form posts send Origin: null
    "Cache-Control": "no-store",
}


def render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> web.Response:
    response = aiohttp_jinja2.render_template(
        template, request, context, app_key=keys.JINJA, status=status
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location, headers=SECURITY_HEADERS)


async def admin(request: web.Request) -> session.AdminSession:
    """The admin session, or a redirect to the sign-in page."""
    current = await session.current(request)
    if current is None:
        raise redirect("/admin/login")
    return current


def _uid(request: web.Request) -> str:
    uid = request.match_info["uid"]
    if not tokens.is_id(uid):
        raise NotFound("no such user")
    return uid


async def _user(request: web.Request) -> User:
    user = await request.config_dict[keys.IDENTITIES].user(_uid(request))
    if user is None:
        raise NotFound("no such user")
    return user


def _app_name(request: web.Request, user: User) -> str:
    name = request.match_info["app"]
    if not APP_NAME.match(name) or name not in user.apps:
        raise NotFound("no such app")
    return name


def _last_seen(devices: list[Device]) -> str:
    return iso(max(d.last_seen for d in devices)) if devices else "never"


# -- signing in -----------------------------------------------------------------------------


@routes.get("/admin")
async def bare(request: web.Request) -> web.Response:
    raise redirect("/admin/")


@routes.get("/admin/login")
async def login_page(request: web.Request) -> web.Response:
    records = AdminRecords(request.config_dict[keys.BACKEND].records)
    configured = await records.password_hash() is not None
    return render(request, "login.html", {"configured": configured, "error": None})


@routes.post("/admin/login")
async def login(request: web.Request) -> web.Response:
    session.check_same_site(request)
    # Unauthenticated: read a small form only, and spend the caller's sign-in budget first.
    if request.content_length is None or request.content_length > LOGIN_FORM_LIMIT:
        raise TooLarge("the sign-in form is larger than it can be")
    request.config_dict[keys.LIMITS].check_password_attempt(request)
    form = await request.post()
    password = form.get("password")
    records = AdminRecords(request.config_dict[keys.BACKEND].records)
    hashed = await records.password_hash()
    if hashed is None:
        return render(request, "login.html", {"configured": False, "error": None}, status=401)
    if not isinstance(password, str) or not await verify_password(hashed, password):
        context = {"configured": True, "error": "That is not the admin password."}
        return render(request, "login.html", context, status=401)
    response = redirect("/admin/")
    session.start(request, response, hashed)
    raise response


@routes.post("/admin/logout")
async def logout(request: web.Request) -> web.Response:
    await session.check_form(request, await admin(request))
    response = redirect("/admin/login")
    session.end(response)
    raise response


# -- overview, find -------------------------------------------------------------------------


def _page_number(request: web.Request) -> int:
    try:
        return max(0, int(request.query.get("page", "0")))
    except ValueError:
        return 0


async def _overview(request: web.Request, current: session.AdminSession, **extra: Any) -> Any:
    identities = request.config_dict[keys.IDENTITIES]
    backend = request.config_dict[keys.BACKEND]
    users = sorted(await identities.users.all(), key=lambda u: u.created, reverse=True)
    devices = await identities.devices.all()
    by_user: dict[str, list[Device]] = {}
    for device in devices:
        by_user.setdefault(device.uid, []).append(device)
    pages = max(1, -(-len(users) // USERS_PER_PAGE))
    page = min(_page_number(request), pages - 1)
    shown = users[page * USERS_PER_PAGE : (page + 1) * USERS_PER_PAGE]
    # One db-info call per app of each user shown: asked at once, not one after the other.
    usages = await asyncio.gather(*(lifecycle.usage(backend, user) for user in shown))
    share_counts = await request.config_dict[SHARES].counts()
    rows = [
        {
            "uid": user.uid,
            "created": iso(user.created),
            "last_seen": _last_seen(by_user.get(user.uid, [])),
            "devices": len(by_user.get(user.uid, [])),
            "apps": usage,
            "shares": share_counts.get(user.uid, 0),
        }
        for user, usage in zip(shown, usages, strict=True)
    ]
    settings = request.config_dict[keys.SETTINGS]
    context = {
        "csrf": current.csrf,
        "rows": rows,
        "page": page,
        "pages": pages,
        "figures": figures(request, len(users), len(devices)),
        "registration": settings.registration,
        "allowlist": settings.allowlist,
        "find_error": None,
        **extra,
    }
    return context


@routes.get("/admin/")
async def overview(request: web.Request) -> web.Response:
    current = await admin(request)
    return render(request, "overview.html", await _overview(request, current))


@routes.post("/admin/find")
async def find(request: web.Request) -> web.Response:
    """Find an account by address: hashed with the same keyed HMAC as at sign-in, then looked
    up; the address is neither stored nor logged."""
    current = await admin(request)
    form = await session.check_form(request, current)
    email = form.get("email", "").strip()
    if tokens.is_email(email):
        email_hmac = request.config_dict[keys.AUTH_KEYS].email_hmac(email)
        uid = await request.config_dict[keys.IDENTITIES].users.for_email(email_hmac)
        if uid is not None:
            raise redirect(f"/admin/users/{uid}")
        problem = "No account has that address."
    else:
        problem = "That is not an email address."
    context = await _overview(request, current, find_error=problem)
    return render(request, "overview.html", context, status=404)


# -- one user -------------------------------------------------------------------------------


@routes.get("/admin/users/{uid}")
async def user_page(request: web.Request) -> web.Response:
    current = await admin(request)
    user = await _user(request)
    devices = await request.config_dict[keys.IDENTITIES].devices.of(user.uid)
    context = {
        "csrf": current.csrf,
        "user": user,
        "created": iso(user.created),
        "last_seen": _last_seen(devices),
        "devices": [d.public() for d in sorted(devices, key=lambda d: d.created)],
        "apps": await lifecycle.usage(request.config_dict[keys.BACKEND], user),
        "notice": request.query.get("done"),
    }
    return render(request, "user.html", context)


@routes.post("/admin/users/{uid}/devices/{device}/revoke")
async def revoke_device(request: web.Request) -> web.Response:
    await session.check_form(request, await admin(request))
    uid = _uid(request)
    device = request.match_info["device"]
    if not tokens.is_id(device):
        raise NotFound("no such device")
    await lifecycle.revoke(request.app, uid, device)
    raise redirect(f"/admin/users/{uid}?done=revoked")


@routes.get("/admin/users/{uid}/apps/{app}/delete")
async def confirm_delete_app(request: web.Request) -> web.Response:
    current = await admin(request)
    user = await _user(request)
    name = _app_name(request, user)
    usage = await lifecycle.app_usage(request.config_dict[keys.BACKEND], user.uid, name)
    context = {"csrf": current.csrf, "user": user, "what": "app", "app": name, "usage": usage}
    return render(request, "confirm.html", context)


@routes.post("/admin/users/{uid}/apps/{app}/delete")
async def delete_app(request: web.Request) -> web.Response:
    await session.check_form(request, await admin(request))
    user = await _user(request)
    name = _app_name(request, user)
    await lifecycle.delete_app_data(request.app, user.uid, name)
    raise redirect(f"/admin/users/{user.uid}?done=deleted")


@routes.get("/admin/users/{uid}/delete")
async def confirm_delete_user(request: web.Request) -> web.Response:
    current = await admin(request)
    user = await _user(request)
    context = {"csrf": current.csrf, "user": user, "what": "account", "app": None, "usage": None}
    return render(request, "confirm.html", context)


@routes.post("/admin/users/{uid}/delete")
async def delete_user(request: web.Request) -> web.Response:
    await session.check_form(request, await admin(request))
    user = await _user(request)
    await lifecycle.delete_account(request.app, user.uid)
    raise redirect("/admin/")


# -- invitations ----------------------------------------------------------------------------


@routes.get("/admin/invitations")
async def invitations(request: web.Request) -> web.Response:
    current = await admin(request)
    return render(request, "invite.html", {"csrf": current.csrf, "invite": None, "error": None})


@routes.post("/admin/invitations")
async def invite(request: web.Request) -> web.Response:
    """A new account (or the existing one of an address) and a single-use enrollment code for it,
    shown once as text and as a QR code that opens the demo with the code filled in."""
    current = await admin(request)
    form = await session.check_form(request, current)
    email = form.get("email", "").strip()
    if email and not tokens.is_email(email):
        context = {"csrf": current.csrf, "invite": None, "error": "That is not an email address."}
        return render(request, "invite.html", context, status=400)
    identities = request.config_dict[keys.IDENTITIES]
    email_hmac = request.config_dict[keys.AUTH_KEYS].email_hmac(email) if email else None
    uid, created = await identities.users.create(email_hmac)
    code, expires = await identities.grants.create("enroll", uid)
    # Only from configuration: the Host header is the client's to choose (see gateway.web.links).
    base = links.public_base(request.config_dict[keys.SETTINGS])
    link = None if base is None else links.enroll_link(base, code)
    invite = {
        "uid": uid,
        "created": created,
        "code": code,
        "expires": iso(expires),
        "link": link,
        "qr": None if link is None else links.qr_svg(link),
        "made": iso(time.time()),
    }
    return render(request, "invite.html", {"csrf": current.csrf, "invite": invite, "error": None})
