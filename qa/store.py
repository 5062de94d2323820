"""STORE: the index folder on disk, written atomically and checked when read.

Layout of `index_dir`:

    CURRENT            symlink to the live generation (swapped atomically with os.replace)
    gen-<time>-<pid>/  one complete build:
        manifest.json  format, model, dim, chunking, sha256 per file, counts, build time, version
        passages.sqlite passages and sentence spans (row id i = FAISS vector i = BM25 doc i)
        passages.faiss  inner-product index of passage vectors (normalised: scores are cosines)
        sentences.npy   sentence vectors, float32, row j = sentence j of the SQLite table
        bm25/           bm25s arrays (.npy + JSON, no pickle)
    .lock              held by the build in progress

A build writes a new generation beside the live one and then repoints CURRENT, so a reader sees
the old index or the new one, never half of one; a killed build leaves only an orphan folder,
removed by the next build. Vectors are handed in: this module never computes them.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import IndexCorrupt, IndexLocked, IndexMissing
from .schema import Passage

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
PASSAGES_DB = "passages.sqlite"
PASSAGE_VECTORS = "passages.faiss"
SENTENCE_VECTORS = "sentences.npy"
BM25_DIR = "bm25"
REQUIRED = (MANIFEST, PASSAGES_DB, PASSAGE_VECTORS, SENTENCE_VECTORS, BM25_DIR)


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a hard dependency
        raise IndexMissing("faiss is not installed: `pip install faiss-cpu`.") from exc
    return faiss


@dataclass
class IndexData:
    """Everything a build produces, ready to be written (or just read back).

    `sentence_spans[j]` is (passage row, start_char, end_char) of sentence vector j.
    """

    manifest: dict
    passages: list[Passage]
    passage_vectors: np.ndarray | None = None
    sentence_spans: list[tuple[int, int, int]] = field(default_factory=list)
    sentence_vectors: np.ndarray | None = None
    bm25: object = None  # a bm25s.BM25
    passage_index: object = None  # faiss index, set when loaded
    path: Path | None = None


def current_generation(index_dir: Path) -> Path | None:
    """The live generation folder of `index_dir`, or None when there is no index."""
    link = Path(index_dir) / CURRENT
    if not link.is_symlink() and not link.exists():
        return None
    target = Path(index_dir) / os.readlink(link) if link.is_symlink() else link
    return target if target.is_dir() else None


def read_manifest(index_dir: Path) -> dict | None:
    """The live manifest, or None when there is no index. Raises IndexCorrupt if unreadable."""
    gen = current_generation(index_dir)
    if gen is None:
        return None
    path = gen / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"{path} is unreadable ({exc}). Run `qa index --full` to rebuild.") from exc


@contextmanager
def build_lock(index_dir: Path, wait: bool = False):
    """Hold the index folder's build lock; refuse (IndexLocked) when another build has it."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            raise IndexLocked(
                f"Another `qa index` (pid {holder or '?'}) is building {index_dir}/. "
                "Wait for it to finish, then try again."
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def _write_sqlite(path: Path, passages: list[Passage], sentence_spans) -> None:
    con = sqlite3.connect(path)
    try:
        con.executescript(
            """
            CREATE TABLE passages (
                id INTEGER PRIMARY KEY, source TEXT NOT NULL, section TEXT NOT NULL,
                start_line INTEGER NOT NULL, end_line INTEGER NOT NULL,
                start_char INTEGER NOT NULL, end_char INTEGER NOT NULL, text TEXT NOT NULL);
            CREATE INDEX passages_source ON passages(source);
            CREATE TABLE sentences (
                id INTEGER PRIMARY KEY, passage_id INTEGER NOT NULL REFERENCES passages(id),
                start_char INTEGER NOT NULL, end_char INTEGER NOT NULL);
            """
        )
        con.executemany(
            "INSERT INTO passages VALUES (?,?,?,?,?,?,?,?)",
            (
                (i, p.source, p.section, p.start_line, p.end_line, p.start_char, p.end_char, p.text)
                for i, p in enumerate(passages)
            ),
        )
        con.executemany(
            "INSERT INTO sentences VALUES (?,?,?,?)",
            ((j, *span) for j, span in enumerate(sentence_spans)),
        )
        con.commit()
    finally:
        con.close()


