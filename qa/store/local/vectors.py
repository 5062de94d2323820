"""FAISS side of the local backend: which vector index a corpus size gets, building, reading and
searching it, and `VectorFile`, positional row reads of a `.npy` matrix. faiss is imported on
first use."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import IndexMissing

# Vector index by corpus size (passages), measured in bench/speed/scale.py (see bench/RESULTS.md):
# up to EXACT_MAX every passage is scored exactly (IndexFlatIP) and results are exact; then an
# HNSW graph over the float vectors (exact cosines for the candidates it finds); above HNSW_MAX,
# IVF with 8-bit scalar quantisation (a quarter of the float32 memory, memory-mapped).
EXACT_MAX = 5_000
HNSW_MAX = 200_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 100  # = SearchParams.ann_candidates: the smallest that returns them all; recall@10 0.999 at 20k
IVF_NPROBE_FRACTION = 1 / 128  # of the lists searched per query (at least IVF_NPROBE_MIN);
IVF_NPROBE_MIN = 16  # recall@10 0.98 at 1M in bench/speed/scale.py, where the SQ8 codes, not nprobe, limit it
IVF_TRAIN_PER_LIST = 40  # vectors sampled per list to train the coarse quantiser and SQ8 ranges


def index_kind(n_passages: int) -> str:
    """Which vector index a corpus of `n_passages` gets: "flat", "hnsw" or "ivf-sq8"."""
    if n_passages <= EXACT_MAX:
        return "flat"
    return "hnsw" if n_passages <= HNSW_MAX else "ivf-sq8"


def sentence_dtype(n_passages: int):
    """float16 (half the disk and page cache) above HNSW_MAX, where only candidates' sentences
    are read; float32 below (converting float16 costs ~0.4 ms per 1,000 rows per query)."""
    return np.float16 if index_kind(n_passages) == "ivf-sq8" else np.float32


def ivf_lists(n: int) -> int:
    """Number of IVF lists for n vectors: about 4·sqrt(n), a power of two (4,096 at 1M)."""
    return int(2 ** round(np.log2(max(4 * np.sqrt(max(n, 1)), 16))))


def build_vector_index(vectors: np.ndarray, kind: str | None = None, seed: int = 0):
    """An inner-product FAISS index of `vectors` (normalised float32 rows: an array, or a
    `VectorFile`, read in blocks) of `kind` (default: `index_kind(len(vectors))`)."""
    faiss = _faiss()
    if not isinstance(vectors, VectorFile):
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    kind = kind or index_kind(n)
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivf-sq8":
        nlist = min(ivf_lists(n), max(1, n // 39))  # FAISS wants >= 39 training points per list
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        rng = np.random.default_rng(seed)
        train = IVF_TRAIN_PER_LIST * nlist
        sample = vectors[0:n] if n <= train else vectors[np.sort(rng.choice(n, train, replace=False))]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.nprobe = max(IVF_NPROBE_MIN, int(nlist * IVF_NPROBE_FRACTION))
    else:
        raise ValueError(f"unknown vector index kind {kind!r}")
    if n:
        for start in range(0, n, 65_536):  # in blocks: bounded temporary memory
            index.add(np.ascontiguousarray(vectors[start : start + 65_536], dtype=np.float32))
    if kind == "ivf-sq8":
        index.make_direct_map()  # id -> (list, offset): scoring a BM25 candidate reads its vector
    return index


def vector_kind(index) -> str:
    """"flat", "hnsw" or "ivf-sq8" for a loaded index."""
    name = type(index).__name__
    return "hnsw" if "HNSW" in name else "ivf-sq8" if "IVF" in name else "flat"


def read_vector_index(path: Path, kind: str = "flat"):
    """Read a passage index. An IVF-SQ8 index (large corpora) is memory-mapped: pages are read
    as lists are searched and shared between processes. Flat and HNSW indexes (<= HNSW_MAX
    passages) are read into memory: a scan of mapped 4 KiB pages measured several times slower."""
    faiss = _faiss()
    flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if kind == "ivf-sq8" else 0
    index = faiss.read_index(str(path), flags)
    if vector_kind(index) == "hnsw":
        faiss.downcast_index(index).hnsw.efSearch = HNSW_EF_SEARCH
    elif vector_kind(index) == "ivf-sq8":
        ivf = faiss.extract_index_ivf(index)
        if ivf.direct_map.type == faiss.DirectMap.NoMap:  # written by an older build
            ivf.make_direct_map()
        lists = faiss.downcast_InvertedLists(ivf.invlists)
        if isinstance(lists, faiss.OnDiskInvertedLists):  # the mapped lists
            # Their search starts `prefetch_nthread` (32) threads per query to page the lists in
            # ahead of the scan: ~1 ms and ~50 page faults (new thread stacks) per query, 4-5x
            # the scan of 32 lists from the page cache (bench/speed/scale.py). Read on demand instead.
            lists.prefetch_nthread = 0
    return index


class VectorFile:
    """Rows of a `.npy` matrix read with positional reads, never mapped: only the rows asked for
    are read (through the page cache), so a long-running process's RSS does not grow toward the
    file's size as a memory map's would (3 GB of sentence vectors at 1M passages).

    `vectors[j]` is row j; `vectors[ids]` (ascending ids) reads each contiguous run at once;
    `vectors[a:b]` rows a to b.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(fh)
            self.offset = fh.tell()
        if fortran or len(shape) != 2:
            raise ValueError(f"{path}: expected a C-ordered matrix")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        self._fd = os.open(self.path, os.O_RDONLY)
        expected = self.offset + self.shape[0] * self._row_bytes
        if os.fstat(self._fd).st_size < expected:
            raise ValueError(f"{path} is truncated")

    def __len__(self) -> int:
        return self.shape[0]

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    def __del__(self):
        self.close()

    def _read(self, start: int, count: int) -> np.ndarray:
        data = os.pread(self._fd, count * self._row_bytes, self.offset + start * self._row_bytes)
        return np.frombuffer(data, dtype=self.dtype).reshape(count, self.shape[1])

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                raise ValueError("VectorFile slices take step 1")
            return self._read(start, max(0, stop - start))
        if isinstance(key, (int, np.integer)):
            return self._read(int(key), 1)[0]
        ids = np.asarray(key, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.shape[1]), dtype=self.dtype)
        breaks = np.flatnonzero(np.diff(ids) != 1) + 1
        starts = np.concatenate([[0], breaks])
        ends = np.concatenate([breaks, [len(ids)]])
        if len(starts) == 1:
            return self._read(int(ids[0]), len(ids))
        return np.concatenate([self._read(int(ids[a]), int(b - a)) for a, b in zip(starts, ends)])


