"""The entry points every front end shares: build_index(), Retriever, retrieve(), ask().

This module wires the stages: documents → chunking → embedding → store, and store + embedder →
search → answer. Front ends (cli, web) call only what is here.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import __version__
from .answer import build_answer
from .chunking import chunk_document, split_sentences
from .config import Settings
from .documents import file_hashes, load_corpus
from .embedding import Embedder, get_embedder
from .errors import BadInput, EmptyQuestion, IndexMismatch, IndexMissing
from .schema import Answer, Hit, Passage
from .search import SearchParams, Searcher, build_bm25, embedding_text
from .store import FORMAT_VERSION, IndexData, build_lock, current_generation, load_index, read_manifest, write_index

log = logging.getLogger(__name__)

MAX_K = 100
MAX_QUESTION_CHARS = 4000  # longer questions are accepted; only this much is searched with
ENCODE_BLOCK = 256

Progress = Callable[[int, int], None]


@dataclass
class BuildReport:
    """What a build did: counts, skipped files (path, reason) and seconds."""

    files: int
    passages: int
    sentences: int
    seconds: float
    index_path: Path
    skipped: list[tuple[str, str]] = field(default_factory=list)
    model: str = ""


def encode_sorted(embedder: Embedder, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
    """Embed `texts` longest first in blocks (little padding per batch), reporting progress,
    and return the vectors in the original order."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = None
    done = 0
    for start in range(0, len(order), ENCODE_BLOCK):
        block = order[start : start + ENCODE_BLOCK]
        vectors = embedder.encode_documents([texts[i] for i in block])
        if out is None:
            out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[block] = vectors
        done += len(block)
        if progress:
            progress(done, len(texts))
    if out is None:
        out = np.zeros((0, embedder.dim), dtype=np.float32)
    return out


