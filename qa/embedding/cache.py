"""A persistent cache of document embeddings, keyed by model and text, shared by every index
folder (under the shared cache, like the ONNX export).

Builds write each block of vectors as soon as it is computed, so a build stopped by Ctrl-C or a
kill keeps what it embedded, and the next build (of any index folder, same model) embeds only
what is missing. One SQLite file per model: `<cache>/embeddings/<model>-<dim>.sqlite`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

LOOKUP_BLOCK = 500


class EmbeddingCache:
    """Vectors of texts for one model (`name`, `dim`), stored under `root`."""

    def __init__(self, root: Path, name: str, dim: int):
        self.dim = int(dim)
        slug = re.sub(r"[^\w.-]+", "_", name)[-80:]
        folder = Path(root) / "embeddings"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{slug}-{self.dim}.sqlite"
        self._name = name
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("CREATE TABLE IF NOT EXISTS v (key BLOB PRIMARY KEY, vec BLOB NOT NULL)")
        self._con.commit()

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self._name}\0{text}".encode("utf-8", "surrogatepass")).digest()[:20]

    def get(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """(vectors, missing): a (len(texts), dim) array holding the cached vectors, and the
        indices of the texts that are not cached (their rows are zero)."""
        keys = [self._key(t) for t in texts]
        found: dict[bytes, bytes] = {}
        with self._lock:
            for start in range(0, len(keys), LOOKUP_BLOCK):
                block = keys[start : start + LOOKUP_BLOCK]
                rows = self._con.execute(f"SELECT key, vec FROM v WHERE key IN ({','.join('?' * len(block))})", block)
                found.update(rows)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing = []
        for i, key in enumerate(keys):
            blob = found.get(key)
            if blob is not None and len(blob) == 4 * self.dim:
                out[i] = np.frombuffer(blob, dtype=np.float32)
            else:
                missing.append(i)
        return out, missing

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store the vectors of `texts` now (committed: a kill right after keeps them)."""
        rows = [(self._key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors)]
        with self._lock:
            self._con.executemany("INSERT OR REPLACE INTO v VALUES (?, ?)", rows)
            self._con.commit()

    def close(self) -> None:
        with self._lock:
            self._con.close()


def open_cache(root: Path, embedder) -> EmbeddingCache | None:
    """The cache for `embedder`, or None when it does not want one (test embedders, whose
    calls are counted) or the cache cannot be opened (then builds just embed everything)."""
    if not getattr(embedder, "persistent_cache", False):
        return None
    try:
        return EmbeddingCache(root, embedder.name, embedder.dim)
    except (OSError, sqlite3.Error) as exc:
        log.warning("embedding cache unavailable in %s (%s); embedding without it", root, exc)
        return None


def estimate_seconds(done: int, seconds: float, total: int) -> float:
    """Time left for `total` texts at the rate of the first `done` (taken in `seconds`). Pure."""
    return (total - done) * seconds / max(done, 1)


def say_duration(seconds: float) -> str:
    """'6 h 30 min', '12 min', '45 s'. Pure."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"
