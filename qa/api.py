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
from .config import MAX_K, MAX_QUESTION_CHARS  # noqa: F401  (re-exported: the input caps)
from .integrity import SourceHashes, fault_point
from .limits import check_k, check_question, check_sources
from .chunking import chunk_document, split_sentences
from .config import Settings
from .documents import Unreadable, file_hashes, format_of, load_corpus, read_document, snapshot
from .embedding import Embedder, get_embedder
from .errors import BadInput, CorpusEmpty, IndexCorrupt, IndexMismatch, IndexMissing, QAError
from .schema import Answer, Document, Hit, Passage
from .search import SearchParams, Searcher, build_bm25, embedding_text, source_mask
from .store import (
    FORMAT_VERSION,
    IndexData,
    build_lock,
    cache_dir,
    check_files,
    clean_leftovers,
    current_generation,
    generation_id,
    load_index,
    read_manifest,
    read_reusable,
    write_index,
)
from .verify import check_space_for, flag_answer, flag_changed, passage_digests, recheck_reused

log = logging.getLogger(__name__)

ENCODE_BLOCK = 128

Progress = Callable[[int, int], None]


@dataclass
class BuildReport:
    """What a build did: counts, skipped files (path, reason) and seconds.

    `mode` is "full", "incremental" or "unchanged" (nothing to do: no new generation written);
    `reason` says why a build was full; `added` / `changed` / `removed` list sources compared with
    the previous index; `reused` counts files whose passages and vectors were taken from it and
    `embedded` the texts (passages and sentences) that were embedded.
    """

    files: int
    passages: int
    sentences: int
    seconds: float
    index_path: Path
    skipped: list[tuple[str, str]] = field(default_factory=list)
    model: str = ""
    mode: str = "full"
    reason: str = ""
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reused: int = 0
    embedded: int = 0


