"""The REST API, version 1, under /api/v1 of the `qa serve` server.

    POST /api/v1/search   {"question": ..., "k": 5, "sources": [...]}  → the `qa ask --json` record
    GET  /api/v1/sources                                               → indexed files, passages, changed?
    GET  /api/v1/status                                                → the `qa status --json` record
    GET  /api/v1/source?file=…&lines=a-b                               → the text of those lines
    GET  /api/v1/docs, /api/v1/openapi.json                            → docs page and schema (no CDN)

Errors are JSON, `{"error": kind, "detail": message}`, with the status that says what went
wrong: 400 bad input, 401 no or wrong credentials, 404 unknown file or endpoint, 413 request or
text too large, 503 no usable index. `install(app, ...)` adds all of it to a FastAPI app.
"""

# (no `from __future__ import annotations`: FastAPI reads the routes' annotations at run time)

import json
import logging
from typing import Callable

from ..config import Settings
from ..errors import (
    BadInput,
    CorpusEmpty,
    IndexCorrupt,
    IndexLocked,
    IndexMismatch,
    IndexMissing,
    ModelUnavailable,
    QAError,
)
from .service import NotInCorpus, TooLarge

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
MAX_BODY_BYTES = 1_000_000  # a request body above this is refused with 413
SEARCH_FIELDS = ("question", "k", "sources")
KINDS = {400: "bad_input", 401: "unauthenticated", 404: "not_found", 405: "method_not_allowed",
         413: "too_large", 503: "unavailable"}
UNAVAILABLE = (IndexMissing, IndexCorrupt, IndexMismatch, IndexLocked, ModelUnavailable, CorpusEmpty)


def status_of(exc: QAError) -> int:
    """The HTTP status of a library error."""
    if isinstance(exc, NotInCorpus):
        return 404
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, BadInput):
        return 400
    if isinstance(exc, UNAVAILABLE):
        return 503
    return 500


def error_response(status: int, detail: str, headers: dict | None = None):
    """The JSON error body every route of the API answers with."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": KINDS.get(status, "internal"), "detail": detail}, status_code=status, headers=headers)


def json_response(content, status: int = 200):
    """`content` as JSON; text that is not valid Unicode (a lone surrogate echoed from the
    question) is escaped rather than failing."""
    from starlette.responses import Response

    try:
        body = json.dumps(content, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        body = json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")
    return Response(body, status_code=status, media_type="application/json")


class BodyLimit:
    """ASGI middleware: a request to `prefix` whose body is larger than `max_bytes` gets 413
    (by its Content-Length, or while it is read when the length is not given)."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES, prefix: str = PREFIX + "/"):
        self.app = app
        self.max_bytes = max_bytes
        self.prefix = prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        message = f"The request body is larger than {self.max_bytes:,} bytes: send a shorter question."
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await error_response(413, message)(scope, receive, send)
        seen = 0
        started = False

        async def counted():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return msg

        async def watch(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted, watch)
        except _BodyTooLarge:
            if not started:
                await error_response(413, message)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def install(app, settings: Settings, retriever, guard, concurrency: int = 4) -> None:
    """Add the API to `app` (a FastAPI app): routes under /api/v1, their JSON errors, the
    body-size limit and the docs page.

    Args:
        retriever: a `service.LiveRetriever` (or a Retriever) answering every request.
        guard: a `server.Guard`, the credentials check (open when no login is configured).
        concurrency: how many searches of this API run at once (each on a worker thread).
    """
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    _add_docs(app)
    app.include_router(router(settings, retriever, guard, concurrency), prefix=PREFIX)
    app.add_middleware(BodyLimit)

    async def on_qa_error(request, exc: QAError):
        return error_response(status_of(exc), str(exc))

    async def on_http_error(request, exc: HTTPException):
        return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    async def on_validation_error(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "body"))
        return error_response(400, f"{where}: {first.get('msg', 'invalid value')}. See {PREFIX}/docs.")

    async def on_unexpected(request, exc: Exception):
        log.exception("unexpected error in %s", request.url.path)
        return error_response(500, f"Internal error ({type(exc).__name__}); the server log has the details.")

    app.add_exception_handler(QAError, on_qa_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)


