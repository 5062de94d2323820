"""EVAL runners over benchmark datasets (`qa eval`); the metrics are `qa.evaluation.metrics`.

Two kinds of dataset:
- a BEIR-layout folder (`corpus.jsonl[.gz]`, `queries.jsonl`, `qrels/<split>.tsv`): every corpus
  document becomes one Markdown file (its title as the heading, so the section) and goes through
  the same index build as a user's corpus; a document's score is the score of its best passage;
- a QA jsonl (`{"id","question","evidence"}` per line, evidence null = unanswerable) asked of the
  corpus folder in `Settings`: a passage is right when it contains the evidence text.

Embeddings are cached on disk per model and text (`CachedEmbedder`), so a rerun takes seconds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import sqlite3
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import ChunkSettings, Settings
from ..errors import BadInput
from .metrics import beir_metrics, mean

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path.home() / ".cache" / "qa"

# --- on-disk embedding cache -----------------------------------------------------------------


class CachedEmbedder:
    """An `Embedder` that remembers every vector it computed, keyed by model name and text, in a
    SQLite file under `cache_dir`. Vectors are those of the wrapped embedder, bit for bit.

    Each row records its size and sha256 when written and is checked when read: a damaged row
    is computed again, a damaged file is set aside and started afresh (one warning each time)."""

    BLOCK = 2048  # texts encoded and committed at a time

    def __init__(self, inner, cache_dir: Path = DEFAULT_CACHE):
        self.inner = inner
        self.name = inner.name
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^\w.-]+", "_", inner.name)[-80:]
        self.path = cache_dir / f"vectors-{slug}.sqlite"
        self.computed = 0
        self.damaged = 0  # rows found damaged and computed again
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            log.warning("The embedding cache %s is damaged (%s); starting it afresh.", self.path, exc)
            self.path.replace(self.path.with_name(self.path.name + ".damaged"))
            self._open()

    def _open(self) -> None:
        self._con = sqlite3.connect(self.path, check_same_thread=False)
        self._con.execute("DROP TABLE IF EXISTS v")  # unchecked rows of an older qa
        self._con.execute(
            "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL, "
            "size INTEGER NOT NULL, sha256 TEXT NOT NULL)"
        )
        self._con.execute("SELECT COUNT(*) FROM vectors").fetchone()  # a damaged file fails here

    @property
    def dim(self) -> int:
        return self.inner.dim

    def _key(self, kind: str, text: str) -> str:
        return hashlib.sha256(f"{self.name}\0{kind}\0{text}".encode()).hexdigest()[:40]

    def _encode(self, kind: str, texts: Sequence[str], encode) -> np.ndarray:
        keys = [self._key(kind, t) for t in texts]
        found: dict[str, bytes] = {}
        damaged = 0
        for start in range(0, len(keys), 500):
            block = keys[start : start + 500]
            rows = self._con.execute(
                f"SELECT key, vec, size, sha256 FROM vectors WHERE key IN ({','.join('?' * len(block))})", block
            )
            for key, vec, size, digest in rows:
                if isinstance(vec, bytes) and len(vec) == size and hashlib.sha256(vec).hexdigest() == digest:
                    found[key] = vec
                else:
                    damaged += 1
        if damaged:
            self.damaged += damaged
            log.warning("%d damaged vectors in the embedding cache %s; computing them again.", damaged, self.path)
        missing = sorted({keys[i]: i for i, key in enumerate(keys) if key not in found}.values(),
                         key=lambda i: -len(texts[i]))  # each text once, longest first: little padding
        for start in range(0, len(missing), self.BLOCK):  # committed block by block: an interrupted run keeps them
            block = missing[start : start + self.BLOCK]
            vectors = encode([texts[i] for i in block])
            self.computed += len(block)
            blobs = [(keys[i], np.asarray(v, dtype=np.float32).tobytes()) for i, v in zip(block, vectors)]
            self._con.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)",
                [(key, blob, len(blob), hashlib.sha256(blob).hexdigest()) for key, blob in blobs],
            )
            self._con.commit()
            found.update(blobs)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([np.frombuffer(found[key], dtype=np.float32) for key in keys])

    def encode_documents(self, texts, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        return self._encode("doc", list(texts), lambda t: self.inner.encode_documents(t, batch_size))

    def encode_queries(self, texts) -> np.ndarray:
        return self._encode("query", list(texts), self.inner.encode_queries)


# --- datasets --------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a .jsonl[.gz] file, one per non-blank line. Raises BadInput naming
    the file (and line) when it is not that."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BadInput(f"{path}, line {n}: not JSON ({exc.msg}); expected one JSON object per line.") from exc
                if not isinstance(row, dict):
                    raise BadInput(f"{path}, line {n}: expected a JSON object, not {type(row).__name__}.")
                rows.append(row)
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read it as UTF-8 JSON lines ({exc}).") from exc
    return rows


def _field(row: dict, key: str, path: Path):
    try:
        return row[key]
    except KeyError:
        raise BadInput(f"{path}: a line has no {key!r}: BEIR rows need \"_id\" and \"text\".") from None


@dataclass
class BeirData:
    corpus: dict[str, dict]  # doc id -> {"title", "text"}
    queries: dict[str, str]
    qrels: dict[str, dict[str, float]]


def load_beir(folder: Path, split: str = "test") -> BeirData:
    """Read a BEIR-layout folder. Raises BadInput naming what is missing."""
    folder = Path(folder)
    corpus_path = next((folder / n for n in ("corpus.jsonl", "corpus.jsonl.gz") if (folder / n).exists()), None)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if corpus_path is None or not (folder / "queries.jsonl").exists() or not qrels_path.exists():
        raise BadInput(
            f"{folder}/ is not a BEIR folder with split {split!r}: it needs corpus.jsonl[.gz], "
            f"queries.jsonl and qrels/{split}.tsv."
        )
    corpus = {str(_field(d, "_id", corpus_path)): {"title": d.get("title") or "", "text": d.get("text") or ""}
              for d in _read_jsonl(corpus_path)}
    queries_path = folder / "queries.jsonl"
    queries = {str(_field(q, "_id", queries_path)): str(_field(q, "text", queries_path)) for q in _read_jsonl(queries_path)}
    qrels: dict[str, dict[str, float]] = {}
    with open(qrels_path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 3 or (i == 0 and not cols[2].strip().lstrip("-").isdigit()):
                continue
            qrels.setdefault(cols[0], {})[cols[1]] = float(cols[2])
    qrels = {q: g for q, g in qrels.items() if q in queries}
    return BeirData(corpus, queries, qrels)


def write_beir_corpus(corpus: dict[str, dict], folder: Path) -> dict[str, str]:
    """Write each document as `<n>.md` ("# title" then the text); return source -> doc id."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = {}
    for n, (doc_id, doc) in enumerate(corpus.items()):
        title = " ".join(doc["title"].split())
        body = doc["text"].strip() or title
        source = f"{n:07d}.md"
        (folder / source).write_text(f"# {title}\n\n{body}\n" if title else f"{body}\n", encoding="utf-8")
        sources[source] = doc_id
    return sources


