"""Backends for the store contract suite (tests/store/test_contract.py) and its fixtures.

Each entry of `READERS` turns an `IndexData` into an open `IndexReader` of one backend, and each
entry of `STORES` gives a fresh `Store` in a temporary place. A new backend (Milvus Lite, next)
adds one function to each and the whole suite runs against it.
"""

from __future__ import annotations

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


READERS = {
    "local": _local_reader,
    "local-hnsw": lambda tmp_path, data, mp: _local_reader(tmp_path, data, mp, "hnsw"),
    "memory": _memory_reader,
}
STORES = {"local": _local_store}


@pytest.fixture
def data() -> IndexData:
    return make_data()


@pytest.fixture(params=sorted(READERS))
def reader(request, tmp_path, data, monkeypatch):
    """An open `IndexReader` of each backend over `data`."""
    return READERS[request.param](tmp_path, data, monkeypatch)


@pytest.fixture(params=sorted(STORES))
def store(request, tmp_path):
    """A fresh, empty `Store` of each backend."""
    return STORES[request.param](tmp_path)
