"""What keeps a localhost server safe from a hostile page or client, independent of Gradio.

- `clean_text`: a question with lone surrogates (undecodable bytes on the command line, `\\ud800`
  in JSON) is cleaned (U+FFFD) so that no encoder, tokenizer or JSON writer fails on it.
- `HostGuard`: answers only requests whose `Host` header names this server (the bound host and
  the localhost forms, or names allowed explicitly): a page on `attacker.example` whose DNS
  name is re-bound to 127.0.0.1 gets a 400, not the corpus (DNS rebinding).
- `LoginBackoff` and `LoginGuard`: after a few failed logins (the chat's login form, or wrong
  HTTP basic / bearer credentials sent to the API), a client must wait (doubling, with a cap)
  before it may try again, and is answered 429 with `Retry-After`; a success resets.
- `ClosedPaths`: routes of the framework that `qa` does not use (Gradio's generic file upload)
  answer 403 before any byte of the body is read.

The middlewares are plain ASGI classes (standard library only): they wrap any ASGI app, e.g.
the `qa serve` FastAPI app (`frontends.server.create_app` adds each pair of `protections()`).
"""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
from typing import Callable, Iterable

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
ANY = "*"
UPLOAD_PATHS = ("/gradio_api/upload",)  # Gradio's generic upload: the chat has no file input

_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (what a UTF-8 decoder shows for a
    bad byte). Such code points cannot be encoded as UTF-8; they come from undecodable bytes
    on the command line (`surrogateescape`) or from `\\ud800` escapes in JSON."""
    return _SURROGATES.sub("\ufffd", text) if _SURROGATES.search(text) else text


# --- Host check ---------------------------------------------------------------------------------


def host_name(header: str | None) -> str | None:
    """The host name of a `Host` header, lower-case, without port or IPv6 brackets
    ("[::1]:7860" → "::1", "LocalHost:80" → "localhost"); None when absent or malformed."""
    if not header:
        return None
    header = header.strip().lower()
    if header.startswith("["):
        name, sep, rest = header[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name or None
    name, sep, port = header.partition(":")
    if sep and not port.isdigit():
        return None
    return name.rstrip(".") or None


def _machine_names() -> set[str]:
    """This machine's host name, fully qualified name and the addresses they resolve to."""
    names = set()
    for name in {socket.gethostname(), socket.getfqdn()}:
        if not name:
            continue
        names.add(name.lower())
        try:
            names.update(info[4][0].lower() for info in socket.getaddrinfo(name, None))
        except OSError:
            pass
    return names


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """The host names a request's `Host` header may name, or None when any is allowed.

    Always the localhost forms; the bound host unless it is a wildcard; for a wildcard bind
    (0.0.0.0, ::) this machine's host names and their addresses; and every name of `extra`
    (commas allowed; `*` allows any Host).
    """
    names = set(LOCAL_NAMES)
    for item in extra:
        for part in str(item).split(","):
            part = part.strip()
            if part == ANY:
                return None
            if part:
                names.add(host_name(part) or part.lower())
    bound = (bound or "").strip().strip("[]").lower()
    if bound in WILDCARDS:
        names |= _machine_names()
    else:
        names.add(bound)
    return frozenset(names)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def _respond(send, status: int, body: dict, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                    *headers],
    })
    await send({"type": "http.response.body", "body": data})


class HostGuard:
    """ASGI middleware: refuse (400) HTTP requests and websockets whose `Host` is not allowed.

    Args:
        app: the ASGI app to protect.
        allowed: host names from `allowed_hosts()` (None: any host, the check is off).
    """

    def __init__(self, app, allowed: Iterable[str] | None):
        self.app = app
        self.allowed = None if allowed is None else frozenset(allowed)

    async def __call__(self, scope, receive, send):
        if self.allowed is not None and scope["type"] in ("http", "websocket"):
            raw = _header(scope, b"host")
            if host_name(raw) not in self.allowed:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                shown = (raw or "")[:100]
                await _respond(send, 400, {"detail": f"Host {shown!r} is not allowed. This server answers to "
                                                     f"{', '.join(sorted(self.allowed))}; start `qa serve` with "
                                                     "--allowed-hosts NAME to allow another name."})
                return
        await self.app(scope, receive, send)


# --- login back-off ------------------------------------------------------------------------------