def corpus_fingerprint(corpus: dict[str, dict], chunking: ChunkSettings) -> str:
    h = hashlib.sha256(json.dumps(chunking.as_dict(), sort_keys=True).encode())
    for doc_id, doc in corpus.items():
        h.update(f"{doc_id}\0{doc['title']}\0{doc['text']}\0".encode())
    return h.hexdigest()[:16]


# --- runners ----------------------------------------------------------------------------------


@dataclass
class EvalIndex:
    """A corpus indexed for evaluation: the retriever and the map from source file to doc id."""

    retriever: object
    doc_of_source: dict[str, str] = field(default_factory=dict)
    corpus_dir: Path | None = None  # where the corpus was written as files (what citations point into)


def _store_settings(settings: Settings | None, **where) -> Settings:
    """Settings that keep the store choice of `settings` (local or milvus, its URI and token)
    with the corpus, index folder and model of the evaluation (`where`)."""
    base = settings or Settings()
    return Settings(store=base.store, milvus_uri=base.milvus_uri, milvus_token=base.milvus_token,
                    milvus_prefix=base.milvus_prefix, **where)


def index_beir(data: BeirData, embedder, cache_dir: Path = DEFAULT_CACHE, params=None,
               settings: Settings | None = None) -> EvalIndex:
    """Index a BEIR corpus (once per model and content; reused from `cache_dir` afterwards) in
    the store of `settings` (default local: under `cache_dir`; milvus: collections named after
    the corpus fingerprint, on the server of `settings.milvus_uri`)."""
    from ..build import build_index
    from ..retriever import Retriever
    from ..store import get_store

    chunking = Settings().chunking
    slug = re.sub(r"[^\w.-]+", "_", embedder.name)[-60:]
    fingerprint = corpus_fingerprint(data.corpus, chunking)
    root = Path(cache_dir) / "eval-index" / f"{slug}-{fingerprint}"
    corpus_dir, index_dir = root / "corpus", root / "index"
    sources_path = root / "sources.json"
    where = _store_settings(settings, corpus_dir=corpus_dir, index_dir=index_dir, model=embedder.name)
    if where.store != "local":
        where = replace(where, milvus_prefix=f"{where.milvus_prefix}_beir_{fingerprint[:12]}")
    store = get_store(where)
    problem = store.check() if sources_path.exists() and hasattr(store, "check") else None
    if problem:
        log.warning("%s Rebuilding the cached evaluation index.", problem)
    if problem or store.manifest() is None or not sources_path.exists():
        sources = write_beir_corpus(data.corpus, corpus_dir)
        sources_path.write_text(json.dumps(sources), encoding="utf-8")
        build_index(where, embedder, full=bool(problem))
    sources = json.loads(sources_path.read_text(encoding="utf-8"))
    retriever = Retriever.load(settings=where, embedder=embedder, params=params)
    return EvalIndex(retriever, sources, corpus_dir)