def router(settings: Settings, retriever, guard, concurrency: int = 4):
    """The /api/v1 routes (an APIRouter, without the prefix)."""
    import anyio
    from fastapi import APIRouter, Depends, Query, Request
    from fastapi.security import HTTPBasic, HTTPBearer

    from . import service, wire

    limiter = anyio.CapacityLimiter(concurrency)
    basic = HTTPBasic(auto_error=False, description="The `--auth` user and password.")
    bearer = HTTPBearer(auto_error=False, description="The token in QA_API_TOKEN.")

    def authenticate(request: Request, _basic=Depends(basic), _bearer=Depends(bearer)) -> None:
        # The two schemes above only document the login in OpenAPI; the guard reads the headers.
        guard.require(request.headers.get("authorization"), request.cookies)

    errors = {status: {"model": wire.Error} for status in (400, 401, 404, 413, 503)}
    api = APIRouter(dependencies=[Depends(authenticate)], responses={401: {"model": wire.Error}})

    async def run(fn: Callable, *args):
        return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=limiter)

    @api.post(
        "/search",
        summary="Search the corpus",
        response_model=wire.SearchResult,
        responses={k: v for k, v in errors.items() if k in (400, 413, 503)},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": wire.SearchRequest.model_json_schema(ref_template="#/components/schemas/{model}")}
        }}},
    )
    async def search(request: Request):
        """The `k` passages that best answer `question`, each an exact span of a corpus file with
        its citation and score parts, the sentence that best answers, and whether the corpus
        answers at all (`found`, `reason`): exactly the object `qa ask --json` prints."""
        payload = await _json_object(request)
        unknown = sorted(set(payload) - set(SEARCH_FIELDS))
        if unknown:
            raise BadInput(f"Unknown field {', '.join(map(repr, unknown))}: send question, k and sources.")
        record = await run(
            service.search_record, retriever, payload.get("question"), payload.get("k", 5), payload.get("sources")
        )
        return json_response(record)

    @api.get("/sources", summary="The indexed files", response_model=wire.SourcesResult,
             responses={503: errors[503]})
    def sources():
        """Every indexed file with its number of passages and whether it changed since the
        index was built; files not indexed yet, and files the build skipped with the reason."""
        return json_response(service.sources_record(settings, retriever))

    @api.get("/status", summary="Index status", response_model=wire.StatusResult)
    def status():
        """Which index answers, its model, size and build time, and the corpus changes since:
        exactly the object `qa status --json` prints."""
        return json_response(service.status_record(settings))

    @api.get("/source", summary="Text of a cited span", response_model=wire.SourceText,
             responses={k: v for k, v in errors.items() if k in (400, 404, 413, 503)})
    def source(
        file: str = Query(description="Corpus-relative path, as in a passage's `source`."),
        lines: str | None = Query(None, description="1-based inclusive lines, `12` or `12-18`; default the whole file."),
    ):
        """The text of lines `a-b` of an indexed file, exactly as the index sees it (the
        extracted text for HTML, PDF and DOCX), with its character offsets. Only files of the
        indexed corpus are served."""
        return json_response(service.source_record(settings, retriever, file, service.parse_lines(lines)))

    return api


def add_not_found(app, guard) -> None:
    """A JSON 404 for every other path under /api/v1. Add it after the last /api/v1 route
    (it matches them all) and before Gradio, which would answer with its own page."""
    from starlette.requests import Request

    def unknown(request: Request):
        guard.require(request.headers.get("authorization"), request.cookies)
        return error_response(404, f"No endpoint {request.method} {request.url.path}: see {PREFIX}/docs for the API.")

    app.add_api_route(PREFIX + "/{path:path}", unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                      include_in_schema=False)


async def _json_object(request) -> dict:
    body = await request.body()
    try:
        payload = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise BadInput("The request body must be JSON, e.g. {\"question\": \"Who leads the NCRI?\", \"k\": 5}.") from None
    if not isinstance(payload, dict):
        raise BadInput("The request body must be a JSON object, e.g. {\"question\": \"Who leads the NCRI?\", \"k\": 5}.")
    return payload


def _add_docs(app) -> None:
    """Swagger UI at /api/v1/docs with its script and styles served from here (no CDN)."""
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from starlette.staticfiles import StaticFiles

    assets = f"{PREFIX}/docs/assets"
    app.mount(assets, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="api-docs-assets")

    def docs():
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title="qa API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None, "defaultModelsExpandDepth": 0},
        )
        page.headers["Referrer-Policy"] = "no-referrer"
        return page

    app.add_api_route(f"{PREFIX}/docs", docs, methods=["GET"], include_in_schema=False)