class LoginBackoff:
    """How long each client must wait before its next login attempt (thread-safe).

    The first `free` failures in a row cost nothing; after failure n > free the client must wait
    `delay(n)` = base · 2^(n - free - 1) seconds, at most `cap`. A success resets the client; so
    does `forget` seconds without a failure. `clock` is injectable for tests.
    """

    def __init__(self, free: int = 3, base: float = 1.0, cap: float = 300.0, forget: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000):
        self.free, self.base, self.cap, self.forget = free, base, cap, forget
        self.clock = clock
        self.max_clients = max_clients
        self._failures: dict[str, tuple[int, float]] = {}  # client -> (failures in a row, last at)
        self._lock = threading.Lock()

    def delay(self, failures: int) -> float:
        """Seconds a client must wait after its `failures`-th failure in a row."""
        if failures <= self.free:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(failures - self.free - 1, 64))

    def _entry(self, client: str, now: float) -> tuple[int, float]:
        count, last = self._failures.get(client, (0, now))
        if count and now - last > max(self.forget, self.delay(count)):
            self._failures.pop(client, None)
            return 0, now
        return count, last

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again (0: now)."""
        with self._lock:
            now = self.clock()
            count, last = self._entry(client, now)
            return max(0.0, last + self.delay(count) - now)

    def failed(self, client: str) -> float:
        """Record a failed login; returns the seconds the client must now wait."""
        with self._lock:
            now = self.clock()
            count, _ = self._entry(client, now)
            if len(self._failures) >= self.max_clients and client not in self._failures:
                self._evict(now)
            self._failures[client] = (count + 1, now)
            return self.delay(count + 1)

    def succeeded(self, client: str) -> None:
        """Record a successful login: the client starts afresh."""
        with self._lock:
            self._failures.pop(client, None)

    def _evict(self, now: float) -> None:
        """Drop clients that may try again already, then (still full) the oldest."""
        for client, (count, last) in list(self._failures.items()):
            if last + self.delay(count) <= now:
                del self._failures[client]
        while len(self._failures) >= self.max_clients:
            del self._failures[min(self._failures, key=lambda c: self._failures[c][1])]


def is_login(scope) -> bool:
    """A POST to a login route (Gradio's is `/login`, under any mount prefix)."""
    return scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path", "").rstrip("/").endswith("/login")


class LoginGuard:
    """ASGI middleware: a client that must wait (`LoginBackoff`) gets 429 with `Retry-After` and
    its attempt is not checked at all. Attempts are POSTs to a login route (200: success; 400,
    401 or 403: failure) and requests carrying credentials in an `Authorization` header, HTTP
    basic or a bearer token (401 or 403: failure; any other answer: success)."""

    def __init__(self, app, backoff: LoginBackoff | None = None):
        self.app = app
        self.backoff = backoff or LoginBackoff()

    async def __call__(self, scope, receive, send):
        login = is_login(scope)
        if not login and not (scope["type"] == "http" and _header(scope, b"authorization")):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        wait = self.backoff.retry_after(client)
        if wait > 0:
            seconds = math.ceil(wait)
            await _respond(send, 429, {"detail": f"Too many failed logins: try again in {seconds} s."},
                           [(b"retry-after", str(seconds).encode())])
            return

        async def send_and_record(message):
            if message["type"] == "http.response.start":
                status = message["status"]
                if status in ((400, 401, 403) if login else (401, 403)):
                    self.backoff.failed(client)
                elif status == 200 or (not login and status < 400):
                    self.backoff.succeeded(client)
            await send(message)

        await self.app(scope, receive, send_and_record)


# --- closed routes -------------------------------------------------------------------------------


class ClosedPaths:
    """ASGI middleware: requests to a path ending with one of `suffixes` get 403 at once, before
    the app reads a byte of their body (so nothing is stored)."""

    def __init__(self, app, suffixes: Iterable[str] = UPLOAD_PATHS,
                 message: str = "File uploads are turned off on this server."):
        self.app = app
        self.suffixes = tuple(s.rstrip("/") for s in suffixes)
        self.message = message

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path", "").rstrip("/").endswith(self.suffixes):
            await _respond(send, 403, {"detail": self.message})
            return
        await self.app(scope, receive, send)


def protections(host: str, extra_hosts: Iterable[str] = (), backoff: LoginBackoff | None = None,
                closed: Iterable[str] = UPLOAD_PATHS) -> list[tuple[type, dict]]:
    """The middlewares of a `qa` web server, outermost first, as (class, keyword arguments):
    `for cls, kwargs in protections(...): app.add_middleware(cls, **kwargs)` in reverse order
    (Starlette's add_middleware puts the last added outermost), or Starlette `Middleware(cls,
    **kwargs)` in this order."""
    return [
        (HostGuard, {"allowed": allowed_hosts(host, extra_hosts)}),
        (ClosedPaths, {"suffixes": tuple(closed)}),
        (LoginGuard, {"backoff": backoff or LoginBackoff()}),
    ]