def doc_ranking(searcher, fused: np.ndarray, doc_of_source: dict[str, str], depth: int = 100,
                rows: np.ndarray | None = None) -> list[str]:
    """Doc ids best first, a document scored by its best passage. `rows`: the passage row of
    each score when `fused` covers candidates only (approximate indexes)."""
    order = np.argsort(-fused, kind="stable")
    order = order[np.isfinite(fused[order])]
    seen: list[str] = []
    got = set()
    for start in range(0, len(order), 256):  # passages are read in blocks, as far as needed
        block = order[start : start + 256]
        for passage in searcher.reader.passages(block if rows is None else rows[block]):
            doc = doc_of_source[passage.source]
            if doc not in got:
                got.add(doc)
                seen.append(doc)
                if len(seen) >= depth:
                    return seen
    return seen


def run_beir(index: EvalIndex, data: BeirData, depth: int = 100, ks=(10, 100)) -> dict:
    """Rank documents for every query with qrels; return `beir_metrics` plus the runs."""
    searcher = index.retriever.searcher
    qids = list(data.qrels)
    vectors = searcher.embedder.encode_queries([data.queries[q] for q in qids])
    runs = {}
    for q, vec in zip(qids, vectors):
        # k=depth: the candidate pool a user asking for `depth` passages gets (approximate indexes)
        parts = searcher.score(data.queries[q], k=depth, query_vector=vec)
        runs[q] = doc_ranking(searcher, parts.fused, index.doc_of_source, depth, parts.candidates)
    return {"metrics": beir_metrics(runs, data.qrels, ks), "runs": runs}


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[’‘]", "'", text).lower().split())


def read_qa(path: Path) -> list[dict]:
    """QA jsonl rows: {"id", "question", "evidence" (str or null)}."""
    rows = _read_jsonl(Path(path))
    for row in rows:
        if not isinstance(row.get("question"), str) or "evidence" not in row:
            raise BadInput(f"{path}: every line needs \"question\" (text) and \"evidence\" (null when unanswerable).")
    return rows