class _IndexView(np.ndarray):
    """An array viewing memory owned by a FAISS index; keeps the index alive while it lives."""

    owner = None


def flat_vectors(index) -> np.ndarray:
    """The (n, dim) float32 vectors inside a flat index, as a view (no copy)."""
    faiss = _faiss()
    n, dim = index.ntotal, index.d
    if not n:
        return np.zeros((0, dim), dtype=np.float32)
    view = faiss.rev_swig_ptr(index.get_xb(), n * dim).reshape(n, dim).view(_IndexView)
    view.owner = index
    return view


def search_vectors(index, query: np.ndarray, k: int, allowed: np.ndarray | None = None):
    """The `k` best (ids, inner products) of `query` in an approximate `index`, restricted to
    passages where `allowed` is True (FAISS skips the others while searching)."""
    faiss = _faiss()
    k = max(0, min(k, index.ntotal))
    if not k:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    params = None
    if allowed is not None:
        selector = faiss.IDSelectorBitmap(np.packbits(allowed, bitorder="little"))
        if vector_kind(index) == "hnsw":
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(HNSW_EF_SEARCH, k))
        elif vector_kind(index) == "ivf-sq8":
            params = faiss.SearchParametersIVF(sel=selector, nprobe=faiss.extract_index_ivf(index).nprobe)
        else:
            params = faiss.SearchParameters(sel=selector)
    elif vector_kind(index) == "hnsw" and k > HNSW_EF_SEARCH:
        params = faiss.SearchParametersHNSW(efSearch=k)
    scores, ids = index.search(np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), k, params=params)
    keep = ids[0] >= 0
    return ids[0][keep].astype(np.int64), scores[0][keep]


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a hard dependency
        raise IndexMissing("faiss is not installed: `pip install faiss-cpu`.") from exc
    return faiss



class NpyAppender:
    """A `.npy` matrix written row block by row block (the row count is not known in advance):
    the header is written with room for any count and rewritten, same length, by `close`."""

    HEADER = 128  # bytes: magic, version, length, the header dict padded with spaces

    def __init__(self, path: Path, dtype, dim: int):
        self.path = Path(path)
        self.dtype, self.dim, self.rows = np.dtype(dtype), int(dim), 0
        self._fh = open(self.path, "wb")
        self._fh.write(self._header())

    def _header(self) -> bytes:
        text = repr({"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                     "shape": (self.rows, self.dim)})
        body_len = self.HEADER - 10  # magic (6) + version (2) + uint16 length (2)
        text = text.ljust(body_len - 1) + "\n"
        return b"\x93NUMPY\x01\x00" + body_len.to_bytes(2, "little") + text.encode("latin1")

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype).reshape(-1, self.dim)
        self._fh.write(memoryview(rows).cast("B"))  # the array's own buffer: no copy
        self.rows += len(rows)

    def close(self) -> None:
        self._fh.seek(0)
        self._fh.write(self._header())
        self._fh.close()