def encode_sorted(embedder: Embedder, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
    """Embed `texts` longest first in blocks (little padding per batch), reporting progress,
    and return the vectors in the original order."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = None
    done = 0
    if progress:
        progress(0, len(texts))
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


def _settings_key(settings: Settings) -> dict:
    """What the stored vectors and passages depend on besides a file's bytes: if any of it
    differs from the live index's manifest, nothing can be reused."""
    return {
        "format": FORMAT_VERSION,
        "qa_version": __version__,
        "model": settings.model,
        "chunking": settings.chunking.as_dict(),
    }


def full_rebuild_reason(manifest: dict | None, settings: Settings) -> str:
    """Why the live index (its manifest) cannot be updated incrementally, or "" if it can."""
    if manifest is None:
        return "no index yet"
    names = {"format": "index format", "qa_version": "qa version", "model": "model", "chunking": "chunking settings"}
    for key, want in _settings_key(settings).items():
        have = manifest.get(key)
        if have != want:
            if key == "chunking":
                return f"chunking settings changed ({have} → {want})"
            return f"{names[key]} changed ({have!r} → {want!r})"
    return ""


def _units(report, known: dict, old_units: dict) -> dict:
    """Page / paragraph start offsets of every PDF and DOCX file, by source (so that an answer
    sentence is cited by its own page or paragraphs): from the documents read in this build,
    else from the previous manifest for files reused unchanged (under their old name if moved)."""
    units = {d.source: {"unit": d.unit, "starts": list(d.units)} for d in report.documents if d.units}
    read = {d.source for d in report.documents}
    for source, digest in report.hashes.items():
        old = known.get((digest, format_of(source)))
        if source not in read and old in old_units:
            units[source] = old_units[old]
    return units


def build_index(
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    full: bool = False,
) -> BuildReport:
    """Bring the index in `settings.index_dir` up to date with `settings.corpus_dir`.

    Incremental by default: a file whose bytes (sha256) are already in the live index, built
    with the same model, chunking settings, index format and qa version, keeps its passages and
    vectors (read from the live index, not re-embedded, even if it was renamed); new and changed
    files are read, chunked and embedded; deleted files drop out. A complete new generation is
    written either way (BM25 is rebuilt over all passages), so FAISS, BM25 and the passage store
    always hold the same passages. When nothing changed, nothing is written (`mode`
    "unchanged"). A changed model or chunking, or `full=True`, rebuilds everything (`reason`).

    The new index replaces the old one atomically; a failed or killed build leaves the old one.

    Raises:
        CorpusEmpty: no readable document in the corpus folder.
        IndexLocked: another build is running on the same index folder.
        ModelUnavailable: the model cannot be loaded.
    """
    settings = settings or Settings.from_env()
    embedder = embedder or get_embedder(settings.model)
    use_cache = getattr(embedder, "use_cache_dir", None)
    if use_cache is not None:  # the ONNX export (made now if needed) embeds the build and queries
        use_cache(cache_dir(settings.index_dir))
    started = time.perf_counter()
    fault = lambda point: fault_point(settings, point)  # noqa: E731  (a test hook; no-op unless set)
    if progress is not None or settings.fault_point == "embed":
        user_progress = progress

        def progress(done: int, total: int) -> None:
            if user_progress:
                user_progress(done, total)
            if done:
                fault("embed")

    with build_lock(settings.index_dir):
        clean_leftovers(settings.index_dir)  # what killed builds left
        reason = "--full" if full else ""
        live: dict | None = None
        if not full:
            try:
                live = read_manifest(settings.index_dir)
            except IndexCorrupt as exc:
                reason = f"the previous index is unreadable ({exc})"
            else:
                reason = full_rebuild_reason(live, settings)
        old_files: dict[str, str] = dict(live.get("files", {})) if live and not reason else {}
        known = {(sha, format_of(src)): src for src, sha in old_files.items()}

        def have(source: str, digest: str) -> bool:
            return (digest, format_of(source)) in known

        report = load_corpus(settings.corpus_dir, have if old_files else None)
        fault("scan")
        old_skipped = (live or {}).get("skipped_hashes", {})
        unchanged = old_files and report.all_hashes == {**old_files, **old_skipped} and not report.documents
        if unchanged:
            try:
                check_files(current_generation(settings.index_dir), live)
            except IndexCorrupt as exc:  # damaged in place: "up to date" would be a lie
                log.warning("%s; building in full", exc)
                reason = f"the previous index is damaged ({exc})"
                old_files, known, unchanged = {}, {}, False
                report = load_corpus(settings.corpus_dir)
        if unchanged:
            # Nothing changed: the live index is the answer.
            return BuildReport(
                files=len(old_files), passages=int(live["passages"]), sentences=int(live["sentences"]),
                seconds=time.perf_counter() - started, index_path=current_generation(settings.index_dir),
                skipped=report.skipped, model=settings.model, mode="unchanged", reused=len(old_files),
            )
        reuse = None
        if old_files and len(report.documents) < len(report.hashes):
            try:
                reuse = read_reusable(settings.index_dir)
            except IndexCorrupt as exc:
                # Cannot trust the stored vectors: read every file again and embed it all.
                log.warning("%s; building in full", exc)
                reason = f"the previous index is unreadable ({exc})"
                old_files, known = {}, {}
                report = load_corpus(settings.corpus_dir)
            else:
                recheck_reused(report, reuse, known, settings.corpus_dir, live.get("passage_digests", {}))
        data, embedded, reused = _assemble(report, reuse, known, settings, embedder, progress)
        units = _units(report, known, (live or {}).get("units", {}) if old_files else {})
        skipped_hashes = {src: report.all_hashes[src] for src, _ in report.skipped if src in report.all_hashes}
        data.manifest = {
            **_settings_key(settings),
            "dim": int(data.passage_vectors.shape[1]),
            "normalize": True,
            "files": report.hashes,
            "skipped": [list(s) for s in report.skipped],
            "skipped_hashes": skipped_hashes,
            "units": units,
            "passage_digests": passage_digests(data.passages),
            "corpus_dir": str(Path(settings.corpus_dir).resolve()),
            "passages": len(data.passages),
            "sentences": len(data.sentence_spans),
            "built_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "build": "full" if reason else "incremental",
        }
        data.manifest["build_seconds"] = round(time.perf_counter() - started, 3)
        path = write_index(settings.index_dir, data, fault=fault)
    return BuildReport(
        files=len(report.hashes),
        passages=len(data.passages),
        sentences=len(data.sentence_spans),
        seconds=time.perf_counter() - started,
        index_path=path,
        skipped=report.skipped,
        model=settings.model,
        mode="full" if reason else "incremental",
        reason=reason,
        added=sorted(s for s in report.hashes if s not in old_files) if old_files else [],
        changed=sorted(s for s, h in report.hashes.items() if s in old_files and old_files[s] != h),
        removed=sorted(s for s in old_files if s not in report.hashes),
        reused=reused,
        embedded=embedded,
    )


def _assemble(report, reuse, known, settings, embedder, progress) -> tuple[IndexData, int, int]:
    """The passages, vectors and BM25 of the new generation, in corpus order: reused files'
    parts copied from `reuse`, the others chunked and embedded (each distinct span once).
    Returns (data, texts embedded, files reused)."""
    documents = {d.source: d for d in report.documents}
    # Chunk the new documents and list what must be embedded.
    fresh: dict[str, tuple[list[Passage], list[tuple[int, int, int]]]] = {}
    texts: dict[tuple[str, int, int], str] = {}
    passage_texts: list[str] = []
    for source, document in documents.items():
        passages = chunk_document(document, settings.chunking)
        spans = []
        for row, p in enumerate(passages):
            passage_texts.append(embedding_text(p))
            for a, b in split_sentences(p.text):
                start, end = p.start_char + a, p.start_char + b
                spans.append((row, start, end))
                texts.setdefault((source, start, end), p.text[a:b])
        fresh[source] = (passages, spans)
    keys = list(texts)
    to_embed = passage_texts + [texts[k] for k in keys]
    if to_embed:  # refuse now, not after the embedding, when the new generation cannot fit
        check_space_for(settings.index_dir, fresh, len(keys), report, reuse, known, embedder)
    if to_embed or reuse is None:
        vectors = encode_sorted(embedder, to_embed, progress)
    else:  # only deletions or renames: no need to load the model at all
        vectors = np.zeros((0, reuse.passage_vectors.shape[1]), dtype=np.float32)
    dim = int(vectors.shape[1])
    key_row = {key: len(passage_texts) + i for i, key in enumerate(keys)}

    passages: list[Passage] = []
    passage_vectors, sentence_spans, sentence_vectors = [], [], []
    next_fresh = 0  # row in `vectors` of the next new passage
    reused = 0
    for source, digest in report.hashes.items():
        if source in fresh:
            ps, spans = fresh[source]
            pv = vectors[next_fresh : next_fresh + len(ps)]
            next_fresh += len(ps)
            sv = vectors[[key_row[(source, a, b)] for _, a, b in spans]] if spans else np.zeros((0, dim), np.float32)
            spans = [(r + len(passages), a, b) for r, a, b in spans]
        else:
            old_source = known[(digest, format_of(source))]
            ps, pv, spans, sv = reuse.of(old_source, source, row_offset=len(passages))
            reused += 1
        passages.extend(ps)
        passage_vectors.append(np.asarray(pv, dtype=np.float32))
        sentence_spans.extend(spans)
        sentence_vectors.append(np.asarray(sv, dtype=np.float32))
    if not passages:
        raise CorpusEmpty(
            f"No passage text in {settings.corpus_dir}/: its files hold only headings or blank lines. "
            "Add documents with some body text."
        )
    data = IndexData(
        manifest={},
        passages=passages,
        passage_vectors=np.concatenate(passage_vectors) if passage_vectors else np.zeros((0, dim), np.float32),
        sentence_spans=sentence_spans,
        sentence_vectors=np.concatenate(sentence_vectors) if sentence_vectors else np.zeros((0, dim), np.float32),
        bm25=build_bm25(passages),
    )
    return data, len(passage_texts) + len(keys), reused


def index_state(settings: Settings) -> str:
    """"missing", "stale" (corpus, chunking or index format changed since the build), "model"
    (built with another model) or "ok"."""
    manifest = read_manifest(settings.index_dir)
    if manifest is None:
        return "missing"
    if manifest.get("model") != settings.model:
        return "model"
    if full_rebuild_reason(manifest, settings):
        return "stale"
    changes = corpus_changes(settings, manifest)
    return "ok" if changes is None or not any(changes.values()) else "stale"


def corpus_changes(settings: Settings, manifest: dict | None = None) -> dict[str, list[str]] | None:
    """Files added, changed and removed in the corpus since the live index was built (sorted
    lists), or None when there is no corpus folder to compare with (the index is all there is)."""
    manifest = read_manifest(settings.index_dir) if manifest is None else manifest
    try:
        current = file_hashes(settings.corpus_dir)
    except CorpusEmpty:
        return None
    built = {**(manifest or {}).get("files", {}), **(manifest or {}).get("skipped_hashes", {})}
    return {
        "added": sorted(s for s in current if s not in built),
        "changed": sorted(s for s in current if s in built and built[s] != current[s]),
        "removed": sorted(s for s in built if s not in current),
    }


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


def watch(
    settings: Settings,
    embedder: Embedder | None = None,
    on_build: Callable[[BuildReport], None] = lambda report: None,
    on_error: Callable[[QAError], None] = lambda exc: log.error("%s", exc),
    interval: float = 1.0,
    debounce: float = 2.0,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> None:
    """Keep the index up to date: build now, then rebuild (incrementally) whenever the corpus
    changes, until `stop` is set (or KeyboardInterrupt, which the caller handles).

    The corpus is polled every `interval` seconds (file list, mtimes and sizes); a rebuild starts
    once it has been still for `debounce` seconds, so a burst of saves makes one build. A build
    that fails (e.g. IndexLocked, CorpusEmpty) is reported through `on_error` and tried again at
    the next change.
    """
    stop = stop or threading.Event()
    embedder = embedder or get_embedder(settings.model)

    def look():
        try:
            return snapshot(settings.corpus_dir)
        except CorpusEmpty:
            return None

    def build(seen):
        try:
            on_build(build_index(settings, embedder, progress))
        except QAError as exc:
            on_error(exc)
        return seen

    seen = build(look())
    while not stop.wait(interval):
        now = look()
        if now == seen:
            continue
        # Changed: wait until it stays the same for `debounce` seconds.
        while not stop.wait(debounce):
            later = look()
            if later == now:
                break
            now = later
        if stop.is_set():
            return
        seen = build(now)


class Retriever:
    """A loaded index plus its embedder: load once, search many times (thread-safe).

    Example:
        >>> r = Retriever.load("index")
        >>> for hit in r.search("Who leads the NCRI?", k=3): print(hit.citation, hit.score)
    """

    def __init__(self, data: IndexData, embedder: Embedder, params: SearchParams = SearchParams(),
                 corpus_dir: str | Path | None = None):
        self.data = data
        self.embedder = embedder
        self.searcher = Searcher(data, embedder, params)
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
        params: SearchParams = SearchParams(),
        corpus_dir: str | Path | None = None,
    ) -> "Retriever":
        """Load the index in `index_dir` (default: QA_INDEX_DIR or index/); cited files are
        checked against `corpus_dir` (default: the folder the index was built from, else
        QA_CORPUS_DIR or corpus/) and flagged `source_changed` when they differ.

        Raises:
            IndexMissing, IndexCorrupt: no usable index there.
            IndexMismatch: it was built with another model than `model` (default: QA_MODEL).
        """
        settings = Settings.from_env(index_dir=index_dir, corpus_dir=corpus_dir,
                                     model=model or (embedder.name if embedder else None))
        data = load_index(settings.index_dir)
        if data.manifest.get("model") != settings.model:
            raise_model_mismatch(data.manifest, settings)
        embedder = embedder or get_embedder(settings.model)
        use_cache = getattr(embedder, "use_cache_dir", None)
        if use_cache is not None:  # where the fast query encoder is (or gets) exported
            use_cache(cache_dir(settings.index_dir))
        if corpus_dir is None:  # the folder it was built from, when it is still there
            recorded = data.manifest.get("corpus_dir")
            corpus_dir = recorded if recorded and Path(recorded).is_dir() else settings.corpus_dir
        return cls(data, embedder, params, corpus_dir=corpus_dir)

    @property
    def manifest(self) -> dict:
        return self.data.manifest

    @property
    def generation(self) -> str:
        """Name of the index generation this retriever loaded (changes with every build)."""
        return self.data.path.name if self.data.path else ""

    def sources(self) -> list[str]:
        """The indexed source files (corpus-relative paths), sorted: what `sources=` filters on."""
        return sorted({p.source for p in self.data.passages})

    def _check_sources(self, sources):
        patterns = check_sources(sources)
        if not patterns:
            return None
        if not source_mask(self.data.passages, patterns).any():
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
        return flag_changed(hits, self.manifest.get("files", {}), self._hashes)

    def ask(self, question: str, k: int = 5, sources: Sequence[str] | None = None) -> Answer:
        """Like `search`, plus the sentence that best answers and whether any passage supports
        an answer (`found`)."""
        question = check_question(question)
        hits, parts = self.searcher.search_with_scores(question, check_k(k), self._check_sources(sources))
        answer = build_answer(question, hits, parts, self.searcher)
        return flag_answer(answer, self.manifest.get("files", {}), self._hashes)


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
    key = (str(settings.index_dir), str(settings.corpus_dir), settings.model)
    live = generation_id(settings.index_dir)
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
            if generation_id(settings.index_dir) is None:
                if not build_if_missing:
                    raise IndexMissing(f"No index in {settings.index_dir}/. Run `qa index` to build one.")
                ensure_index(settings)
            fresh = Retriever.load(settings.index_dir, model=settings.model, corpus_dir=settings.corpus_dir)
            with _default_lock:
                _default[key] = fresh
            return fresh
    try:
        try:
            fresh = Retriever.load(settings.index_dir, model=settings.model, embedder=retriever.embedder,
                                   corpus_dir=settings.corpus_dir)
        except QAError as exc:
            log.warning("could not load the new index in %s (%s); still answering from %s",
                        settings.index_dir, exc, retriever.generation)
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