def run_qa(retriever, rows: list[dict], k: int = 5) -> dict:
    """Ask every question; a passage is right when it contains the evidence (case and spacing
    ignored). Returns hit@1/3/5, MRR, abstention rates and one record per question."""
    records = []
    for row in rows:
        answer = retriever.ask(row["question"], k=k)
        evidence = row["evidence"]
        rank = None
        if evidence is not None:
            want = _norm(evidence)
            rank = next((h.rank for h in answer.passages if want in _norm(h.text)), None)
        records.append(
            {
                "id": row.get("id"),
                "question": row["question"],
                "answerable": evidence is not None,
                "rank": rank,
                "kind": row.get("kind"),
                "found": answer.found,
                "reason": answer.reason,
                "answer_has_evidence": bool(evidence is not None and answer.answer and _norm(evidence) in _norm(answer.answer.text)),
                "top": answer.passages[0].citation if answer.passages else None,
            }
        )
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    metrics = {"questions": len(records), "answerable": len(answerable), "unanswerable": len(unanswerable)}
    for kk in (1, 3, 5):
        metrics[f"hit@{kk}"] = mean(1.0 if r["rank"] and r["rank"] <= kk else 0.0 for r in answerable)
    metrics["mrr"] = mean(1.0 / r["rank"] if r["rank"] else 0.0 for r in answerable)
    metrics["answer_sentence"] = mean(1.0 if r["answer_has_evidence"] else 0.0 for r in answerable)
    metrics["not_found_unanswerable"] = mean(0.0 if r["found"] else 1.0 for r in unanswerable)
    metrics["not_found_answerable"] = mean(0.0 if r["found"] else 1.0 for r in answerable)
    for label, test in (("offtopic", lambda k: "off" in k), ("ontopic", lambda k: "off" not in k)):
        group = [r for r in unanswerable if r["kind"] and test(r["kind"])]
        if group:  # rows that say which kind of unanswerable they are (bench/corpora)
            metrics[f"not_found_{label}"] = mean(0.0 if r["found"] else 1.0 for r in group)
    return {"metrics": metrics, "records": records}


def qa_retriever(settings: Settings, embedder, cache_dir: Path = DEFAULT_CACHE, params=None, folder=None):
    """A retriever over `settings.corpus_dir`, indexed afresh in `folder` (default: a new
    temporary folder) with cached embeddings, so the evaluation measures this code and not an
    older index."""
    from ..build import build_index
    from ..retriever import Retriever

    tmp = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="qa-eval-"))
    where = _store_settings(settings, corpus_dir=settings.corpus_dir, index_dir=tmp / "index", model=embedder.name)
    if where.store != "local":  # its own collections, rebuilt in full (embeddings come from the cache)
        where = replace(where, milvus_prefix=f"{where.milvus_prefix}_eval")
    build_index(where, embedder, full=True)
    return Retriever.load(settings=where, embedder=embedder, params=params)


def is_beir(path: Path) -> bool:
    return Path(path).is_dir()


def evaluate(dataset: Path, split: str = "test", k: int = 5, settings: Settings | None = None,
             embedder=None, cache_dir: Path = DEFAULT_CACHE, params=None) -> dict:
    """Evaluate a BEIR folder or a QA jsonl file; returns {"dataset", "kind", "metrics", ...}.

    Raises:
        BadInput: the dataset is neither, or lacks the split.
    """
    from ..embedding import get_embedder

    settings = settings or Settings.from_env()
    dataset = Path(dataset)
    if not dataset.exists():
        raise BadInput(f"{dataset} does not exist: give a BEIR folder or a QA .jsonl file.")
    embedder = CachedEmbedder(embedder or get_embedder(settings.model), cache_dir)
    if is_beir(dataset):
        data = load_beir(dataset, split)
        index = index_beir(data, embedder, cache_dir, params, settings)
        result = run_beir(index, data)
        return {"dataset": str(dataset), "kind": "beir", "split": split, "metrics": result["metrics"]}
    rows = read_qa(dataset)
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        retriever = qa_retriever(settings, embedder, cache_dir, params, folder=tmp)
        result = run_qa(retriever, rows, k)
    return {"dataset": str(dataset), "kind": "qa", "corpus": str(settings.corpus_dir), **result}


def format_report(result: dict) -> str:
    """The terminal form of `evaluate`'s result: one metric per line."""
    head = f"{result['dataset']} ({result['kind']}" + (f", split {result['split']})" if result.get("split") else ")")
    lines = [head]
    for key, value in result["metrics"].items():
        lines.append(f"  {key:24s} {value:.4f}" if isinstance(value, float) else f"  {key:24s} {value}")
    return "\n".join(lines)
