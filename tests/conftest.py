"""Shared fixtures: a deterministic fake embedder, temporary corpus and index folders, and the
real bundled model loaded once per test session (tests marked `model`)."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings

DATA = Path(__file__).parent / "data"


class FakeEmbedder:
    """Hashed bag of words, L2-normalised: texts sharing words get similar vectors.

    Records every batch it embedded, so tests can assert what was (re-)embedded.
    """

    name = "fake-embedder"

    def __init__(self, dim: int = 64):
        self._dim = dim
        self.batches: list[list[str]] = []

    @property
    def dim(self) -> int:
        return self._dim

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self._dim, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            h = int(hashlib.md5(word.encode()).hexdigest(), 16)
            v[h % self._dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode_documents(self, texts, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        self.batches.append(list(texts))
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self._dim), np.float32)

    def encode_queries(self, texts) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts])

    @property
    def embedded(self) -> list[str]:
        return [t for batch in self.batches for t in batch]


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """The cache shared by index folders (model exports, embeddings), one per test run."""
    return tmp_path_factory.mktemp("qa-cache")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory, shared_cache):
    """Tests never read or write the repository's corpus/ and index/, nor the user's cache, nor
    reach the network."""
    base = tmp_path_factory.mktemp("env")
    monkeypatch.setenv("QA_CACHE_DIR", str(shared_cache))
    monkeypatch.setenv("QA_INDEX_DIR", str(base / "index"))
    monkeypatch.setenv("QA_CORPUS_DIR", str(base / "corpus"))
    monkeypatch.delenv("QA_MODEL", raising=False)
    monkeypatch.delenv("QA_AUTH", raising=False)
    for name in ("QA_STORE", "QA_MILVUS_URI", "QA_MILVUS_TOKEN", "QA_MILVUS_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def corpus_dir(tmp_path) -> Path:
    """A copy of tests/data: garden.txt (plain-text headings) and sub/boats.md."""
    target = tmp_path / "corpus"
    shutil.copytree(DATA, target)
    return target


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def settings(corpus_dir, tmp_path) -> Settings:
    return Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", model=FakeEmbedder.name)


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2, loaded once for the whole run."""
    from qa.embedding import get_embedder

    embedder = get_embedder()
    embedder.dim  # load now, once
    return embedder


@pytest.fixture(scope="session")
def default_corpus_index(tmp_path_factory, real_embedder):
    """The default corpus (corpus/) indexed once with the real model; returns its Settings."""
    from qa.build import build_index

    root = Path(__file__).resolve().parent.parent
    base = tmp_path_factory.mktemp("default")
    settings = Settings(corpus_dir=root / "corpus", index_dir=base / "index")
    build_index(settings, embedder=real_embedder)
    return settings


def all_passages(reader) -> list:
    """Every passage of an open index (`IndexReader`), in row order."""
    return reader.passages(range(len(reader)))


def patch_embedder(monkeypatch, embedder) -> None:
    """Make `qa.build` and `qa.retriever` use `embedder` whatever model name they ask for."""
    import qa.build
    import qa.retriever

    monkeypatch.setattr(qa.build, "get_embedder", lambda name=None: embedder)
    monkeypatch.setattr(qa.retriever, "get_embedder", lambda name=None: embedder)
