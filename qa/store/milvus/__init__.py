"""The milvus backend: an index on a Milvus server (standalone or distributed, an
`http(s)://host:19530` URI plus a token) or in a Milvus Lite file (a local path ending in .db).

`client` (connection, one-line errors), `collections` (what a generation holds, writing it),
`lock` (the build lock on the server), `reader` (`MilvusReader`, the `IndexReader`).
`MilvusStore` is the `qa.store.base.Store`: each build writes new collections and then moves the
alias `<prefix>_live` to them (the local backend's CURRENT link); the previous generation is kept
for readers still on it, anything older or never made live is dropped by the next build.
pymilvus is imported when a store is first used, never by `import qa`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ...errors import IndexCorrupt, IndexMissing
from ...schema import Manifest
from ..base import IndexData, Reusable
from . import collections as mc
from .client import CONNECT_TIMEOUT, Connection, connect, forget, is_lite
from .lock import build_lock
from .reader import MilvusReader

DEFAULT_PREFIX = "qa"


class MilvusStore:
    """The `Store` of one Milvus database under a collection-name `prefix`.

    Args:
        uri: pymilvus's URI: `http://host:19530` (a server) or a path ending in .db (Milvus Lite).
        token: "user:password" or an API key (None/"" for none; Milvus Lite has no auth).
        prefix: collection names start with it (several indexes can share one server).
        cache_dir: a local folder for derived files (the ONNX query encoder), or None.
    """

    def __init__(self, uri: str, token: str = "", prefix: str = DEFAULT_PREFIX, cache_dir=None,
                 timeout: float = CONNECT_TIMEOUT):
        self.uri = str(uri)
        self.token = token or ""
        self.prefix = prefix
        self.alias = mc.live_alias(prefix)
        self._cache_dir = Path(cache_dir) if cache_dir else None
        self._timeout = timeout
        self._conn = None

    @property
    def where(self) -> str:
        """Where the index lives, for messages."""
        return f"Milvus {'Lite file ' if is_lite(self.uri) else 'at '}{self.uri} (alias {self.alias})"

    def __str__(self) -> str:
        return self.where

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            self._conn = connect(self.uri, self.token, self._timeout, alias=self.alias)
        return self._conn

    def close(self) -> None:
        """Close this process's connection to the server (every store on it shares one)."""
        if self._conn is not None:
            forget(self._conn)
            self._conn = None

    def lock(self, wait: bool = False):
        return build_lock(self.conn, self.prefix, wait)

    def _live_collection(self) -> str | None:
        aliases = self.conn.list_aliases().get("aliases", [])
        if self.alias not in aliases:
            return None
        return self.conn.describe_alias(self.alias)["collection_name"]

    def generation(self) -> str | None:
        name = self._live_collection()
        return None if name is None else mc.generation_of(name, self.prefix)

    def current(self) -> str | None:
        """The live passages collection, as `uri#collection` (None: no index)."""
        name = self._live_collection()
        return None if name is None else f"{self.uri}#{name}"

    def manifest(self) -> Manifest | None:
        gen = self.generation()
        if gen is None:
            return None
        meta = mc.names(self.prefix, gen)["meta"]
        self.conn.load_collection(meta)
        return mc.read_manifest(self.conn, meta)

    def open(self) -> MilvusReader:
        gen = self.generation()
        if gen is None:
            raise IndexMissing(f"No index in {self.where}: run `qa index --store milvus --milvus-uri {self.uri}` "
                               f"to build one.")
        return MilvusReader(self.conn, self.prefix, gen)

    def reusable(self) -> Reusable | None:
        gen = self.generation()
        if gen is None:
            return None
        reader = MilvusReader(self.conn, self.prefix, gen)
        col = reader.collections
        rows = sorted(mc.iterate(self.conn, col["passages"], mc.PASSAGE_FIELDS + ["vector"]), key=lambda r: r["row"])
        sents = sorted(mc.iterate(self.conn, col["sentences"], ["id", "passage", "start_char", "end_char", "vector"]),
                       key=lambda r: r["id"])
        if len(rows) != len(reader) or [r["row"] for r in rows] != list(range(len(rows))):
            raise IndexCorrupt(f"{self.where} holds {len(rows)} passages where its manifest says {len(reader)}.")
        dim = int(reader.manifest.dim)
        ranges = {}
        for source, runs in reader._ranges.items():
            if len(runs) != 1:  # builds write a file's passages together; anything else is rebuilt in full
                raise IndexCorrupt(f"{self.where}: the passages of {source} are not contiguous.")
            ranges[source] = tuple(runs[0])
        return Reusable(
            manifest=reader.manifest,
            passages=[mc.to_passage(r) for r in rows],
            passage_vectors=np.array([r["vector"] for r in rows], dtype=np.float32).reshape(-1, dim),
            sentence_spans=[(int(s["passage"]), int(s["start_char"]), int(s["end_char"])) for s in sents],
            sentence_vectors=np.array([s["vector"] for s in sents], dtype=np.float32).reshape(-1, dim),
            rows=ranges,
        )

    def writer(self, dim: int, expected_passages: int | None = None) -> "BufferedWriter":
        """A block-by-block writer (`add` ..., `finish(manifest)`): blocks are gathered, then
        written as one generation by `write` (Milvus itself receives them in batches)."""
        return BufferedWriter(self, dim)

    def write(self, data: IndexData) -> str:
        """Write `data` as new collections, check them, move the live alias to them (call under
        `lock`); then drop generations that are neither live nor the previous one."""
        conn = self.conn
        previous = self.generation()
        self.cleanup(keep={previous})
        gen = mc.new_generation()
        data.manifest.vector_index = "milvus-hnsw"
        data.manifest.extra["previous_generation"] = previous or ""
        try:
            col, counts = mc.write_generation(conn, self.prefix, gen, data)
        except BaseException:
            self._drop(gen)  # best effort; a killed build leaves them to the next build's cleanup
            raise
        if previous is None:
            conn.create_alias(col["passages"], self.alias)
        else:
            conn.alter_alias(col["passages"], self.alias)
        self.cleanup(keep={gen, previous})
        return f"{self.uri}#{col['passages']}"

    def _drop(self, gen: str) -> None:
        for name in mc.names(self.prefix, gen).values():
            try:
                self.conn.drop_collection(name)
            except Exception:  # already gone, or the server went away: the next build retries
                pass

    def generations(self) -> list[str]:
        """Every generation with a collection on the server, oldest first."""
        gens = {mc.generation_of(c, self.prefix) for c in self.conn.list_collections()}
        return sorted(g for g in gens if g)

    def cleanup(self, keep: set) -> list[str]:
        """Drop the collections of every generation not in `keep` (call under `lock`)."""
        dropped = [g for g in self.generations() if g not in keep]
        for gen in dropped:
            self._drop(gen)
        return dropped

    def cache_dir(self) -> Path | None:
        return self._cache_dir


class BufferedWriter:
    """`MilvusStore.writer`: gathers blocks of passages, vectors and sentences; `finish` writes them."""

    def __init__(self, store: MilvusStore, dim: int):
        self.store, self.dim = store, dim
        self.passages, self.vectors, self.spans, self.sentence_vectors = [], [], [], []

    def add(self, passages, passage_vectors, sentence_spans, sentence_vectors) -> None:
        base = len(self.passages)
        self.passages += list(passages)
        self.vectors.append(np.asarray(passage_vectors, dtype=np.float32).reshape(-1, self.dim))
        self.spans += [(int(r) + base, int(s), int(e)) for r, s, e in sentence_spans]
        self.sentence_vectors.append(np.asarray(sentence_vectors, dtype=np.float32).reshape(-1, self.dim))

    def finish(self, manifest: Manifest) -> str:
        def stack(blocks):
            return np.concatenate(blocks) if blocks else np.zeros((0, self.dim), np.float32)

        return self.store.write(IndexData(manifest=manifest, passages=self.passages, passage_vectors=stack(self.vectors),
                                          sentence_spans=self.spans, sentence_vectors=stack(self.sentence_vectors)))