def build_index(
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
) -> BuildReport:
    """Read `settings.corpus_dir`, chunk, embed and write a new index into `settings.index_dir`.

    The new index replaces the old one atomically; a failed or killed build leaves the old one.

    Raises:
        CorpusEmpty: no readable document in the corpus folder.
        IndexLocked: another build is running on the same index folder.
        ModelUnavailable: the model cannot be loaded.
    """
    settings = settings or Settings.from_env()
    embedder = embedder or get_embedder(settings.model)
    started = time.perf_counter()
    with build_lock(settings.index_dir):
        report = load_corpus(settings.corpus_dir)
        passages: list[Passage] = []
        for document in report.documents:
            passages.extend(chunk_document(document, settings.chunking))
        # Sentences of each passage, grouped by passage in order; each distinct span embedded once.
        sentence_spans: list[tuple[int, int, int]] = []
        texts: dict[tuple[str, int, int], str] = {}
        for row, p in enumerate(passages):
            for a, b in split_sentences(p.text):
                start, end = p.start_char + a, p.start_char + b
                sentence_spans.append((row, start, end))
                texts.setdefault((p.source, start, end), p.text[a:b])
        keys = list(texts)
        passage_texts = [embedding_text(p) for p in passages]
        vectors = encode_sorted(embedder, passage_texts + [texts[k] for k in keys], progress)
        passage_vectors = vectors[: len(passages)]
        key_row = {key: len(passages) + i for i, key in enumerate(keys)}
        sentence_vectors = vectors[[key_row[(passages[r].source, a, b)] for r, a, b in sentence_spans]]
        manifest = {
            "format": FORMAT_VERSION,
            "qa_version": __version__,
            "model": settings.model,
            "dim": int(vectors.shape[1]),
            "normalize": True,
            "chunking": settings.chunking.as_dict(),
            "files": report.hashes,
            "skipped": [list(s) for s in report.skipped],
            "passages": len(passages),
            "sentences": len(sentence_spans),
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        seconds = time.perf_counter() - started
        manifest["build_seconds"] = round(seconds, 3)
        data = IndexData(
            manifest=manifest,
            passages=passages,
            passage_vectors=passage_vectors,
            sentence_spans=sentence_spans,
            sentence_vectors=sentence_vectors,
            bm25=build_bm25(passages),
        )
        path = write_index(settings.index_dir, data)
    return BuildReport(
        files=len(report.documents),
        passages=len(passages),
        sentences=len(sentence_spans),
        seconds=time.perf_counter() - started,
        index_path=path,
        skipped=report.skipped,
        model=settings.model,
    )


def index_state(settings: Settings) -> str:
    """"missing", "stale" (corpus or chunking changed since the build), "model" (built with
    another model) or "ok"."""
    manifest = read_manifest(settings.index_dir)
    if manifest is None:
        return "missing"
    if manifest.get("model") != settings.model:
        return "model"
    if manifest.get("chunking") != settings.chunking.as_dict():
        return "stale"
    try:
        current = file_hashes(settings.corpus_dir)
    except Exception:  # a missing corpus folder: the index is what there is
        return "ok"
    return "ok" if current == manifest.get("files") else "stale"


def ensure_index(
    settings: Settings,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    say: Callable[[str], None] = log.info,
) -> BuildReport | None:
    """Build the index when it is missing or the corpus changed (saying so through `say`).

    Raises:
        IndexMismatch: the index was built with another model than `settings.model`.
    """
    state = index_state(settings)
    if state == "model":
        raise_model_mismatch(read_manifest(settings.index_dir), settings)
    if state == "ok":
        return None
    say(
        f"No index in {settings.index_dir}/ yet: building it from {settings.corpus_dir}/ ..."
        if state == "missing"
        else f"{settings.corpus_dir}/ changed since the index was built: rebuilding {settings.index_dir}/ ..."
    )
    return build_index(settings, embedder, progress)


def raise_model_mismatch(manifest: dict, settings: Settings):
    raise IndexMismatch(
        f"{settings.index_dir}/ was built with model {manifest.get('model')!r} but QA_MODEL is "
        f"{settings.model!r}: run `qa index` to rebuild it with {settings.model!r}, "
        f"or set QA_MODEL={manifest.get('model')}."
    )


def check_question(question) -> str:
    """The question, stripped. Raises EmptyQuestion for None, empty or whitespace."""
    if not isinstance(question, str) or not question.strip():
        raise EmptyQuestion("The question is empty: ask something, e.g. qa ask \"Who leads the NCRI?\"")
    return question.strip()


def check_k(k) -> int:
    """k as an int in 1..MAX_K. Raises BadInput for anything else."""
    try:
        value = int(k)
    except (TypeError, ValueError):
        raise BadInput(f"k must be a whole number from 1 to {MAX_K}, not {k!r}.") from None
    if value != k and not isinstance(k, str) or not 1 <= value <= MAX_K:
        raise BadInput(f"k must be a whole number from 1 to {MAX_K}, not {k!r}.")
    return value


class Retriever:
    """A loaded index plus its embedder: load once, search many times (thread-safe).

    Example:
        >>> r = Retriever.load("index")
        >>> for hit in r.search("Who leads the NCRI?", k=3): print(hit.citation, hit.score)
    """

    def __init__(self, data: IndexData, embedder: Embedder, params: SearchParams = SearchParams()):
        self.data = data
        self.embedder = embedder
        self.searcher = Searcher(data, embedder, params)

    @classmethod
    def load(
        cls,
        index_dir: str | Path | None = None,
        *,
        model: str | None = None,
        embedder: Embedder | None = None,
        params: SearchParams = SearchParams(),
    ) -> "Retriever":
        """Load the index in `index_dir` (default: QA_INDEX_DIR or index/).

        Raises:
            IndexMissing, IndexCorrupt: no usable index there.
            IndexMismatch: it was built with another model than `model` (default: QA_MODEL).
        """
        settings = Settings.from_env(index_dir=index_dir, model=model or (embedder.name if embedder else None))
        data = load_index(settings.index_dir)
        if data.manifest.get("model") != settings.model:
            raise_model_mismatch(data.manifest, settings)
        return cls(data, embedder or get_embedder(settings.model), params)

    @property
    def manifest(self) -> dict:
        return self.data.manifest

    def search(self, question: str, k: int = 5, sources: Sequence[str] | None = None) -> list[Hit]:
        """The `k` passages that best answer `question`, best first.

        Args:
            question: any text; only its first MAX_QUESTION_CHARS characters are searched with.
            k: how many passages, 1..MAX_K (fewer when the corpus is smaller).
            sources: optional globs or substrings of source paths to restrict the search to.
        Raises:
            EmptyQuestion (a ValueError): the question is empty or whitespace.
            BadInput (a ValueError): k is not a whole number in range.
        """
        question = check_question(question)
        return self.searcher.search(question[:MAX_QUESTION_CHARS], check_k(k), sources)

    def ask(self, question: str, k: int = 5, sources: Sequence[str] | None = None) -> Answer:
        """Like `search`, plus the sentence that best answers and whether any passage supports
        an answer (`found`)."""
        question = check_question(question)
        hits, parts = self.searcher.search_with_scores(question[:MAX_QUESTION_CHARS], check_k(k), sources)
        return build_answer(question, hits, parts, self.searcher)


_default_lock = threading.Lock()
_default: dict[tuple, tuple[Path | None, Retriever]] = {}


def default_retriever(settings: Settings | None = None, build_if_missing: bool = True) -> Retriever:
    """The process-wide Retriever for `settings` (default: from the environment), built on first
    use when there is no index yet, and reloaded when the index on disk was replaced."""
    settings = settings or Settings.from_env()
    key = (str(settings.index_dir), str(settings.corpus_dir), settings.model)
    with _default_lock:
        # The live generation folder, not built_at: two builds within one second differ too.
        generation, retriever = _default.get(key, (None, None))
        live = current_generation(settings.index_dir)
        if retriever is not None and live is not None and live == generation:
            return retriever
        if live is None:
            if not build_if_missing:
                raise IndexMissing(f"No index in {settings.index_dir}/. Run `qa index` to build one.")
            ensure_index(settings)
        live = current_generation(settings.index_dir)
        retriever = Retriever.load(settings.index_dir, model=settings.model)
        _default[key] = (live, retriever)
        return retriever


def retrieve(question: str, k: int = 5, sources: Sequence[str] | None = None) -> list[Hit]:
    """The `k` passages of the corpus that best answer `question`, each with its citation.

    Uses QA_INDEX_DIR / QA_CORPUS_DIR / QA_MODEL (defaults index/, corpus/, the bundled
    all-MiniLM-L6-v2) and builds the index on first use if there is none.

    Returns:
        A list of `Hit` (a `Passage` with rank, score and score parts), best first.
    Raises:
        ValueError (EmptyQuestion, BadInput): empty question or bad k.
        QAError: no corpus, or an index built with another model.
    """
    question = check_question(question)
    return default_retriever().search(question, k, sources)


def ask(question: str, k: int = 5, sources: Sequence[str] | None = None) -> Answer:
    """Like `retrieve`, returning an `Answer` (passages, best sentence, found)."""
    question = check_question(question)
    return default_retriever().ask(question, k, sources)
