"""INTEGRITY: every file `qa` writes and later reads back is checked, and faults are survivable.

- Checksums. A generation's manifest records, for every other file of the generation, its size,
  its sha256 and a `sample` digest (the whole file up to SAMPLE_FULL_MAX, else SAMPLE_BLOCKS
  blocks spread over it); the manifest carries a seal (sha256 of its own canonical JSON). Loading
  checks sizes, headers, the seal and the sample digests (cheap); `qa status --verify` and an
  update about to reuse stored vectors check every sha256 (full).
- Reuse. Stored passages of a file about to be reused are compared with a digest of their
  offsets and texts recorded at build time, and (text formats) with the file's text at their
  offsets; stored vectors must be unit length.
- Stale citations. `SourceHashes` tells whether a corpus file still has the sha256 it was
  indexed with (memoised by size, mtime and inode, so a query does not re-read files).
- Space. `estimate_bytes` / `check_free_space`: a build says how much it needs before writing.
- Fault points. `fault_point(settings, name)` SIGKILLs the process at a named step of the build
  when `Settings.fault_point` (QA_FAULT_POINT) names it: for crash tests only.

Only the standard library and numpy; no other stage is imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import threading
from pathlib import Path

import numpy as np

from .errors import DiskFull

log = logging.getLogger(__name__)

SAMPLE_FULL_MAX = 32 << 20  # files up to 32 MiB: the cheap check hashes all of them (~30 ms)
SAMPLE_BLOCKS = 64
BLOCK = 4096
SEAL = "manifest_sha256"
NORM_TOLERANCE = 1e-3  # a stored vector whose length differs more from 1 is not reused

FAULT_POINTS = ("scan", "embed", "write_passages", "write_vectors", "write_bm25", "fsync", "switch", "prune")
"""Steps of a build where QA_FAULT_POINT can kill it (tests only), in build order."""

_SQLITE_MAGIC = b"SQLite format 3\x00"
_NPY_MAGIC = b"\x93NUMPY"


# --- digests -------------------------------------------------------------------------------------


# numpy parses an .npy header with ast.literal_eval, which on CPython 3.11 before 3.11.8 can fail with
# "SystemError: AST constructor recursion depth mismatch" when two threads parse at once
# (python/cpython#106905): a build thread and a reader thread both open array files.
_NPY_LOCK = threading.Lock()


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """np.load of one .npy file (no pickles; memory-mapped read-only when `mmap`), one header parse at
    a time in this process."""
    with _NPY_LOCK:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (plain os.read: a search hashes each cited
    file the first time it is cited, and a Python file object costs 4-5x the hash of a small file)."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        while block := os.read(fd, 1 << 20):
            digest.update(block)
    finally:
        os.close(fd)
    return digest.hexdigest()


def sample_digest(path: Path, size: int | None = None) -> str:
    """A cheap digest of a file: its sha256 up to SAMPLE_FULL_MAX bytes, else the sha256 of its
    size and SAMPLE_BLOCKS blocks at evenly spaced offsets (first and last block included)."""
    size = os.path.getsize(path) if size is None else size
    if size <= SAMPLE_FULL_MAX:
        return sha256_file(path)
    digest = hashlib.sha256(str(size).encode())
    fd = os.open(path, os.O_RDONLY)
    try:
        for offset in np.linspace(0, max(size - BLOCK, 0), SAMPLE_BLOCKS).astype(np.int64):
            digest.update(os.pread(fd, BLOCK, int(offset)))
    finally:
        os.close(fd)
    return "sample:" + digest.hexdigest()


def describe(path: Path) -> dict:
    """{"size", "sha256", "sample"} of one file."""
    size = os.path.getsize(path)
    full = sha256_file(path)
    return {"size": size, "sha256": full, "sample": full if size <= SAMPLE_FULL_MAX else sample_digest(path, size)}


def record_files(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, dict]:
    """`describe` of every file below `folder` but `skip`, by POSIX path relative to it."""
    folder = Path(folder)
    return {
        p.relative_to(folder).as_posix(): describe(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() not in skip
    }


def header_problem(path: Path) -> str | None:
    """What is wrong with the first bytes of an index file, judged by its kind (None: fine)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if path.suffix == ".sqlite" and head != _SQLITE_MAGIC:
        return "it is not an SQLite database"
    if path.suffix == ".npy" and not head.startswith(_NPY_MAGIC):
        return "it is not a NumPy array file"
    if path.suffix in (".faiss", ".onnx", ".npy", ".sqlite") and not head.strip(b"\x00"):
        return "it starts with zeros"
    return None


def file_problem(path: Path, entry: dict, full: bool = False) -> str | None:
    """Why the file at `path` is not the one recorded in `entry` (see `describe`), or None.

    Cheap (`full` False): size, header and sample digest; full: size, header and sha256.
    """
    try:
        size = os.path.getsize(path)
        if size != entry.get("size"):
            return f"is damaged ({size} bytes, the build wrote {entry.get('size')})"
        problem = header_problem(path)
        if problem:
            return f"is damaged ({problem})"
        if full:
            if sha256_file(path) != entry.get("sha256"):
                return "is damaged (its sha256 differs from the one recorded when it was written)"
        elif entry.get("sample") and sample_digest(path, size) != entry["sample"]:
            return "is damaged (its content differs from what the build wrote)"
    except FileNotFoundError:
        return "is missing"
    except PermissionError:
        return "cannot be read (permission denied): give the user running qa read access"
    except IsADirectoryError:
        return "is damaged (a folder where a file should be)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


