"""The `qa serve` server: one FastAPI app (run by uvicorn) holding every front end of the web.

    /               the chat (Gradio, `web.build_app`), its `ask` API under /gradio_api, /source viewer,
                    /library (the document library, `library`)
    /api/v1/...     the REST API (`rest`), docs at /api/v1/docs
    /mcp            the MCP server over streamable HTTP (`mcp_server`)

`create_app()` is the one place where they are put together: add a router or a middleware
there. `serve()` binds 127.0.0.1 by default, keeps the index current (`live.LiveIndex`, unless
`watch=False`) and runs the app until interrupted; `start()` runs it in a background thread
(tests, benchmarks).

Login: with `auth` ("USER:PASSWORD"), the chat asks for it (Gradio's login page) and the API and
MCP need it too, as HTTP basic credentials, as `Authorization: Bearer <QA_API_TOKEN>`, or as the
chat's login cookie. A token without `auth` protects the API and MCP only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import secrets
import socket
import threading
import time
from typing import Callable, Sequence

from ..config import Settings
from ..errors import BadInput, QAError
from ..security import LoginBackoff, protections
from ..security import allowed_hosts as allowed_host_names

log = logging.getLogger(__name__)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """'USER:PASSWORD' as a pair. Raises BadInput when the form is wrong."""
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise BadInput("--auth (QA_AUTH) must look like USER:PASSWORD, both non-empty.")
    return user, password


class Guard:
    """The credentials check of the API and MCP: open when neither a login nor a token is set.

    Accepts HTTP basic with the login, `Bearer <token>`, or the chat's login cookie (set by
    Gradio's /login; `gradio_app` is attached once Gradio is mounted).
    """

    def __init__(self, login: tuple[str, str] | None = None, token: str | None = None):
        self.login = login
        self.token = token or None
        self.gradio_app = None

    @property
    def enabled(self) -> bool:
        return self.login is not None or self.token is not None

    def allows(self, authorization: str | None, cookies: dict | None = None) -> bool:
        if not self.enabled:
            return True
        scheme, _, value = (authorization or "").partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and self.token is not None:
            return secrets.compare_digest(value.encode(), self.token.encode())
        if scheme == "basic" and self.login is not None:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return secrets.compare_digest(user.encode(), self.login[0].encode()) & secrets.compare_digest(
                password.encode(), self.login[1].encode()
            )
        return self._cookie_ok(cookies or {})

    def _cookie_ok(self, cookies: dict) -> bool:
        app = self.gradio_app
        if app is None or self.login is None:
            return False
        cookie_id = getattr(app, "cookie_id", "")
        token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
        return token is not None and app.tokens.get(token) is not None

    def message(self) -> str:
        ways = (["HTTP basic with the --auth user and password"] if self.login else []) + (
            ["Authorization: Bearer <QA_API_TOKEN>"] if self.token else []
        )
        return "Log in first: send " + " or ".join(ways) + "."

    def challenge(self) -> dict:
        return {"WWW-Authenticate": 'Basic realm="qa"' if self.login else 'Bearer realm="qa"'}

    def require(self, authorization: str | None, cookies: dict | None = None) -> None:
        """Raise a 401 HTTPException (a JSON error in the API) unless the credentials are good."""
        if not self.allows(authorization, cookies):
            from starlette.exceptions import HTTPException

            raise HTTPException(401, self.message(), headers=self.challenge())

    def protect(self, asgi_app):
        """`asgi_app` behind this check (for /mcp)."""
        from starlette.requests import Request

        from .rest import error_response

        async def guarded(scope, receive, send):
            if scope["type"] == "http":
                request = Request(scope)
                if not self.allows(request.headers.get("authorization"), request.cookies):
                    return await error_response(401, self.message(), self.challenge())(scope, receive, send)
            await asgi_app(scope, receive, send)

        return _ASGI(guarded)


class _ASGI:
    """An ASGI callable Starlette routes to as an app (not as a request handler)."""

    def __init__(self, fn):
        self.fn = fn

    async def __call__(self, scope, receive, send):
        await self.fn(scope, receive, send)


class BodyLimit:
    """ASGI middleware: a request body over `qa.config.MAX_BODY_BYTES` gets HTTP 413 with the
    message of `qa.limits.check_body_size`, before any handler sees it (bodies without a
    Content-Length are read up to the cap, then replayed)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH") or \
                scope.get("path", "").startswith("/api/") or scope.get("path") == "/library/upload":
            # the REST API (rest.py) and the library's uploads (library.py) have their own caps
            return await self.app(scope, receive, send)
        import json

        from ..config import MAX_BODY_BYTES
        from ..errors import RequestTooLarge
        from ..limits import check_body_size

        length = dict(scope.get("headers") or []).get(b"content-length")
        messages, size = [], 0
        try:
            if length is not None and length.isdigit():
                check_body_size(int(length))
            else:
                while True:
                    message = await receive()
                    messages.append(message)
                    size += len(message.get("body", b""))
                    check_body_size(size)
                    if message["type"] != "http.request" or not message.get("more_body"):
                        break
        except RequestTooLarge as exc:
            body = json.dumps({"error": "too_large", "detail": str(exc), "limit_bytes": MAX_BODY_BYTES}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            return await send({"type": "http.response.body", "body": body})
        if not messages:
            return await self.app(scope, receive, send)

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)


