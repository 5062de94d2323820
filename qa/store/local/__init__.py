"""The local backend: an index folder of generations (FAISS, SQLite, .npy, bm25s arrays).

`generations` (CURRENT link, lock, manifest checks, atomic write, read back), `vectors` (FAISS
index kinds, `VectorFile`), `passages` (SQLite), `reader` (`LocalReader`, the `IndexReader`).
`LocalStore` is the `qa.store.base.Store` over one folder.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import IndexCorrupt
from ...schema import Manifest
from ..base import IndexData, Reusable
from . import generations, ownership
from .reader import LocalReader


class LocalStore:
    """The `Store` of one index folder (`index_dir`)."""

    def __init__(self, index_dir: str | Path):
        self.index_dir = Path(index_dir)

    def lock(self, wait: bool = False):
        """The build lock, once the folder is known to be a qa index, empty or new
        (`ownership.claim`: NotAnIndex, IndexUnwritable)."""
        ownership.claim(self.index_dir)
        return generations.build_lock(self.index_dir, wait)

    def manifest(self) -> Manifest | None:
        return generations.read_manifest(self.index_dir)

    def generation(self) -> str | None:
        return generations.generation_id(self.index_dir)

    def current(self) -> Path | None:
        """The live generation's folder (None: no index)."""
        return generations.current_generation(self.index_dir)

    def reusable(self) -> Reusable | None:
        return generations.read_reusable(self.index_dir)

    def writer(self, dim: int, expected_passages: int | None = None,
               fault=lambda point: None) -> generations.GenerationWriter:
        return generations.GenerationWriter(self.index_dir, dim, expected_passages, fault=fault)

    def write(self, data: IndexData, fault=lambda point: None) -> str:
        return str(generations.write_index(self.index_dir, data, fault=fault))

    def clean(self) -> None:
        """Remove what killed builds left (call under `lock`)."""
        generations.clean_leftovers(self.index_dir)

    def check(self, full: bool = False) -> str | None:
        """The first problem of the live generation's files (named, with the fix), or None:
        sizes, headers and sampled checksums; `full`: every sha256."""
        gen = generations.current_generation(self.index_dir)
        if gen is None:
            return None
        try:
            generations.check_files(gen, generations.read_generation_manifest(gen), full=full)
        except IndexCorrupt as exc:
            return str(exc)
        return None

    def open(self) -> LocalReader:
        return generations.load_index(self.index_dir)

    def cache_dir(self) -> Path:
        return generations.cache_dir(self.index_dir)


__all__ = ["LocalReader", "LocalStore"]
