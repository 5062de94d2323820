"""The build lock of the milvus backend, in a collection `<prefix>_lock` on the server itself, so
that it holds across machines that share one Milvus.

Milvus has no compare-and-swap, so a build takes the lock by inserting its own row and then
reading every row back (Strong consistency): it holds the lock only if its row is the only live
one; otherwise it deletes its row and refuses. Two builds that start in the same instant may both
refuse; two can never both hold it. A holder refreshes its row's heartbeat every HEARTBEAT
seconds; a row is stale (deleted by the next build) when its process is gone (same host) or its
heartbeat is older than STALE seconds (another host).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager

from ...errors import IndexLocked
from . import collections as mc

HEARTBEAT = 30.0
STALE = 300.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _stale(owner: dict, beat: int, now: float) -> bool:
    if owner.get("host") == socket.gethostname() and not _alive(int(owner.get("pid", 0))):
        return True
    return now - beat > STALE


def _rows(conn, name: str) -> list[dict]:
    return conn.query(name, filter='key like "build/%"', output_fields=["key", "value", "num"])


@contextmanager
def build_lock(conn, prefix: str, wait: bool = False, poll: float = 1.0):
    """Hold the build lock of `prefix` on `conn`'s server. Raises IndexLocked naming the holder."""
    name = f"{prefix}_lock"
    if not conn.has_collection(name):
        try:
            mc.create_keyed(conn, name)
        except Exception:  # another build created it first
            if not conn.has_collection(name):
                raise
    conn.load_collection(name)
    key = f"build/{uuid.uuid4().hex}"
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    while True:
        now = time.time()
        others = []
        for r in _rows(conn, name):
            if r["key"] == key:
                continue
            theirs = json.loads(r["value"] or "{}")
            if _stale(theirs, int(r["num"]), now):
                conn.delete(name, ids=[r["key"]])
            else:
                others.append(theirs)
        if not others:
            conn.insert(name, [mc.keyed_row(key, json.dumps(owner), int(now))])
            others = [json.loads(r["value"] or "{}") for r in _rows(conn, name) if r["key"] != key]
            if not others:
                break
            conn.delete(name, ids=[key])
        if not wait:
            o = others[0]
            raise IndexLocked(
                f"Another `qa index` (pid {o.get('pid')} on {o.get('host')}, since {o.get('since')}) is building into "
                f"Milvus at {conn.uri}: wait for it to finish. A build that died frees the lock "
                f"{int(STALE // 60)} minutes after its last heartbeat (at once on its own host)."
            )
        time.sleep(poll)

    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT):
            try:
                conn.upsert(name, [mc.keyed_row(key, json.dumps(owner), int(time.time()))])
            except Exception:  # the build itself will report a lost server
                pass

    thread = threading.Thread(target=beat, name="qa-milvus-lock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        try:
            conn.delete(name, ids=[key])
        except Exception:  # a lost server: the row goes stale and the next build removes it
            pass
