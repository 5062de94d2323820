"""The local backend's index folder: generations, the CURRENT link, the build lock, the manifest
checks, writing a generation atomically and reading one back.

Layout of `index_dir`:

    CURRENT            symlink to the live generation (swapped atomically with os.replace)
    gen-<time>-<pid>/  one complete build:
        manifest.json  format, model, dim, chunking, sha256 per file, counts, build time, version
        passages.sqlite passages and sentence spans (row id i = FAISS vector i = BM25 doc i)
        passages.faiss  inner-product index of passage vectors (normalised: scores are cosines);
                        its kind follows the corpus size (`index_kind`); IVF-SQ8 is memory-mapped
        passages.npy    the passage vectors as float32 rows, kept so that the next incremental
                        build reuses them whatever kind of index passages.faiss is
        sources.json, passage_sources.npy, sentence_starts.npy
                        per passage row its source and its first sentence (a reader holds only
                        these; passages and spans are read from SQLite by id when needed)
        sentences.npy   sentence vectors, row j = sentence j of the SQLite table; float32, or
                        float16 above HNSW_MAX; for an approximate index only the candidates'
                        rows are read, per query (`VectorFile`)
        bm25/           bm25s arrays (.npy + JSON, no pickle)
    .lock              held by the build in progress
    qa-index.json      the generations qa made here (`ownership`: only those are ever removed);
                       each generation folder holds a marker file, .qa-generation
    .cache/            derived files that outlive a generation (the ONNX query encoder)

A build writes a new generation beside the live one and then repoints CURRENT, so a reader sees
the old index or the new one, never half of one; a killed build leaves only an orphan folder,
removed by the next build. The manifest, written last, records every file's size, so a truncated
file is named before any library reads it. Vectors are handed in: this module never computes them.
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
from pathlib import Path

import numpy as np

from ... import integrity
from ...errors import IndexCorrupt, IndexLocked, IndexMissing, IndexUnwritable
from ...schema import INDEX_FORMAT, Manifest, Passage
from ..base import IndexData, Reusable
from ... import lexical
from . import ownership
from .ownership import generation_id  # noqa: F401  (re-exported: the live generation's name)
from . import passages as passage_store
from .passages import COLUMNS, PassageDB, connect, read_passages
from .passages import finish as finish_sqlite
from .vectors import NpyAppender, VectorFile, build_vector_index, index_kind, read_vector_index, sentence_dtype, vector_kind, _faiss

log = logging.getLogger(__name__)

FORMAT_VERSION = INDEX_FORMAT
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
PASSAGES_DB = "passages.sqlite"
PASSAGE_VECTORS = "passages.faiss"
SENTENCE_VECTORS = "sentences.npy"
STORED_VECTORS = "passages.npy"
BM25_DIR = "bm25"
SOURCES = "sources.json"  # sorted source names (for the two arrays below)
ROW_SOURCES = "passage_sources.npy"  # int32 source number of every passage row
SENTENCE_STARTS = "sentence_starts.npy"  # int64 first sentence id of every passage row, then the total
REQUIRED = (MANIFEST, PASSAGES_DB, PASSAGE_VECTORS, SENTENCE_VECTORS, BM25_DIR)
RERUN = "Run `qa index --full` to rebuild it."
CACHE = ".cache"


def cache_dir(index_dir: Path) -> Path:
    """Folder for derived files kept across generations (e.g. the ONNX query encoder)."""
    return Path(index_dir) / CACHE


def current_generation(index_dir: Path) -> Path | None:
    """The live generation folder of `index_dir`, or None when there is no index."""
    link = Path(index_dir) / CURRENT
    try:
        target = Path(index_dir) / os.readlink(link)
    except OSError:  # no link (no index yet), or not a link
        return None
    return target if target.is_dir() else None


def read_generation_manifest(gen: Path) -> Manifest:
    """The manifest of generation folder `gen`. Raises IndexCorrupt (naming the file) if unreadable."""
    path = Path(gen) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorrupt(f"Index file {path} is missing. {RERUN}") from exc
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"Index file {path} is unreadable ({exc}). {RERUN}") from exc
    if not isinstance(manifest, dict):
        raise IndexCorrupt(f"Index file {path} is not a manifest (not a JSON object). {RERUN}")
    try:
        return Manifest.from_dict(manifest)
    except TypeError as exc:
        raise IndexCorrupt(f"Index file {path} is not a manifest ({exc}). {RERUN}") from exc


def read_manifest(index_dir: Path) -> Manifest | None:
    """The live manifest, or None when there is no index. Raises IndexCorrupt if unreadable."""
    gen = current_generation(index_dir)
    return None if gen is None else read_generation_manifest(gen)


def _sizes(gen: Path) -> dict[str, int]:
    """Size of every file of a generation but the manifest, by path relative to it."""
    return {
        p.relative_to(gen).as_posix(): p.stat().st_size
        for p in sorted(gen.rglob("*"))
        if p.is_file() and p.name not in (MANIFEST, ownership.MARKER)
    }


def check_files(gen: Path, manifest: Manifest, full: bool = False) -> None:
    """Check that the files of generation `gen` are all there as the manifest recorded them:
    sizes, headers, the manifest's seal and a sample digest of each file (cheap: catches
    truncated, zeroed, overwritten and missing files before a library reads them); with `full`,
    the sha256 of every file (`qa status --verify`, and before stored vectors are reused).

    Raises:
        IndexCorrupt: the message names the first bad file and the fix.
    """
    if manifest.format != FORMAT_VERSION:
        raise IndexCorrupt(
            f"Index file {gen / MANIFEST} has format {manifest.format!r}, this qa reads "
            f"{FORMAT_VERSION}. {RERUN}"
        )
    expected = manifest.get("checksums")
    if not isinstance(expected, dict):
        raise IndexCorrupt(f"Index file {gen / MANIFEST} lacks its file list. {RERUN}")
    if not integrity.seal_ok(manifest.to_dict()):
        raise IndexCorrupt(f"Index file {gen / MANIFEST} is damaged (its content does not match its seal). {RERUN}")
    for name in REQUIRED[1:]:
        if not (gen / name).exists():
            raise IndexCorrupt(f"Index file {gen / name} is missing. {RERUN}")
    for name, entry in expected.items():
        problem = integrity.file_problem(gen / name, entry if isinstance(entry, dict) else {}, full=full)
        if problem:
            raise IndexCorrupt(f"Index file {gen / name} {problem}. {RERUN}")


@contextmanager
def build_lock(index_dir: Path, wait: bool = False):
    """Hold the index folder's build lock; refuse (IndexLocked) when another build has it."""
    index_dir = Path(index_dir)
    created = not index_dir.exists()
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(index_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise IndexUnwritable(
            f"Cannot write the index in {index_dir}/ ({exc.strerror or exc}). "
            "Point --index (QA_INDEX_DIR) at a writable folder."
        ) from exc
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
        if created:
            _remove_if_unused(index_dir)


def _remove_if_unused(index_dir: Path) -> None:
    """Take away an index folder this build created when the build wrote nothing into it (it
    failed): a failed first command leaves no empty folder with a stray `.lock` behind."""
    try:
        names = {p.name for p in index_dir.iterdir()}
        if names <= {".lock", CACHE} and not any((index_dir / CACHE).glob("*")):
            (index_dir / ".lock").unlink(missing_ok=True)
            if (index_dir / CACHE).is_dir():
                (index_dir / CACHE).rmdir()
            index_dir.rmdir()
    except OSError:
        pass


def _fsync_tree(folder: Path) -> None:
    for path in [*folder.rglob("*"), folder]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _unwritable(index_dir: Path, exc: OSError) -> IndexUnwritable:
    return IndexUnwritable(
        f"Cannot write the index in {index_dir}/ ({exc.strerror or exc}). "
        "Point --index (QA_INDEX_DIR) at a writable folder."
    )


class GenerationWriter:
    """Writes one generation block by block, so that a build holds one block in memory, not the
    corpus: passages and sentence spans go to SQLite, vectors to `.npy` files, BM25 keeps token
    ids only; `finish` builds the FAISS index from the vectors on disk, writes the manifest last
    (sizes, checksums and seal) and switches CURRENT to the new generation. Use under `build_lock`.

    Free space is checked first (`needed` bytes, or an estimate from `expected_passages`); a
    failure of any kind (a full disk included) removes the partial generation and leaves the live
    one as it was. `fault(point)` is called at each step (a test hook: see integrity.fault_point).

    Args:
        expected_passages: how many passages will be added (chooses the sentence vectors' dtype,
            as `sentence_dtype`); None: decided by the count at the end (float32 below HNSW_MAX).
    Raises:
        DiskFull: not enough space (the message says how much is needed).
        IndexUnwritable: the folder cannot be written.
    """

    def __init__(self, index_dir: Path, dim: int, expected_passages: int | None = None,
                 fault=lambda point: None, needed: int | None = None):
        self.index_dir = Path(index_dir)
        self.fault = fault
        self.dim = int(dim)
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unwritable(self.index_dir, exc) from exc
        if needed is None and expected_passages:
            # What it knows before the first block: the counts, not the text (a lower bound).
            needed = integrity.estimate_bytes(expected_passages, expected_passages, self.dim, 0,
                                              np.dtype(sentence_dtype(expected_passages)).itemsize)
        self.needed = needed
        if needed:
            integrity.check_free_space(self.index_dir, needed)
        stamp = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6:06d}"
        self.gen = self.index_dir / stamp
        self.tmp = self.gen.with_name(self.gen.name + ".tmp")
        self._names: dict[str, int] = {}
        self._source_ids: list[np.ndarray] = []
        self._starts: list[np.ndarray] = []
        self.passages = 0
        self.sentences = 0
        with self._cleaning():
            ownership.begin(self.index_dir, self.gen.name)  # listed as ours before its folder exists
            self.tmp.mkdir()
            ownership.mark(self.tmp, self.gen.name)
            dtype = sentence_dtype(expected_passages if expected_passages is not None else 0)
            self._db = passage_store.create(self.tmp / PASSAGES_DB)
            self._passage_vectors = NpyAppender(self.tmp / STORED_VECTORS, np.float32, self.dim)
            self._sentence_vectors = NpyAppender(self.tmp / SENTENCE_VECTORS, dtype, self.dim)
            self._bm25 = lexical.BM25Builder()

    @contextmanager
    def _cleaning(self):
        """On any failure: remove the partial generation; a full disk is DiskFull, another OS
        error IndexUnwritable."""
        try:
            yield
        except BaseException as exc:
            for appender in (getattr(self, "_passage_vectors", None), getattr(self, "_sentence_vectors", None)):
                try:
                    appender is not None and appender.close()
                except Exception:  # noqa: BLE001  (already failing: the folder goes anyway)
                    pass
            db = getattr(self, "_db", None)
            try:
                db is not None and db.close()
            except Exception:  # noqa: BLE001
                pass
            shutil.rmtree(self.tmp, ignore_errors=True)
            if isinstance(exc, (OSError, sqlite3.Error, RuntimeError)) and integrity.is_disk_full(exc):
                raise integrity.disk_full_error(self.index_dir, self.needed, exc) from None
            if isinstance(exc, OSError):
                raise _unwritable(self.index_dir, exc) from exc
            raise

    def add(self, passages, passage_vectors, sentence_spans, sentence_vectors) -> None:
        """Add passages (the next rows) with their vectors, and their sentences: spans as
        (row within this block, start_char, end_char), grouped by passage in order."""
        n, first = len(passages), self.passages
        if len(passage_vectors) != n or len(sentence_vectors) != len(sentence_spans):
            raise ValueError("passages and vectors (or sentences and vectors) differ in number")
        with self._cleaning():
            spans = [(first + r, a, b) for r, a, b in sentence_spans]
            passage_store.insert(self._db, passages, spans, first, self.sentences)
            self._passage_vectors.append(np.asarray(passage_vectors, dtype=np.float32))
            self._sentence_vectors.append(np.asarray(sentence_vectors))
            self._bm25.add(passages)
            names = self._names
            self._source_ids.append(np.fromiter((names.setdefault(p.source, len(names)) for p in passages),
                                                dtype=np.int32, count=n))
            owner = np.fromiter((r for r, _, _ in sentence_spans), dtype=np.int64, count=len(sentence_spans))
            self._starts.append(self.sentences + np.searchsorted(owner, np.arange(n)))
            self.passages += n
            self.sentences += len(spans)

    def finish(self, manifest: Manifest) -> Path:
        """Complete the generation (FAISS, BM25, row arrays, manifest with checksums and seal),
        make it the live one and remove older ones. Sets `manifest.vector_index` and
        `index_files`. Returns its folder."""
        fault = self.fault
        with self._cleaning():
            self._finish_files(manifest)
            fault("fsync")
            os.rename(self.tmp, self.gen)
        fault("switch")
        link_tmp = self.index_dir / f".{CURRENT}.{os.getpid()}"
        if link_tmp.is_symlink() or link_tmp.exists():
            link_tmp.unlink()
        os.symlink(self.gen.name, link_tmp)
        os.replace(link_tmp, self.index_dir / CURRENT)
        _fsync_dir(self.index_dir)
        _prune(self.index_dir, keep={self.gen.name}, fault=fault)
        return self.gen

    def _finish_files(self, manifest: Manifest) -> None:
        """Every remaining file into the temp folder, the manifest last, all fsynced."""
        faiss, tmp, fault = _faiss(), self.tmp, self.fault
        finish_sqlite(self._db)
        self._db = None
        fault("write_passages")
        self._passage_vectors.close()
        self._sentence_vectors.close()
        if self._sentence_vectors.dtype != sentence_dtype(self.passages):  # the count was not announced
            _convert_rows(tmp / SENTENCE_VECTORS, sentence_dtype(self.passages), self.dim)
        index = build_vector_index(VectorFile(tmp / STORED_VECTORS), index_kind(self.passages))
        manifest.vector_index = vector_kind(index)
        faiss.write_index(index, str(tmp / PASSAGE_VECTORS))
        del index
        fault("write_vectors")
        self._bm25.build().save(tmp / BM25_DIR)
        self._bm25 = None
        fault("write_bm25")
        # Source numbers in order of first appearance -> sorted names (what readers expect).
        order = sorted(self._names, key=str)
        renumber = np.empty(len(order), dtype=np.int32)
        for new, name in enumerate(order):
            renumber[self._names[name]] = new
        source_ids = renumber[np.concatenate(self._source_ids)] if self._source_ids else np.zeros(0, np.int32)
        starts = np.append(np.concatenate(self._starts) if self._starts else np.zeros(0, np.int64), self.sentences)
        (tmp / SOURCES).write_text(json.dumps(order), encoding="utf-8")
        np.save(tmp / ROW_SOURCES, source_ids, allow_pickle=False)
        np.save(tmp / SENTENCE_STARTS, starts.astype(np.int64), allow_pickle=False)
        # The manifest last, with the size, sha256 and sample digest of every other file and a seal
        # over itself: a reader can then tell a complete, intact generation from a damaged one.
        manifest.index_files = _sizes(tmp)
        manifest.extra["checksums"] = integrity.record_files(tmp, skip=(MANIFEST, ownership.MARKER))
        manifest.extra.pop(integrity.SEAL, None)
        manifest.extra[integrity.SEAL] = integrity.seal(manifest.to_dict())[integrity.SEAL]
        (tmp / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
        _fsync_tree(tmp)


def _convert_rows(path: Path, dtype, dim: int, block: int = 65_536) -> None:
    """Rewrite the `.npy` matrix at `path` with rows of `dtype`, block by block (bounded memory)."""
    source = VectorFile(path)
    converted = NpyAppender(path.with_name(path.name + ".convert"), dtype, dim)
    try:
        for start in range(0, len(source), block):
            converted.append(source[start : start + block])
    finally:
        converted.close()
        source.close()
    os.replace(converted.path, path)


def needed_bytes(data: IndexData) -> int:
    """Disk space the generation of `data` needs (an overestimate; see integrity.estimate_bytes)."""
    n = len(data.passages)
    return integrity.estimate_bytes(
        n, len(data.sentence_spans), int(data.manifest.dim), sum(len(p.text) for p in data.passages),
        np.dtype(sentence_dtype(n)).itemsize,
    )


def write_index(index_dir: Path, data: IndexData, fault=lambda point: None) -> Path:
    """Write `data` as a new generation and make it the live one (through `GenerationWriter`, one
    block). Call under `build_lock`.

    Free space is checked first; a failure of any kind (a full disk included) removes the
    partial generation and leaves the live one as it was. `fault(point)` is called at each
    step (a test hook: see integrity.fault_point).

    Returns the new generation's folder.
    Raises:
        DiskFull: not enough space (the message says how much is needed).
        IndexUnwritable: the folder cannot be written.
    """
    dim = int(data.manifest.dim)
    writer = GenerationWriter(index_dir, dim, expected_passages=len(data.passages), fault=fault,
                              needed=needed_bytes(data))
    passage_vectors = np.asarray(data.passage_vectors, dtype=np.float32).reshape(-1, dim)
    sentence_vectors = np.asarray(data.sentence_vectors if data.sentence_vectors is not None else
                                  np.zeros((0, dim), np.float32)).reshape(-1, dim)
    writer.add(data.passages, passage_vectors, data.sentence_spans, sentence_vectors)
    return writer.finish(data.manifest)


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(index_dir: Path, keep: set[str], keep_previous: int = 0, fault=lambda point: None) -> None:
    """Remove orphaned temporary builds and all but `keep_previous` older generations: only
    those the index recorded as its own (`ownership`). Call under `build_lock`. The previous
    generation goes too: a reader that loaded it holds its data in memory (or mapped: the file
    lives on until unmapped), and a reader resolving it as it is removed retries on the live one
    (`load_index`)."""
    fault("prune")
    ownership.prune(index_dir, keep, keep_previous)


def clean_leftovers(index_dir: Path) -> None:
    """Remove what builds killed earlier left in `index_dir`: temporary generations, stray
    links, and generations a build killed while pruning left beside the live one. At the start
    of every build, so repeated kills do not fill the disk. Only folders the index recorded as
    its own (listed in its state file and marked) are touched. Call under `build_lock`."""
    ownership.prune(Path(index_dir), keep=set(), keep_previous=0)


def load_index(index_dir: Path) -> "LocalReader":
    """Read the live generation of `index_dir`, checking that its parts agree.

    The generation is resolved once and read from its own folder, so a build that swaps in a
    new one meanwhile cannot mix two of them; if the one being read is removed under us (two
    builds later), the new live one is read instead.

    Raises:
        IndexMissing: there is no index.
        IndexCorrupt: a file is missing, truncated or inconsistent (the message names it).
    """
    index_dir = Path(index_dir)
    for attempt in range(3):
        gen = current_generation(index_dir)
        if gen is None:
            raise IndexMissing(f"No index in {index_dir}/. Run `qa index` to build one.")
        try:
            return load_generation(gen)
        except IndexCorrupt:
            if current_generation(index_dir) == gen or attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def load_generation(gen: Path) -> "LocalReader":
    """Open and check one generation folder (see `load_index`). Reads no passage: only the
    manifest, the per-row arrays, and the headers of the vector and BM25 files."""
    from .reader import LocalReader

    manifest = read_generation_manifest(gen)
    check_files(gen, manifest)
    current = None
    db = None
    try:
        current = gen / PASSAGES_DB
        db = PassageDB(current)
        n_rows, n_sentences = db.counts()
        if (gen / SOURCES).exists():  # written since issue 11; computed from SQLite for older builds
            current = gen / SOURCES
            names = json.loads(current.read_text(encoding="utf-8"))
            current = gen / ROW_SOURCES
            source_ids = integrity.load_npy(current)
            current = gen / SENTENCE_STARTS
            starts = integrity.load_npy(current)
        else:
            names, source_ids = db.source_rows()
            starts = db.sentence_starts(len(source_ids))
        current = gen / PASSAGE_VECTORS
        kind = manifest.vector_index or "flat"
        passage_index = read_vector_index(current, kind)
        current = gen / SENTENCE_VECTORS
        # Exact search reads every sentence vector per query: keep them in memory. HNSW (up to
        # HNSW_MAX passages): mapped, one gather of the candidates' rows per query. IVF (larger):
        # candidates' rows read on demand, so a long-running server does not map gigabytes.
        if kind == "flat":
            sentence_vectors = integrity.load_npy(current)
        elif kind == "hnsw":  # a plain array over the map: rows gathered by np.take, no memmap wrapping
            sentence_vectors = integrity.load_npy(current, mmap=True).view(np.ndarray)
        else:
            sentence_vectors = VectorFile(current)
        current = gen / BM25_DIR
        # BM25 arrays: in memory up to HNSW_MAX (a few MB; mapped arrays cost ~40 slicings per
        # query), mapped above.
        bm25 = lexical.BM25Arrays.load(current, mmap=kind == "ivf-sq8")
    except Exception as exc:  # faiss raises RuntimeError, sqlite DatabaseError, numpy ValueError...
        if db is not None:
            db.close()
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise IndexCorrupt(f"Index file {current} is unreadable ({type(exc).__name__}: {first}). {RERUN}") from exc
    counts = (n_rows, len(source_ids), len(starts) - 1, passage_index.ntotal, int(bm25.scores["num_docs"]),
              manifest.passages)
    sentences = (n_sentences, int(starts[-1]) if len(starts) else -1, len(sentence_vectors))
    if len(set(counts)) != 1 or len(set(sentences)) != 1:
        db.close()
        raise IndexCorrupt(
            f"The index in {gen}/ is inconsistent (passages/vectors/BM25/manifest: {counts}; "
            f"sentences: {sentences}). {RERUN}"
        )
    return LocalReader(manifest=manifest, db=db, source_names=names, source_ids=source_ids, sentence_starts=starts,
                       bm25=bm25, passage_index=passage_index, sentence_vectors=sentence_vectors, path=gen)


def read_reusable(index_dir: Path) -> Reusable | None:
    """The live generation's passages and vectors for an incremental build (None: no index).

    Raises:
        IndexCorrupt: a file needed is missing or damaged (the caller then builds in full).
    """
    gen = current_generation(index_dir)
    if gen is None:
        return None
    manifest = read_generation_manifest(gen)
    check_files(gen, manifest, full=True)  # every sha256: damage must not be carried forward
    current = gen / PASSAGES_DB
    try:
        passages, spans = read_passages(current)
        current = gen / STORED_VECTORS
        passage_vectors = integrity.load_npy(current, mmap=True)
        current = gen / SENTENCE_VECTORS
        sentence_vectors = integrity.load_npy(current, mmap=True)
    except Exception as exc:  # sqlite DatabaseError, numpy ValueError...
        raise IndexCorrupt(f"Index file {current} is unreadable ({type(exc).__name__}: {exc}). {RERUN}") from exc
    if len(passage_vectors) != len(passages) or len(sentence_vectors) != len(spans):
        raise IndexCorrupt(f"The index in {gen}/ is inconsistent (vectors and passages differ). {RERUN}")
    rows: dict[str, tuple[int, int]] = {}
    for i, p in enumerate(passages):
        a, _ = rows.get(p.source, (i, i))
        rows[p.source] = (a, i + 1)
    return Reusable(manifest, passages, passage_vectors, spans, sentence_vectors, rows)


def _query(index_dir: Path, sql: str, args=()) -> list[tuple]:
    gen = current_generation(index_dir)
    if gen is None:
        raise IndexMissing(f"No index in {index_dir}/. Run `qa index` to build one.")
    path = gen / PASSAGES_DB
    try:
        con = connect(path)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise IndexCorrupt(f"Index file {path} is unreadable ({exc}). {RERUN}") from exc


def list_sources(index_dir: Path) -> list[tuple[str, int]]:
    """(source, number of passages) of every file in the live index, sorted by source.

    Raises:
        IndexMissing: no index. IndexCorrupt: the passage store is unreadable.
    """
    return _query(index_dir, "SELECT source, COUNT(*) FROM passages GROUP BY source ORDER BY source")


def passages_of(index_dir: Path, source: str) -> list[Passage]:
    """The passages of one source file in the live index, in the order of the text."""
    rows = _query(index_dir, f"SELECT {COLUMNS} FROM passages WHERE source = ? ORDER BY id", (source,))
    return [Passage(*row) for row in rows]
