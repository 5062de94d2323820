"""RETRIEVE: the query entry points every front end shares: input checks, `Retriever` (an open
index + embedder + searcher: `search`, `ask`), the process-wide `default_retriever`, and
`retrieve()` / `ask()`.

Wires store (`IndexReader`) + embedder → search → answer. Builds are `qa.build`'s.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Sequence

from .answer import FoundRule, SentenceChoice, decide
from .build import ensure_index, models_cache, raise_model_mismatch
from .config import Settings
from .documents import Unreadable, read_document
from .embedding import Embedder, get_embedder, resolve_model
from .config import MAX_K, MAX_QUESTION_CHARS  # noqa: F401  (re-exported: the input caps)
from .errors import BadInput, IndexMissing, QAError
from .integrity import SourceHashes
from .limits import check_k, check_question as _check_question, check_sources
from .schema import Answer, Document, Hit, Manifest, Passage
from .search import SearchParams, Searcher
from .security import clean_text
from .store import IndexReader, describe, get_store, index_command
from .verify import flag_answer, flag_changed

log = logging.getLogger(__name__)



def check_question(question) -> str:
    """The question, stripped and within the cap (`limits.check_question`), lone surrogates
    replaced by U+FFFD (`security.clean_text`: they cannot be encoded).

    Raises:
        EmptyQuestion: None, not text, empty or whitespace.
        RequestTooLarge: longer than MAX_QUESTION_CHARS characters.
    """
    return clean_text(_check_question(question))


class Retriever:
    """An open index plus its embedder: load once, search many times (thread-safe).

    Example:
        >>> r = Retriever.load("index")
        >>> for hit in r.search("Who leads the NCRI?", k=3): print(hit.citation, hit.score)
    """

    def __init__(self, reader: IndexReader, embedder: Embedder, params: SearchParams = SearchParams(),
                 found: FoundRule = FoundRule(), corpus_dir: str | Path | None = None,
                 choice: SentenceChoice = SentenceChoice()):
        self.reader = reader
        self.embedder = embedder
        self.found = found
        self.choice = choice  # how the answer sentence is chosen
        self.searcher = Searcher(reader, embedder, params)
        # Cited files are compared with the bytes they were indexed from (`source_changed`).
        self.corpus_dir = Path(corpus_dir) if corpus_dir is not None else None
        self._hashes = SourceHashes(self.corpus_dir) if self.corpus_dir is not None else None

    @classmethod
    def load(
        cls,
        index_dir: str | Path | None = None,
        *,
        model: str | None = None,
        embedder: Embedder | None = None,
        params: SearchParams | None = None,
        settings: Settings | None = None,
        corpus_dir: str | Path | None = None,
    ) -> "Retriever":
        """Open the index of `settings` (default: `Settings.from_env()`), or the one in
        `index_dir` with the model it was built with (or `model` / `embedder`, checked against it).
        Cited files are checked against `corpus_dir` (default: `settings.corpus_dir` when
        settings are given, else the folder the index was built from when it is still there) and
        flagged `source_changed` when they differ.

        Raises:
            IndexMissing, IndexCorrupt: no usable index there.
            IndexMismatch: it was built with another model than the one asked for.
        """
        explicit = settings is not None
        if settings is None:
            if index_dir is None:
                settings = Settings.from_env(model=model or (embedder.name if embedder else None))
            else:  # an explicit folder: nothing is read from the environment
                settings = Settings(index_dir=Path(index_dir), model=model or (embedder.name if embedder else ""))
        store = get_store(settings)
        reader = store.open()
        if not settings.model:  # the model the index was built with
            from dataclasses import replace

            settings = replace(settings, model=reader.manifest.model)
        if reader.manifest.model != settings.model:
            raise_model_mismatch(reader.manifest, settings)
        embedder = embedder or get_embedder(settings.model)
        use_cache = getattr(embedder, "use_cache_dir", None)
        if use_cache is not None:  # where the fast query encoder is (or gets) exported: shared by index folders
            use_cache(models_cache(settings))
        if corpus_dir is None:
            recorded = reader.manifest.get("corpus_dir")
            use_recorded = not explicit and recorded and Path(recorded).is_dir()
            corpus_dir = recorded if use_recorded else settings.corpus_dir
        return cls(reader, embedder, params or settings.search, corpus_dir=corpus_dir)

    @property
    def manifest(self) -> Manifest:
        return self.reader.manifest

    @property
    def generation(self) -> str:
        """Name of the index generation this retriever loaded (changes with every build)."""
        return self.reader.generation

    def sources(self) -> list[str]:
        """The indexed source files (corpus-relative paths), sorted: what `sources=` filters on."""
        return self.reader.sources()

    def sections(self, limit: int) -> list[str]:
        """The first `limit` distinct section titles, in index order (example questions)."""
        seen: list[str] = []
        for source in self.sources():
            for p in self.reader.passages_of(source):
                if p.section and p.section not in seen:
                    seen.append(p.section)
                if len(seen) == limit:
                    return seen
        return seen

    def passages_of(self, source: str) -> list[Passage]:
        """The indexed passages of one source file, in text order."""
        return self.reader.passages_of(source)

    def _check_sources(self, sources):
        patterns = check_sources(sources)
        if not patterns:
            return None
        if not self.searcher.allowed_sources(patterns):
            known = self.sources()
            shown = ", ".join(known[:10]) + (f" ... ({len(known)} in all)" if len(known) > 10 else "")
            raise BadInput(
                f"No indexed file matches {', '.join(map(repr, patterns))}. "
                f"Give a glob or part of a path, e.g. one of: {shown}."
            )
        return patterns

    def search(self, question: str, k: int = 5, sources: Sequence[str] | None = None) -> list[Hit]:
        """The `k` passages that best answer `question`, best first.

        Args:
            question: any text up to MAX_QUESTION_CHARS characters (qa.config).
            k: how many passages, 1..MAX_K (fewer when the corpus is smaller).
            sources: optional globs or substrings of source paths to restrict the search to
                (a passage is searched if its source matches any of them).
        Raises:
            EmptyQuestion (a ValueError): the question is empty or whitespace.
            RequestTooLarge (a BadInput): the question is longer than MAX_QUESTION_CHARS.
            BadInput (a ValueError): k is not a whole number in range, too many or too long
                source patterns, or no indexed file matches `sources`.
        """
        question = check_question(question)
        hits = self.searcher.search(question, check_k(k), self._check_sources(sources))
        return flag_changed(hits, self.manifest.files, self._hashes)

    def ask(self, question: str, k: int = 5, sources: Sequence[str] | None = None) -> Answer:
        """Like `search`, plus the sentence that best answers and whether any passage supports
        an answer (`found`)."""
        question = check_question(question)
        hits, parts, rows = self.searcher.search_with_scores(question, check_k(k), self._check_sources(sources))
        sentences = self.searcher.hit_sentences(rows, parts, hits)
        units = {h.source: self.manifest.units[h.source] for h in hits if h.source in self.manifest.units}
        vocabulary = getattr(self.reader, "vocabulary", None)  # optional: a backend may not expose it
        answer = decide(question, hits, sentences, parts, units, self.found,
                        vocabulary() if vocabulary else None, model_folder(getattr(self.embedder, "name", None)),
                        self.choice)
        return flag_answer(answer, self.manifest.files, self._hashes)


def model_folder(name: str | None) -> str | None:
    """The folder of model `name` (its vocabulary gives the "not found" rule the common English
    words), or None when it cannot be resolved here (a test embedder, a hub name)."""
    try:
        return resolve_model(name) if name else None
    except Exception:  # noqa: BLE001 - any failure only switches the common-word test off
        return None


_default_lock = threading.Lock()
_default: dict[tuple, Retriever] = {}
_reloading: set[tuple] = set()
_first_load = threading.Lock()
_failed: dict[tuple, str] = {}  # generation that failed to load, per key: not retried per query


def default_retriever(settings: Settings | None = None, build_if_missing: bool = True) -> Retriever:
    """The process-wide Retriever for `settings` (default: from the environment), built on first
    use when there is no index yet, and reloaded when a build swapped in a new generation.

    A reload reads the new generation completely before the shared reference is replaced, and
    while one thread reloads the others keep answering from the index they have; a generation
    that fails to load is not swapped in (the error is raised only when there is nothing loaded).
    """
    settings = settings or Settings.from_env()
    key = (str(settings.index_dir), str(settings.corpus_dir), settings.model, settings.store, settings.milvus_uri,
           settings.milvus_prefix)
    store = get_store(settings)
    live = store.generation()
    with _default_lock:
        retriever = _default.get(key)
        if retriever is not None and (live is None or live == retriever.generation):
            return retriever
        if retriever is not None and (key in _reloading or _failed.get(key) == live):
            return retriever  # another thread is loading the new generation, or it is damaged
        if retriever is not None:
            _reloading.add(key)
    if retriever is None:
        # First use: one thread builds/loads, the others wait for it and take its retriever.
        with _first_load:
            with _default_lock:
                if key in _default:
                    return _default[key]
            if store.generation() is None:
                if not build_if_missing:
                    raise IndexMissing(f"No index in {describe(settings)}. Run `{index_command(settings)}` to build one.")
                ensure_index(settings)
            fresh = Retriever.load(settings=settings)
            with _default_lock:
                _default[key] = fresh
            return fresh
    try:
        try:
            fresh = Retriever.load(settings=settings, embedder=retriever.embedder)
        except QAError as exc:
            log.warning("could not load the new index in %s (%s); still answering from %s",
                        describe(settings), exc, retriever.generation)
            with _default_lock:
                _failed[key] = live
            return retriever
        with _default_lock:
            _default[key] = fresh
        return fresh
    finally:
        with _default_lock:
            _reloading.discard(key)


def read_source(path: str | Path, source: str) -> Document:
    """The `Document` of one corpus file as the index sees it: the text its passages' offsets
    and lines refer to (extracted text for html/pdf/docx). For the web app's source viewer.

    Raises:
        BadInput: the file cannot be read (the message says why).
    """
    try:
        return read_document(Path(path), source)
    except Unreadable as exc:
        raise BadInput(f"{source} cannot be shown: {exc}") from None


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