def _fsync_tree(folder: Path) -> None:
    for path in [*folder.rglob("*"), folder]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_index(index_dir: Path, data: IndexData) -> Path:
    """Write `data` as a new generation and make it the live one. Call under `build_lock`.

    Returns the new generation's folder.
    """
    faiss = _faiss()
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    gen = index_dir / f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    tmp = gen.with_name(gen.name + ".tmp")
    tmp.mkdir()
    _write_sqlite(tmp / PASSAGES_DB, data.passages, data.sentence_spans)
    dim = int(data.manifest["dim"])
    index = faiss.IndexFlatIP(dim)
    if len(data.passage_vectors):
        index.add(np.ascontiguousarray(data.passage_vectors, dtype=np.float32))
    faiss.write_index(index, str(tmp / PASSAGE_VECTORS))
    sentence_vectors = np.asarray(data.sentence_vectors, dtype=np.float32).reshape(-1, dim)
    np.save(tmp / SENTENCE_VECTORS, sentence_vectors, allow_pickle=False)
    data.bm25.save(str(tmp / BM25_DIR), show_progress=False)
    (tmp / MANIFEST).write_text(json.dumps(data.manifest, indent=2, sort_keys=True), encoding="utf-8")
    _fsync_tree(tmp)
    os.rename(tmp, gen)
    link_tmp = index_dir / f".{CURRENT}.{os.getpid()}"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    os.symlink(gen.name, link_tmp)
    os.replace(link_tmp, index_dir / CURRENT)
    _prune(index_dir, keep={gen.name})
    return gen


def _prune(index_dir: Path, keep: set[str], keep_previous: int = 1) -> None:
    """Remove orphaned temporary builds and all but `keep_previous` older generations
    (a reader that loaded the previous one may still be reading it)."""
    gens = sorted((p for p in index_dir.glob("gen-*") if p.name not in keep), key=lambda p: p.stat().st_mtime)
    finished = [p for p in gens if not p.name.endswith(".tmp")]
    doomed = [p for p in gens if p.name.endswith(".tmp")] + finished[: max(0, len(finished) - keep_previous)]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)


def _read_passages(path: Path) -> tuple[list[Passage], list[tuple[int, int, int]]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        passages = [
            Passage(text=row[7], source=row[1], section=row[2], start_line=row[3], end_line=row[4],
                    start_char=row[5], end_char=row[6])
            for row in con.execute("SELECT * FROM passages ORDER BY id")
        ]
        spans = [tuple(row) for row in con.execute("SELECT passage_id, start_char, end_char FROM sentences ORDER BY id")]
    finally:
        con.close()
    return passages, spans


def load_index(index_dir: Path) -> IndexData:
    """Read the live generation of `index_dir`, checking that its parts agree.

    Raises:
        IndexMissing: there is no index.
        IndexCorrupt: a file is missing, truncated or inconsistent (the message names it).
    """
    import bm25s

    faiss = _faiss()
    index_dir = Path(index_dir)
    gen = current_generation(index_dir)
    if gen is None:
        raise IndexMissing(f"No index in {index_dir}/. Run `qa index` to build one.")
    manifest = read_manifest(index_dir)
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexCorrupt(
            f"{gen / MANIFEST} has format {manifest.get('format')!r}, this qa reads {FORMAT_VERSION}. "
            "Run `qa index --full` to rebuild."
        )
    current = None
    try:
        for name in REQUIRED:
            current = gen / name
            if not current.exists():
                raise FileNotFoundError(errno.ENOENT, "missing", str(current))
        current = gen / PASSAGES_DB
        passages, spans = _read_passages(current)
        current = gen / PASSAGE_VECTORS
        passage_index = faiss.read_index(str(current))
        current = gen / SENTENCE_VECTORS
        sentence_vectors = np.load(current, mmap_mode="r", allow_pickle=False)
        current = gen / BM25_DIR
        bm25 = bm25s.BM25.load(str(current), show_progress=False, verbosity=0)
    except Exception as exc:  # faiss raises RuntimeError, sqlite DatabaseError, numpy ValueError...
        raise IndexCorrupt(
            f"Index file {current} is unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
            "Run `qa index --full` to rebuild."
        ) from exc
    counts = (len(passages), passage_index.ntotal, int(bm25.scores["num_docs"]), manifest.get("passages"))
    if len(set(counts)) != 1 or len(spans) != len(sentence_vectors):
        raise IndexCorrupt(
            f"The index in {gen}/ is inconsistent (passages/vectors/BM25/manifest: {counts}). "
            "Run `qa index --full` to rebuild."
        )
    return IndexData(
        manifest=manifest,
        passages=passages,
        sentence_spans=spans,
        bm25=bm25,
        passage_index=passage_index,
        sentence_vectors=sentence_vectors,
        path=gen,
    )