# --- the manifest's seal ---------------------------------------------------------------------------


def _canonical(manifest: dict) -> bytes:
    return json.dumps({k: v for k, v in manifest.items() if k != SEAL}, sort_keys=True).encode("utf-8")


def seal(manifest: dict) -> dict:
    """`manifest` with SEAL set to the sha256 of the rest of it."""
    manifest[SEAL] = hashlib.sha256(_canonical(manifest)).hexdigest()
    return manifest


def seal_ok(manifest: dict) -> bool:
    """Whether the manifest is as sealed (a manifest without a seal does not pass)."""
    return manifest.get(SEAL) == hashlib.sha256(_canonical(manifest)).hexdigest()


# --- reuse checks ---------------------------------------------------------------------------------


def passages_digest(rows) -> str:
    """sha256 over (start_char, end_char, text) of a file's passages, in order: recorded per
    file in the manifest, recomputed before the passages are reused."""
    digest = hashlib.sha256()
    for start, end, text in rows:
        digest.update(f"{start}:{end}:{len(text)}\0".encode())
        digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def unit_rows(vectors: np.ndarray) -> bool:
    """Whether every row is finite and of unit length (what a normalised embedding is)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if not len(vectors):
        return True
    if not np.isfinite(vectors).all():
        return False
    norms = np.linalg.norm(vectors, axis=1)
    return bool(np.all(np.abs(norms - 1.0) <= NORM_TOLERANCE))


# --- stale citations ------------------------------------------------------------------------------


class SourceHashes:
    """sha256 of corpus files, memoised by (size, mtime_ns, inode, ctime_ns): asking about a file
    that has not been touched costs one stat. Thread-safe enough: a race re-hashes a file."""

    def __init__(self, corpus_dir: Path):
        self.corpus_dir = Path(corpus_dir)
        self._folder = str(self.corpus_dir)
        self._memo: dict[str, tuple[tuple, str | None]] = {}

    def current(self, source: str) -> str | None:
        """The file's sha256 now, or None when it is gone or unreadable."""
        path = os.path.join(self._folder, source)  # a plain string: asked per cited file per query
        try:
            st = os.stat(path)
        except OSError:
            return None
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        memo = self._memo.get(source)
        if memo and memo[0] == stamp:
            return memo[1]
        try:
            digest = sha256_file(path)
        except OSError:
            digest = None
        self._memo[source] = (stamp, digest)
        return digest

    def changed(self, source: str, indexed: str | None) -> bool:
        """Whether `source` differs from the bytes it was indexed from (sha256 `indexed`)."""
        return indexed is None or self.current(source) != indexed



# --- space ------------------------------------------------------------------------------------


def estimate_bytes(passages: int, sentences: int, dim: int, text_chars: int, sentence_itemsize: int = 4) -> int:
    """Bytes a generation of this size takes on disk, rounded up generously: the passage store
    (text + rows), passage vectors twice (FAISS and .npy, plus graph links), sentence vectors,
    BM25 arrays, and a margin of 25% + 1 MiB."""
    store = 2 * text_chars + 120 * passages + 40 * sentences + 64 * 1024
    vectors = passages * dim * 4 * 2 + passages * 64 * 4 + sentences * dim * sentence_itemsize
    bm25 = 2 * text_chars + 16 * passages
    return int((store + vectors + bm25) * 1.25) + (1 << 20)


def mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def check_free_space(folder: Path, needed: int) -> None:
    """Refuse to start writing `needed` bytes into `folder` when its filesystem has less free.

    Raises:
        DiskFull: the message says how much is needed and how much is free.
    """
    try:
        free = shutil.disk_usage(folder).free
    except OSError:  # cannot tell: let the write itself fail, cleanly
        return
    if free < needed:
        raise DiskFull(
            f"Not enough free space in {folder}/: this build needs about {mib(needed)}, "
            f"{mib(free)} is free. Free some space, or point --index (QA_INDEX_DIR) at a larger disk."
        )


def disk_full_error(folder: Path, needed: int | None, exc: BaseException) -> DiskFull:
    """The DiskFull to raise when a write failed for lack of space (ENOSPC, SQLite "disk is full")."""
    need = f"this build needs about {mib(needed)}; " if needed else ""
    try:
        free = f"{mib(shutil.disk_usage(folder).free)} is free. "
    except OSError:
        free = ""
    return DiskFull(
        f"The disk holding {folder}/ filled up while writing the index ({exc}); {need}{free}"
        "Nothing was changed: the previous index is still live and the partial files were removed. "
        "Free some space, or point --index (QA_INDEX_DIR) at a larger disk."
    )


def is_disk_full(exc: BaseException) -> bool:
    """Whether an exception means the filesystem is full."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    # numpy: "N requested and M written"; FAISS: "... No space left ..."; SQLite: "database or disk is full"
    return any(s in text for s in ("disk is full", "no space left", "not enough free space", "requested and"))


# --- fault points (tests) -----------------------------------------------------------------------


def fault_point(settings, name: str) -> None:
    """SIGKILL this process when `settings.fault_point` is `name` (QA_FAULT_POINT; tests only)."""
    if getattr(settings, "fault_point", "") == name:
        log.warning("QA_FAULT_POINT=%s: killing this build on purpose (test hook)", name)
        os.kill(os.getpid(), signal.SIGKILL)