def create_app(settings: Settings, retriever=None, *, auth: str | None = None, api_token: str | None = None,
               host: str = "127.0.0.1", concurrency: int | None = None, allowed_hosts: Sequence[str] = (),
               login_backoff: LoginBackoff | None = None, live=None, allow_upload: bool = False):
    """The whole web server as one FastAPI app: REST API, MCP over HTTP, then the chat at "/".

    Args:
        settings: where the corpus and index are.
        retriever: a loaded `Retriever` for every request; by default the process-wide
            `retriever.default_retriever`, reloaded when a build replaces the index.
        auth: "USER:PASSWORD" for the chat's login, also accepted by the API and MCP.
        api_token: a bearer token the API and MCP accept (QA_API_TOKEN).
        host: the address the server binds (MCP's Host-header check follows it).
        concurrency: questions answered at once, across all front ends (default
            `web.CONCURRENCY`, the chat's queue setting: one gate for the whole process).
        allowed_hosts: Host names answered besides `host` and the localhost forms ("*": any).
        login_backoff: the per-client back-off after failed logins (default `LoginBackoff()`).
        live: a started `live.LiveIndex`: the chat shows its state and a re-index button, and
            the library's uploads and deletions ask it for a build.
        allow_upload: the document library (/library) takes uploads into the corpus.
    Raises:
        BadInput: a malformed `auth`.
        QAError: no usable index.
    """
    import gradio as gr
    from fastapi import FastAPI

    from .._version import __version__
    from . import mcp_server, rest, service, web

    concurrency = concurrency or web.CONCURRENCY
    login = parse_auth(auth)
    guard = Guard(login, api_token)
    shared = service.LiveRetriever(settings, retriever, gate=threading.BoundedSemaphore(concurrency))

    mcp = mcp_server.build_server(settings, shared)
    mcp_http = mcp.streamable_http_app(streamable_http_path="/mcp", host=host)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with mcp.session_manager.run():
            yield

    app = FastAPI(
        title="qa",
        summary="Cited passages from your documents: search, sources, status and source text.",
        version=__version__,
        openapi_url=f"{rest.PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings, app.state.retriever, app.state.guard = settings, shared, guard
    # Front ends. Add a router here (and a middleware anywhere: `app.add_middleware(...)`); a
    # route must come before the two catch-alls below.
    rest.install(app, settings, shared, guard, concurrency=concurrency)
    app.add_route("/mcp", guard.protect(mcp_http), include_in_schema=False)
    # Catch-alls: a JSON 404 for any other /api/v1 path, then the chat, mounted at "/" (Gradio
    # answers every path not matched above).
    rest.add_not_found(app, guard)
    demo = web.build_app(settings, shared, live=live, allow_upload=allow_upload)
    demo.state_session_capacity = web.STATE_SESSIONS  # see web.STATE_SESSIONS
    gr.mount_gradio_app(
        app,
        demo,
        path="/",
        auth=login,
        show_error=True,
        footer_links=["api"],
        theme=web.theme(),
        css=web.CSS,
        head=web.HEAD,
        app_kwargs={"routes": list(getattr(demo, "qa_routes", []))},
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
    )
    guard.gradio_app = app.routes[-1].app  # the Gradio app just mounted: its login cookies count
    app.add_middleware(BodyLimit)  # an oversized body reaches no front end
    # Outermost, before any route: the Host check (DNS rebinding), Gradio's upload closed, the
    # back-off after failed logins (`qa.security`).
    for cls, kwargs in reversed(protections(host, allowed_hosts, login_backoff)):
        app.add_middleware(cls, **kwargs)
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0: a free port).

    Raises:
        BadInput: not a port number.
        QAError: the port is taken (naming `--port N+1` and `make run PORT=N+1`) or the address
            cannot be bound.
    """
    if not 0 <= int(port) <= 65535:
        raise BadInput(f"--port must be a number from 1 to 65535, not {port}.")
    sock = None
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        if sock is not None:
            sock.close()
        taken = getattr(exc, "errno", None) in (98, 48, 10048)  # EADDRINUSE on Linux, macOS, Windows
        raise QAError(
            f"Port {port} on {host} is in use (another server?): choose another, e.g. "
            f"`qa serve --port {int(port) + 1}` or `make run PORT={int(port) + 1}`."
            if taken
            else f"Cannot serve on {host}:{port} ({getattr(exc, 'strerror', None) or exc}): pass --host 127.0.0.1 "
            "(or an address of this machine) and a free --port."
        ) from None
    sock.set_inheritable(True)
    return sock


class Running:
    """A server started by `start()`: its `url`; `close()` stops it."""

    def __init__(self, server, thread: threading.Thread, url: str):
        self.server, self.thread, self.url = server, thread, url

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def _uvicorn(app):
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5, lifespan="on"))


def start(app, host: str = "127.0.0.1", port: int = 0, timeout: float = 60.0) -> Running:
    """Run `app` in a background thread on host:port (0: a free port); returns once it accepts
    connections. The URL ends with "/"."""
    sock = bind(host, port)
    server = _uvicorn(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="qa-server")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise QAError(f"The server on {host}:{sock.getsockname()[1]} did not start.")
        time.sleep(0.02)
    return Running(server, thread, f"http://{host}:{sock.getsockname()[1]}/")


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, auth: str | None = None,
          api_token: str | None = None, say: Callable[[str], None] = log.warning,
          allowed_hosts: Sequence[str] = (), watch: bool = True, allow_upload: bool = False,
          sock: socket.socket | None = None) -> None:
    """Serve the chat, the REST API and MCP until interrupted (what `qa serve` runs).

    Args:
        watch: re-index when the corpus changes (with False, only when the page asks).
        allow_upload: the document library takes uploads into the corpus.
        sock: a socket already bound by `bind(host, port)` (the CLI binds before building).
    Raises:
        BadInput: a malformed `auth`.
        QAError: the port is taken, or no usable index.
    """
    parse_auth(auth)
    if host not in LOCAL_HOSTS:
        names = allowed_host_names(host, allowed_hosts)
        say(
            f"Warning: serving on {host}, reachable from other machines"
            + ("" if auth else "; anyone who can reach it can read the corpus. Consider --auth-file FILE")
            + ". "
            + ("Any Host name is answered (--allowed-hosts '*')." if names is None else
               f"Host names answered: {', '.join(sorted(names))} (add others with --allowed-hosts NAME,...).")
        )
    if api_token and not auth:
        say("Note: QA_API_TOKEN protects /api/v1 and /mcp; the chat has no login without --auth.")
    sock = sock or bind(host, port)  # before any slow work: a taken port is said at once
    from ..retriever import default_retriever
    from .live import LiveIndex

    try:
        default_retriever(settings, build_if_missing=False).search("warm up the model", 1)  # load it now, once
    except QAError as exc:
        say(f"qa: {exc} Serving anyway: the chat shows this message until the index is repaired.")
    # Keeps the index current in the background (with watch=False only when the page asks).
    live = LiveIndex(settings, watch=watch).start()
    try:
        app = create_app(settings, auth=auth, api_token=api_token, host=host, allowed_hosts=allowed_hosts,
                         live=live, allow_upload=allow_upload)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        base = f"http://{shown}:{port or sock.getsockname()[1]}"
        say(f"qa: web chat on {base}" + (" (login required)" if auth else "") + "  (Ctrl+C to stop)")
        say(f"    REST API {base}/api/v1 (docs {base}/api/v1/docs), MCP {base}/mcp, documents {base}/library")
        _uvicorn(app).run(sockets=[sock])
    finally:
        live.stop()
