"""The web app's guard: an access token off loopback, a body-size limit, same-origin form posts and the security
headers of every response (a Content-Security-Policy without inline scripts among them).

:class:`Guard` is a plain ASGI middleware (no framework needed). It never logs a request's body or query string,
so no patient data and no token reach a log.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
"""The Content-Security-Policy of every page: scripts only from the app's own static files (no inline script, no
``eval``), style sheets only from the app (inline ``style`` attributes allowed for the report's colour swatches),
images from the app or ``data:`` URIs, nothing fetched from elsewhere, no framing."""

SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # (no-referrer would make browsers send Origin: null on posts)
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
}
"""Headers added to every response (a response may set its own ``content-security-policy`` first)."""

COOKIE = "chemomet_token"
"""The cookie that carries the token once a browser has given it (``?token=...`` on its first request)."""

TOKEN_ENV = "CHEMOMET_TOKEN"
"""The environment variable that gives the token (otherwise one is made and printed once at start)."""

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only.

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, True, False)
    >>> is_loopback("192.168.1.20")
    False
    """
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh random access token (URL-safe, 192 bits).

    Examples
    --------
    >>> len(new_token()) >= 32
    True
    """
    return secrets.token_urlsafe(24)


class Guard:
    """ASGI middleware around the app: token check, loopback ``Host`` check, same-origin posts, a body-size limit
    and the security headers.

    Parameters
    ----------
    app : ASGI application
        The app it guards.
    token : str or None
        When given, every request must carry it (``Authorization: Bearer TOKEN``, the :data:`COOKIE` cookie, or
        ``?token=TOKEN``, which sets the cookie and redirects to the same address without it); otherwise 401.
    max_body : int
        Largest request body accepted (bytes); more gives 413, checked on ``Content-Length`` before the app runs
        and on the bytes as they stream in.
    upload_paths : dict of str to int, optional
        Paths with their own (larger) body limit, e.g. ``{"/tissue": 64 MiB}``.
    allowed_hosts : tuple of str, optional
        Without a token, only requests whose ``Host`` is one of these (any port) are served (421 otherwise): a
        web page cannot reach the loopback app through a rebound DNS name. Default: the loopback names.

    Examples
    --------
    >>> async def app(scope, receive, send):
    ...     pass
    >>> Guard(app, token=None, max_body=1024).token is None
    True
    """

    def __init__(self, app, token: str | None, max_body: int, upload_paths: dict[str, int] | None = None,
                 allowed_hosts: tuple[str, ...] | None = None):
        self.app = app
        self.token = token
        self.max_body = int(max_body)
        self.upload_paths = dict(upload_paths or {})
        self.allowed_hosts = tuple(h.lower().strip("[]") for h in (allowed_hosts or LOOPBACK_NAMES))

    # ------------------------------------------------------------------------------------------------ helpers

    @staticmethod
    def _headers(scope) -> dict[str, str]:
        return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}

    def _authorised(self, scope, headers) -> tuple[bool, bool]:
        """(carries the token, carried it in the query string)."""
        if self.token is None:
            return True, False
        given: list[str] = []
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        if "cookie" in headers:
            cookie = SimpleCookie()
            try:
                cookie.load(headers["cookie"])
            except Exception:  # a malformed cookie header: ignored
                pass
            if COOKIE in cookie:
                given.append(cookie[COOKIE].value)
        query = [v for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1")) if k == "token"]
        ok = any(hmac.compare_digest(g.encode(), self.token.encode()) for g in given)
        in_query = bool(query) and any(hmac.compare_digest(q.encode(), self.token.encode()) for q in query)
        return ok or in_query, in_query and not ok

    def _limit(self, path: str) -> int:
        return self.upload_paths.get(path.rstrip("/") or "/", self.max_body)

    async def _plain(self, send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        body = text.encode("utf-8")
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
        headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()] + (extra or [])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # ---------------------------------------------------------------------------------------------------- ASGI

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = self._headers(scope)
        if self.token is None:
            host = headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
            if name.lower() not in self.allowed_hosts:
                return await self._plain(send, 421, "Misdirected request: this app answers on loopback only.\n")
        ok, via_query = self._authorised(scope, headers)
        if not ok:
            return await self._plain(send, 401, "Unauthorized: this chemomet app needs its access token.\n",
                                     [(b"www-authenticate", b'Bearer realm="chemomet"')])
        if via_query:  # remember the token in a cookie and drop it from the address bar (and from any history)
            rest = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1")) if k != "token"]
            location = scope.get("path", "/") + (f"?{urlencode(rest)}" if rest else "")
            cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
            return await self._plain(send, 303, "See other\n",
                                     [(b"location", location.encode()), (b"set-cookie", cookie.encode())])
        if scope.get("method") == "POST":
            origin = headers.get("origin")
            if origin and origin != "null" and origin.split("://", 1)[-1] != headers.get("host", ""):
                return await self._plain(send, 403, "Forbidden: a form of another site cannot post here.\n")
            if origin == "null":
                return await self._plain(send, 403, "Forbidden: a form of another site cannot post here.\n")
        limit = self._limit(scope.get("path", "/"))
        length = headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                return await self._plain(send, 400, "Bad request: Content-Length is not a number.\n")
            if too_big:
                return await self._plain(send, 413, f"Payload too large: at most {limit} bytes.\n")
        received = 0
        started = refused = False

        async def counted_receive():
            nonlocal received, started, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # answer 413 now; the app sees the client gone and its reply is dropped
                    refused = True
                    if not started:
                        started = True
                        await self._plain(send, 413, f"Payload too large: at most {limit} bytes.\n")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in have]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise
