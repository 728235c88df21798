"""The sandbox's web chat: a Telegram-like page at ``GET /`` for looking at and poking a bot.

A person (or a browser test) picks a sandbox user, then one of that user's chats, and sees the
chat as that user sees it: formatted text, photos, inline keyboards that can be pressed, the
reply keyboard, and edits applied in place. Everything the page does goes through the public
control API (``/sandbox/...``), the same one tests use, so the page can show nothing a test
could not check and can do nothing a test could not do.

The page is plain HTML, CSS and JavaScript shipped as package data: no build step, and nothing
is fetched from outside loopback. A Content-Security-Policy pins every request to this origin,
and the script builds the DOM from text nodes only, so no message text can become markup.
"""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web

__all__ = ["STATIC_PREFIX", "setup_webchat"]

STATIC_PREFIX = "/webchat/static"

_CONTENT_TYPES = {
    "webchat.css": "text/css",
    "webchat.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> bytes:
    return files(__name__).joinpath("static", name).read_bytes()


def setup_webchat(app: web.Application) -> None:
    """Register GET / and the page's static assets on the sandbox application."""
    page = _asset("index.html")
    assets = {name: _asset(name) for name in _CONTENT_TYPES}

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8", headers=_HEADERS)

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = assets.get(name)
        if body is None:
            raise web.HTTPNotFound(text=f"no such web chat asset: {name}")
        return web.Response(body=body, content_type=_CONTENT_TYPES[name], headers=_HEADERS)

    app.router.add_get("/", index)
    app.router.add_get(STATIC_PREFIX + "/{name}", static)
