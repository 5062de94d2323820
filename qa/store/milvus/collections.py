"""What one build of the milvus backend holds: three collections per generation, named
`<prefix>_<generation>_{passages,sentences,meta}`, and the alias `<prefix>_live` that points at the
live generation's passages collection (the equivalent of the local backend's CURRENT link).

- passages: row (primary key = passage row), source, section, start/end line and char, page
  (-1: none), locator, text (the exact span, what is cited), terms (qa's BM25 tokens of section +
  text, space-separated, an analyzed field) → sparse (the server-side BM25 Function), vector
  (FLOAT_VECTOR, HNSW, inner product = cosine), first_sentence and sentences (its sentence ids).
- sentences: id (= sentence id), passage row, start/end char, vector.
- meta: key → value (JSON, in chunks) / num: the manifest, source row ranges, BM25 statistics
  (documents, average length) and one row per BM25 term with its document frequency, so that
  `qa`'s own BM25 (the local backend's scores) is computed exactly for the candidates.

Writing order: collections, rows, then the meta (manifest last); the alias moves only after
every count was checked, so a reader sees the old generation or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter

import numpy as np

from ... import lexical
from ...errors import IndexCorrupt
from ...schema import Manifest, Passage

PASSAGE_FIELDS = ["row", "source", "section", "start_line", "end_line", "start_char", "end_char", "page", "locator",
                  "text"]
HNSW_M = 32  # as the local backend's HNSW (qa.store.local.vectors)
HNSW_EF_CONSTRUCTION = 80
EF_SEARCH = 100  # at least; = SearchParams.ann_candidates
MAX_TEXT = 65_535  # bytes in a Milvus VARCHAR
MAX_KEY = 4_096
CHUNK = 60_000  # characters of JSON per meta row
BATCH = 1_000  # rows per insert (a few MB per request)
LIMIT = 16_384  # Milvus's largest topk / query window
CONSISTENCY = "Strong"  # real Milvus defaults to Bounded: a build's rows must be visible at once


def names(prefix: str, gen: str) -> dict[str, str]:
    return {kind: f"{prefix}_{gen}_{kind}" for kind in ("passages", "sentences", "meta")}


def live_alias(prefix: str) -> str:
    return f"{prefix}_live"


def new_generation() -> str:
    """A collection-name-safe generation id, ordered by time: g<UTC time>_<pid>_<random>."""
    return f"g{time.strftime('%Y%m%d%H%M%S', time.gmtime())}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def generation_of(collection: str, prefix: str) -> str | None:
    """The generation of a collection named by `names`, or None for any other collection."""
    head = f"{prefix}_g"
    if not collection.startswith(head):
        return None
    rest = collection[len(prefix) + 1 :]
    gen, _, kind = rest.rpartition("_")
    return gen if kind in ("passages", "sentences", "meta") and gen else None


def _vector_index(client, field: str, flat: bool = False):
    params = client.prepare_index_params()
    if flat:  # read by id only, never searched
        params.add_index(field, index_type="FLAT", metric_type="IP")
    else:
        params.add_index(field, index_type="HNSW", metric_type="IP",
                         params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION})
    return params


def create(conn, prefix: str, gen: str, dim: int) -> dict[str, str]:
    """Create the three empty collections of generation `gen`; returns their names."""
    mod = conn_module()
    DataType, Function, FunctionType = mod.DataType, mod.Function, mod.FunctionType
    col = names(prefix, gen)

    s = mod.MilvusClient.create_schema(auto_id=False)
    s.add_field("row", DataType.INT64, is_primary=True)
    s.add_field("source", DataType.VARCHAR, max_length=MAX_KEY)
    s.add_field("section", DataType.VARCHAR, max_length=MAX_TEXT)
    for name in ("start_line", "end_line", "start_char", "end_char", "page", "first_sentence", "sentences"):
        s.add_field(name, DataType.INT64)
    s.add_field("locator", DataType.VARCHAR, max_length=256)
    s.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT)
    # qa's tokens are already lower-cased and stemmed: the standard tokenizer only splits them.
    s.add_field("terms", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True,
                analyzer_params={"tokenizer": "standard"})
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"],
                            output_field_names=["sparse"]))
    index = _vector_index(conn, "vector")
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                    params={"bm25_k1": lexical_k1(), "bm25_b": lexical_b()})
    index.add_index("source", index_type="INVERTED")
    conn.create_collection(col["passages"], schema=s, index_params=index, consistency_level=CONSISTENCY)

    s = mod.MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    for name in ("passage", "start_char", "end_char"):
        s.add_field(name, DataType.INT64)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    conn.create_collection(col["sentences"], schema=s, index_params=_vector_index(conn, "vector", flat=True),
                           consistency_level=CONSISTENCY)
    create_keyed(conn, col["meta"])
    return col


def create_keyed(conn, name: str) -> None:
    """A key → (value, num) collection (Milvus wants a vector field in every collection: `v`, unused)."""
    mod = conn_module()
    s = mod.MilvusClient.create_schema(auto_id=False)
    s.add_field("key", mod.DataType.VARCHAR, max_length=MAX_KEY, is_primary=True)
    s.add_field("value", mod.DataType.VARCHAR, max_length=MAX_TEXT)
    s.add_field("num", mod.DataType.INT64)
    s.add_field("v", mod.DataType.FLOAT_VECTOR, dim=2)
    conn.create_collection(name, schema=s, index_params=_vector_index(conn, "v", flat=True),
                           consistency_level=CONSISTENCY)


def conn_module():
    from .client import pymilvus

    return pymilvus()


def lexical_k1() -> float:
    return lexical.BM25_K1 if hasattr(lexical, "BM25_K1") else 1.2


def lexical_b() -> float:
    return lexical.BM25_B if hasattr(lexical, "BM25_B") else 0.75


def keyed_row(key: str, value: str = "", num: int = 0) -> dict:
    return {"key": key, "value": value, "num": int(num), "v": [0.0, 0.0]}


def json_rows(name: str, obj) -> list[dict]:
    """`obj` as JSON cut into VARCHAR-sized rows `name/0`, `name/1`, ... (row 0's num = how many)."""
    text = json.dumps(obj, ensure_ascii=False)
    parts = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    return [keyed_row(f"{name}/{i}", part, len(parts) if i == 0 else i) for i, part in enumerate(parts)]


def read_json(conn, collection: str, name: str):
    """The object written by `json_rows` (IndexCorrupt when a chunk is missing)."""
    head = conn.query(collection, ids=[f"{name}/0"], output_fields=["value", "num"])
    if not head:
        raise IndexCorrupt(f"Milvus collection {collection} has no {name}: the build that wrote it was cut short. "
                           f"Run `qa index --full` to rebuild it.")
    count = int(head[0]["num"])
    parts = {0: head[0]["value"]}
    if count > 1:
        rest = conn.query(collection, ids=[f"{name}/{i}" for i in range(1, count)], output_fields=["key", "value"])
        parts.update({int(r["key"].rsplit("/", 1)[1]): r["value"] for r in rest})
    if len(parts) != count:
        raise IndexCorrupt(f"Milvus collection {collection} holds {len(parts)} of {count} parts of its {name}. "
                           f"Run `qa index --full` to rebuild it.")
    return json.loads("".join(parts[i] for i in range(count)))


def source_ranges(passages: list[Passage]) -> dict[str, list[list[int]]]:
    """source → its runs of passage rows [[first, last), ...] (one run when grouped, as builds write)."""
    out: dict[str, list[list[int]]] = {}
    for row, p in enumerate(passages):
        runs = out.setdefault(p.source, [])
        if runs and runs[-1][1] == row:
            runs[-1][1] = row + 1
        else:
            runs.append([row, row + 1])
    return out


def _check_size(p: Passage) -> None:
    for name in ("text", "section"):
        if len(getattr(p, name).encode("utf-8")) > MAX_TEXT:
            from ...errors import BadInput

            raise BadInput(f"A passage of {p.source} (line {p.start_line}) has a {name} over {MAX_TEXT} bytes, "
                           f"more than a Milvus VARCHAR holds: split the file or lower the chunk size.")


def insert_all(conn, collection: str, rows, batch: int = BATCH, beat=None) -> int:
    """Insert `rows` (an iterable of dicts) in batches; `beat()` between batches (the lock's
    heartbeat). Returns how many."""
    n, buf = 0, []
    for row in rows:
        buf.append(row)
        if len(buf) >= batch:
            conn.insert(collection, buf)
            n += len(buf)
            buf = []
            if beat:
                beat()
    if buf:
        conn.insert(collection, buf)
        n += len(buf)
    return n


def write_generation(conn, prefix: str, gen: str, data, beat=None) -> tuple[dict[str, str], dict[str, int]]:
    """Write `data` (a `qa.store.base.IndexData`) as generation `gen`. Returns (collection names,
    rows per collection). Does not switch the alias."""
    passages = data.passages
    vectors = np.asarray(data.passage_vectors, dtype=np.float32)
    dim = int(vectors.shape[1]) if vectors.ndim == 2 and vectors.shape[1] else int(data.manifest.dim)
    spans = list(data.sentence_spans)
    svecs = data.sentence_vectors if data.sentence_vectors is not None else np.zeros((0, dim), np.float32)
    svecs = np.asarray(svecs, dtype=np.float32)
    col = create(conn, prefix, gen, dim)

    owner = np.fromiter((s[0] for s in spans), dtype=np.int64, count=len(spans))
    first = np.searchsorted(owner, np.arange(len(passages) + 1))
    tokens = [lexical.tokenize(lexical.bm25_text(p)) for p in passages]
    df = Counter()
    for toks in tokens:
        df.update(set(toks) or {""})

    def passage_rows():
        for i, (p, toks) in enumerate(zip(passages, tokens)):
            _check_size(p)
            yield {
                "row": i, "source": p.source, "section": p.section, "start_line": p.start_line,
                "end_line": p.end_line, "start_char": p.start_char, "end_char": p.end_char,
                "page": -1 if p.page is None else int(p.page), "locator": p.locator or "", "text": p.text,
                "terms": " ".join(toks), "vector": vectors[i].tolist(),
                "first_sentence": int(first[i]), "sentences": int(first[i + 1] - first[i]),
            }

    def sentence_rows():
        for j, (row, start, end) in enumerate(spans):
            yield {"id": j, "passage": int(row), "start_char": int(start), "end_char": int(end),
                   "vector": svecs[j].tolist()}

    counts = {
        col["passages"]: insert_all(conn, col["passages"], passage_rows(), beat=beat),
        col["sentences"]: insert_all(conn, col["sentences"], sentence_rows(), batch=5 * BATCH, beat=beat),
    }
    data.manifest.index_files = dict(counts)  # rows per collection (the local backend: bytes per file)
    lengths = [len(t) or 1 for t in tokens]  # bm25s indexes a passage without tokens as [""]
    stats = {"documents": len(passages), "avgdl": float(np.mean(lengths)) if lengths else 1.0,
             "k1": lexical_k1(), "b": lexical_b()}
    term_rows = (keyed_row(f"t/{t}", "", n) for t, n in df.items() if len(f"t/{t}".encode()) <= MAX_KEY)
    meta = insert_all(conn, col["meta"], term_rows, batch=5 * BATCH, beat=beat)
    meta += insert_all(conn, col["meta"], json_rows("sources", source_ranges(passages)))
    meta += insert_all(conn, col["meta"], json_rows("stats", stats))
    meta += insert_all(conn, col["meta"], json_rows("manifest", data.manifest.to_dict()))  # last: complete
    counts[col["meta"]] = meta
    for name in col.values():
        conn.flush(name)
        conn.load_collection(name)
    for name, n in counts.items():  # a short write is caught before the alias moves
        got = count(conn, name)
        if got != n:
            raise IndexCorrupt(f"Milvus collection {name} holds {got} rows, {n} were written. "
                               f"Run `qa index --full` to build again.")
    return col, counts


def count(conn, collection: str) -> int:
    res = conn.query(collection, filter="", output_fields=["count(*)"])
    return int(res[0]["count(*)"]) if res else 0


def get_rows(conn, collection: str, ids, fields: list[str], key: str) -> dict:
    """{id: row} of `ids` (any number; asked in windows of LIMIT)."""
    ids = [int(i) for i in ids]
    out = {}
    if not ids:
        return out
    for at in range(0, len(ids), LIMIT):
        for r in conn.query(collection, ids=ids[at : at + LIMIT], output_fields=fields):
            out[int(r[key])] = r
    return out


def iterate(conn, collection: str, fields: list[str], batch: int = 4 * BATCH):
    """Every row of `collection` (in no particular order)."""
    it = conn.query_iterator(collection, batch_size=batch, output_fields=fields)
    try:
        while True:
            rows = it.next()
            if not rows:
                break
            yield from rows
    finally:
        it.close()


def to_passage(r: dict) -> Passage:
    page = int(r["page"])
    return Passage(text=r["text"], source=r["source"], section=r["section"], start_line=int(r["start_line"]),
                   end_line=int(r["end_line"]), start_char=int(r["start_char"]), end_char=int(r["end_char"]),
                   page=None if page < 0 else page, locator=r["locator"])


def read_manifest(conn, collection: str) -> Manifest:
    data = read_json(conn, collection, "manifest")
    if not isinstance(data, dict):
        raise IndexCorrupt(f"Milvus collection {collection} holds no manifest object. Run `qa index --full`.")
    return Manifest.from_dict(data)
