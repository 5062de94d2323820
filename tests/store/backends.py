"""Backends for the store contract suite (tests/store/test_contract.py) and its fixtures.

Each entry of `READERS` turns an `IndexData` into an open `IndexReader` of one backend, and each
entry of `STORES` gives a fresh `Store` in a temporary place. A new backend (Milvus Lite, next)
adds one function to each and the whole suite runs against it: milvus-lite (a Milvus Lite file
in this process) and milvus-server (a `milvus-lite server` subprocess on 127.0.0.1, one per
session, stopped by its pid; each test on its own collection prefix).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from qa.lexical import build_bm25
from qa.schema import INDEX_FORMAT, Manifest, Passage
from qa.store.base import IndexData

DIM = 8


def make_data(n_files: int = 3, per_file: int = 4, seed: int = 0) -> IndexData:
    """A small index: `n_files` sources of `per_file` passages, 0-2 sentences each, random unit
    vectors (fixed seed), words chosen so that BM25 has something to score."""
    rng = np.random.default_rng(seed)
    words = ["garden", "roses", "boats", "lake", "bees", "hives", "tours", "gate", "rain", "tanks"]
    passages, spans = [], []
    for f in range(n_files):
        source = ["garden.txt", "sub/boats.md", "notes/bees.txt", "data.md"][f % 4]
        offset = 0
        for i in range(per_file):
            sentences = [" ".join(rng.choice(words, 4)) + "." for _ in range(i % 3)]
            text = " ".join(sentences) or "Heading only"
            row = len(passages)
            pos = offset
            for s in sentences:
                spans.append((row, pos, pos + len(s)))
                pos += len(s) + 1
            passages.append(Passage(text=text, source=source, section=f"Section {i}", start_line=i + 1,
                                    end_line=i + 1, start_char=offset, end_char=offset + len(text)))
            offset += len(text) + 1

    def unit(k):
        v = rng.normal(size=(k, DIM)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    manifest = Manifest(format=INDEX_FORMAT, model="fake-embedder", dim=DIM, passages=len(passages),
                        sentences=len(spans), files={p.source: "0" * 64 for p in passages})
    return IndexData(manifest=manifest, passages=passages, passage_vectors=unit(len(passages)),
                     sentence_spans=spans, sentence_vectors=unit(len(spans)), bm25=build_bm25(passages))


def _local_store(tmp_path):
    from qa.store.local import LocalStore

    return LocalStore(tmp_path / "index")


def _local_reader(tmp_path, data, monkeypatch, kind="flat"):
    from qa.store.local import vectors

    if kind == "hnsw":  # force the approximate tier at this tiny size
        monkeypatch.setattr(vectors, "EXACT_MAX", 0)
    store = _local_store(tmp_path)
    with store.lock():
        store.write(data)
    return store.open()


def _memory_reader(tmp_path, data, monkeypatch):
    from qa.store.memory import MemoryReader

    return MemoryReader(data)


def _milvus_store(place):
    """A Milvus Lite file in `place` (a folder), or a fresh prefix on the server at `place` (a URI)."""
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    from qa.store.milvus import MilvusStore

    uri = place if isinstance(place, str) else str(place / "milvus.db")
    return MilvusStore(uri, prefix=f"t{uuid.uuid4().hex[:10]}")


def _milvus_reader(place, data, monkeypatch):
    store = _milvus_store(place)
    with store.lock():
        store.write(data)
    return store.open()


READERS = {
    "local": _local_reader,
    "local-hnsw": lambda tmp_path, data, mp: _local_reader(tmp_path, data, mp, "hnsw"),
    "memory": _memory_reader,
    "milvus-lite": _milvus_reader,  # embedded: a .db file in this process
    "milvus-server": _milvus_reader,  # the session's `milvus-lite server` (its URI instead of a folder)
}
STORES = {"local": _local_store, "milvus-lite": _milvus_store, "milvus-server": _milvus_store}


def _place(request, tmp_path):
    """Where a backend keeps its index: the session's Milvus server URI for "milvus-server", the
    test's temporary folder for the others."""
    return request.getfixturevalue("milvus_server") if "server" in request.param else tmp_path


@pytest.fixture
def data() -> IndexData:
    return make_data()


@pytest.fixture(params=sorted(READERS))
def reader(request, tmp_path, data, monkeypatch):
    """An open `IndexReader` of each backend over `data`."""
    return READERS[request.param](_place(request, tmp_path), data, monkeypatch)


@pytest.fixture(params=sorted(STORES))
def store(request, tmp_path):
    """A fresh, empty `Store` of each backend."""
    return STORES[request.param](_place(request, tmp_path))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """URI of a `milvus-lite server` subprocess bound to 127.0.0.1 on a free port."""
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    from qa.store.milvus.client import Connection

    data = tmp_path_factory.mktemp("milvus-server")
    port = free_port()
    exe = Path(sys.executable).with_name("milvus-lite")
    log = open(data / "server.log", "w")
    proc = subprocess.Popen([str(exe), "server", "--data-dir", str(data / "db"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            Connection(uri, timeout=2).list_collections()
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"milvus-lite server did not start: {(data / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield uri
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=["lite", "server"])
def milvus_uri(request, tmp_path):
    """A Milvus Lite file (embedded in this process) or the session's milvus-lite server."""
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    if request.param == "lite":
        return str(tmp_path / "milvus.db")
    return request.getfixturevalue("milvus_server")
