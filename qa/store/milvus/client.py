"""The connection to Milvus: pymilvus imported on first use (a clear message when the `milvus`
extra is missing), its loggers silenced, and every failed call turned into one `QAError` line
that names the URI and the fix. No other module of the backend touches a pymilvus exception."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from ...errors import IndexLocked, IndexMissing, QAError, StoreUnavailable

INSTALL = "pip install -e '.[milvus]' in the qa checkout (make install does)"
CONNECT_TIMEOUT = 10.0  # seconds before an unreachable server is reported
# pymilvus pings every 10 s even when no call is under way; Milvus Lite's gRPC server (a .db file,
# or `milvus-lite server`) answers that with GOAWAY "too_many_pings" after a minute or two idle,
# and the next connection to it then fails. Pings during calls are kept.
GRPC_OPTIONS = {"grpc.keepalive_permit_without_calls": 0}


def pymilvus():
    """The pymilvus module. Raises StoreUnavailable with the install line when it is missing."""
    try:
        import pymilvus as module
    except ImportError as exc:
        raise StoreUnavailable(f"The milvus store needs pymilvus and milvus-lite: {INSTALL}") from exc
    _silence()
    return module


def _silence() -> None:
    """pymilvus and milvus-lite log every failed call at ERROR with a traceback; `qa` reports
    failures itself, in one line."""
    for name in ("pymilvus", "milvus_lite", "grpc._server"):  # grpc: Milvus Lite's in-process server
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL + 1)
        logger.propagate = False
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("pymilvus.", "milvus_lite.")):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def is_lite(uri: str) -> bool:
    """A URI without a scheme is a Milvus Lite data file."""
    return "://" not in uri


def lite_path(uri: str) -> Path:
    return Path(uri).expanduser()


def error(exc: Exception, uri: str, alias: str = "") -> QAError:
    """The `QAError` for a failed pymilvus call against `uri`: one line naming the URI and the fix."""
    if isinstance(exc, QAError):
        return exc
    text = str(getattr(exc, "message", "") or exc)
    code = getattr(exc, "code", None)
    low = text.lower()
    name = type(exc).__name__
    if "open local milvus failed" in low or name == "DataDirLockedError" or "holds the lock" in low:
        return IndexLocked(
            f"Milvus Lite file {uri} is open in another process (a running `qa serve` or `qa index`): stop it, "
            f"or serve the file with `milvus-lite server --data-dir DIR` and use its http:// URI."
        )
    if code == 1800 or any(w in low for w in ("authenticat", "auth check", "credential", "password", "permission denied",
                                           "unauthorized", "invalid token")):
        return StoreUnavailable(
            f"Milvus at {uri} refused the credentials: set the right token with QA_MILVUS_TOKEN "
            f"(\"user:password\" or an API key)."
        )
    if "fail connecting" in low or "unavailable" in low or "deadline" in low or "timeout" in low or code == 2:
        return StoreUnavailable(
            f"Cannot reach Milvus at {uri}: start the server, or fix --milvus-uri / QA_MILVUS_URI."
        )
    if "does not exist" in low or "not found" in low or code == 100:
        where = f" (alias {alias})" if alias else ""
        return IndexMissing(
            f"No index in Milvus at {uri}{where}: run `qa index --store milvus --milvus-uri {uri}` to build one."
        )
    first = text.strip().splitlines()[0] if text.strip() else name
    return QAError(f"Milvus at {uri} failed: {first}. Check the server's log, then run the command again.")


class Connection:
    """A `pymilvus.MilvusClient` whose methods raise `QAError`s (see `error`) instead of pymilvus
    exceptions. Attribute access returns the wrapped method."""

    def __init__(self, uri: str, token: str = "", timeout: float = CONNECT_TIMEOUT, alias: str = ""):
        self.uri = uri
        self.alias = alias
        module = pymilvus()
        if is_lite(uri):
            path = lite_path(uri)
            if path.suffix != ".db":
                from ...errors import BadInput

                raise BadInput(f"Milvus Lite file {uri} must end in .db (or give an http:// URI of a server).")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                from ...errors import IndexUnwritable

                raise IndexUnwritable(f"Cannot create {path.parent}/ for Milvus Lite ({exc.strerror}).") from exc
            try:
                import milvus_lite  # noqa: F401
            except ImportError as exc:
                raise StoreUnavailable(f"A Milvus Lite file URI ({uri}) needs milvus-lite: {INSTALL}") from exc
            uri = str(path)
        try:
            self.client = module.MilvusClient(uri=uri, token=token or "", timeout=timeout, grpc_options=GRPC_OPTIONS)
        except Exception as exc:  # pymilvus raises several unrelated types for one bad connection
            raise error(exc, self.uri, alias) from None
        _silence()  # milvus-lite registers its loggers when it starts

    def __getattr__(self, name):
        method = getattr(self.client, name)

        def call(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except Exception as exc:  # translated into one QAError line
                raise error(exc, self.uri, self.alias) from None

        return call

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing a broken connection has nothing left to report
            pass


_open: dict[tuple, Connection] = {}
_open_lock = threading.Lock()


def connect(uri: str, token: str = "", timeout: float = CONNECT_TIMEOUT, alias: str = "") -> Connection:
    """A `Connection` to `uri`, shared by every store of this process that names the same server
    (a query path asks `generation()` per question: no new client each time)."""
    key = (uri, token, timeout, alias)
    with _open_lock:
        conn = _open.get(key)
        if conn is None:
            conn = _open[key] = Connection(uri, token, timeout, alias)
        return conn


def forget(conn: Connection) -> None:
    """Close `conn` and drop it from the shared connections."""
    with _open_lock:
        for key in [k for k, c in _open.items() if c is conn]:
            del _open[key]
    conn.close()


def close_all() -> None:
    """Close every shared connection and stop the Milvus Lite engines of this process, which
    write their files when they stop (else at exit): a caller removing a Milvus Lite file's
    folder calls this first."""
    with _open_lock:
        conns = list(_open.values())
        _open.clear()
    for conn in conns:
        conn.close()
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:  # no Milvus Lite in this process
        return
    server_manager_instance.release_all()
