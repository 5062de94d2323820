"""BUILD: bring an index up to date with its corpus (`build_index`), say whether it is
(`index_state`, `corpus_changes`, `ensure_index`), and keep it so (`watch`).

Wires documents → chunking → embedding → lexical (BM25) → store (`qa.store.get_store`).
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

from ._version import __version__
from .chunking import chunk_document, split_sentences
from .config import Settings, cache_root
from .documents import FORMATS, file_hashes, format_of, list_files, load_corpus, snapshot  # noqa: F401 (front ends)
from .embedding import Embedder, embedding_text, get_embedder
from .errors import CorpusEmpty, IndexCorrupt, IndexLocked, IndexMismatch, IndexUnwritable, QAError
from .schema import INDEX_FORMAT, Manifest, Passage
from .integrity import fault_point
from .store import IndexData, describe, get_store, index_command
from .verify import check_space_for, passage_digests, recheck_reused

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


def models_cache(settings: Settings) -> Path:
    """Where model exports (ONNX) live: one copy per model for every index folder."""
    return cache_root(settings) / "models"


LONG_BUILD_SECONDS = 600  # builds expected to take longer than this are announced with an estimate


def encode_sorted(embedder: Embedder, texts: Sequence[str], progress: Progress | None = None,
                  cache=None, say: Callable[[str], None] | None = None, lookup: bool = True) -> np.ndarray:
    """Embed `texts` longest first in blocks (little padding per batch), reporting progress,
    and return the vectors in the original order.

    With `cache` (an `embedding.cache.EmbeddingCache`), texts already embedded (by an earlier,
    perhaps interrupted, build of any index folder) are taken from it and each new block is
    stored as soon as it is computed (`lookup=False`, for `--full`: stored, never read). After the first block, a build expected to take longer
    than LONG_BUILD_SECONDS is announced through `say` with its estimated time.
    """
    from .embedding.cache import estimate_seconds, say_duration

    if cache is not None and lookup:
        out, todo = cache.get(texts)
    else:
        out, todo = None, list(range(len(texts)))
    order = sorted(todo, key=lambda i: -len(texts[i]))
    done = len(texts) - len(order)
    if progress:
        progress(done, len(texts))
    started = time.perf_counter()
    for start in range(0, len(order), ENCODE_BLOCK):
        block = order[start : start + ENCODE_BLOCK]
        vectors = embedder.encode_documents([texts[i] for i in block])
        if out is None:
            out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[block] = vectors
        if cache is not None:
            cache.put([texts[i] for i in block], vectors)
        done += len(block)
        if start == 0 and say is not None and len(order) > len(block):
            left = estimate_seconds(len(block), time.perf_counter() - started, len(order))
            if left > LONG_BUILD_SECONDS:
                say(
                    f"This build embeds {len(order):,} texts: about {say_duration(left)} on this machine. "
                    "Ctrl-C stops it; the next `qa index` resumes from what was embedded."
                    + (f" ({len(texts) - len(order):,} taken from earlier builds.)" if len(order) < len(texts) else "")
                )
        if progress:
            progress(done, len(texts))
    if out is None:
        out = np.zeros((0, embedder.dim), dtype=np.float32)
    return out


def _settings_key(settings: Settings) -> dict:
    """What the stored vectors and passages depend on besides a file's bytes: if any of it
    differs from the live index's manifest, nothing can be reused."""
    return {
        "format": INDEX_FORMAT,
        "qa_version": __version__,
        "model": settings.model,
        "chunking": settings.chunking.as_dict(),
    }


def full_rebuild_reason(manifest: Manifest | None, settings: Settings) -> str:
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


def indexed_at(previous: dict, hashes: dict, previous_hashes: dict, now: str) -> dict:
    """When each file was last (re)indexed (for the document library): kept from the previous
    manifest for unchanged files, `now` for new or changed ones. Pure."""
    return {s: (previous.get(s) if previous_hashes.get(s) == h and previous.get(s) else now)
            for s, h in hashes.items()}


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
    say: Callable[[str], None] | None = None,
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
        NotAnIndex: the index folder holds other files and is not a qa index.
        IndexLocked: another build is running on the same index folder.
        ModelUnavailable: the model cannot be loaded.
    """
    settings = settings or Settings.from_env()
    # get_embedder refuses a model that is not on this machine, before any progress bar
    embedder = embedder or get_embedder(settings.model)
    store = get_store(settings)
    use_cache = getattr(embedder, "use_cache_dir", None)
    if use_cache is not None:  # the ONNX export (made now if needed; shared by every index folder)
        use_cache(models_cache(settings))
    started = time.perf_counter()
    fault = lambda point: fault_point(settings, point)  # noqa: E731  (a test hook; no-op unless set)
    if progress is not None or settings.fault_point == "embed":
        user_progress = progress

        def progress(done: int, total: int) -> None:
            if user_progress:
                user_progress(done, total)
            if done:
                fault("embed")

    with store.lock():
        if hasattr(store, "clean"):
            store.clean()  # what killed builds left
        reason = "--full" if full else ""
        live: Manifest | None = None
        if not full:
            try:
                live = store.manifest()
            except IndexCorrupt as exc:
                reason = f"the previous index is unreadable ({exc})"
            else:
                reason = full_rebuild_reason(live, settings)
        old_files: dict[str, str] = dict(live.files) if live and not reason else {}
        known = {(sha, format_of(src)): src for src, sha in old_files.items()}

        def have(source: str, digest: str) -> bool:
            return (digest, format_of(source)) in known

        report = load_corpus(settings.corpus_dir, have if old_files else None)
        fault("scan")
        old_skipped = live.skipped_hashes if live else {}
        unchanged = old_files and report.all_hashes == {**old_files, **old_skipped} and not report.documents
        problem = store.check() if unchanged and hasattr(store, "check") else None
        if problem:  # damaged in place: "up to date" would be a lie
            log.warning("%s; building in full", problem)
            reason = f"the previous index is damaged ({problem})"
            old_files, known, unchanged = {}, {}, False
            report = load_corpus(settings.corpus_dir)
        if unchanged:
            # Nothing changed: the live index is the answer.
            return BuildReport(
                files=len(old_files), passages=int(live.passages), sentences=int(live.sentences),
                seconds=time.perf_counter() - started, index_path=_location(store.current()),
                skipped=report.skipped, model=settings.model, mode="unchanged", reused=len(old_files),
            )
        reuse = None
        if old_files and len(report.documents) < len(report.hashes):
            try:
                reuse = store.reusable()
            except IndexCorrupt as exc:
                # Cannot trust the stored vectors: read every file again and embed it all.
                log.warning("%s; building in full", exc)
                reason = f"the previous index is unreadable ({exc})"
                old_files, known = {}, {}
                report = load_corpus(settings.corpus_dir)
            else:
                recheck_reused(report, reuse, known, settings.corpus_dir, live.get("passage_digests", {}))
        data, embedded, reused = _assemble(report, reuse, known, settings, embedder, progress, say, lookup=not full)
        units = _units(report, known, live.units if live and old_files else {})
        skipped_hashes = {src: report.all_hashes[src] for src, _ in report.skipped if src in report.all_hashes}
        data.manifest = Manifest(
            **_settings_key(settings),
            dim=int(data.passage_vectors.shape[1]),
            normalize=True,
            files=report.hashes,
            skipped=[list(s) for s in report.skipped],
            skipped_hashes=skipped_hashes,
            units=units,
            passages=len(data.passages),
            sentences=len(data.sentence_spans),
            built_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            build="full" if reason else "incremental",
        )
        data.manifest.extra["indexed_at"] = indexed_at(  # per file, for the document library
            live.get("indexed_at", {}) if live and old_files else {}, report.hashes, old_files, data.manifest.built_at
        )
        data.manifest.extra["passage_digests"] = passage_digests(data.passages)
        data.manifest.extra["corpus_dir"] = str(Path(settings.corpus_dir).resolve())
        data.manifest.build_seconds = round(time.perf_counter() - started, 3)
        path = _location(store.write(data, fault=fault) if hasattr(store, "clean") else store.write(data))
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


def _assemble(report, reuse, known, settings, embedder, progress, say=None, lookup=True) -> tuple[IndexData, int, int]:
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
        from .embedding.cache import open_cache

        cache = open_cache(cache_root(settings), embedder) if to_embed else None
        try:
            vectors = encode_sorted(embedder, to_embed, progress, cache=cache, say=say, lookup=lookup)
        finally:
            if cache is not None:
                cache.close()
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
        manifest=Manifest(),
        passages=passages,
        passage_vectors=np.concatenate(passage_vectors) if passage_vectors else np.zeros((0, dim), np.float32),
        sentence_spans=sentence_spans,
        sentence_vectors=np.concatenate(sentence_vectors) if sentence_vectors else np.zeros((0, dim), np.float32),
    )  # BM25 is built by the store as it writes the passages
    return data, len(passage_texts) + len(keys), reused


def read_manifest(settings: Settings) -> Manifest | None:
    """The live index's manifest (None when there is no index), for front ends."""
    return get_store(settings).manifest()


def index_state(settings: Settings) -> str:
    """"missing", "stale" (corpus, chunking or index format changed since the build), "model"
    (built with another model) or "ok"."""
    manifest = get_store(settings).manifest()
    if manifest is None:
        return "missing"
    if manifest.model != settings.model:
        return "model"
    if full_rebuild_reason(manifest, settings):
        return "stale"
    changes = corpus_changes(settings, manifest)
    return "ok" if changes is None or not any(changes.values()) else "stale"


def corpus_changes(settings: Settings, manifest: Manifest | None = None) -> dict[str, list[str]] | None:
    """Files added, changed and removed in the corpus since the live index was built (sorted
    lists), or None when there is no corpus folder to compare with (the index is all there is)."""
    manifest = get_store(settings).manifest() if manifest is None else manifest
    try:
        current = file_hashes(settings.corpus_dir)
    except CorpusEmpty:
        return None
    built = {**manifest.files, **manifest.skipped_hashes} if manifest else {}
    return {
        "added": sorted(s for s in current if s not in built),
        "changed": sorted(s for s in current if s in built and built[s] != current[s]),
        "removed": sorted(s for s in built if s not in current),
    }


def _location(where) -> Path | str:
    """A local generation folder as a Path; a remote location ("uri#collection") as it is."""
    return where if isinstance(where, Path) or "#" in str(where) else Path(where)


def status(settings: Settings, verify: bool = False) -> dict:
    """What `qa status` shows: the index folder and live generation, its state (`index_state`,
    or "damaged"), model, counts, build time, and the corpus changes since the build (None
    without an index). The index files are checked (sizes, headers, sampled checksums; `verify`:
    every sha256); `problem` names the first damaged file and the fix."""
    store = get_store(settings)
    try:
        manifest = store.manifest()
    except IndexCorrupt as exc:
        manifest, problem = None, str(exc)
    else:
        problem = store.check(full=verify) if manifest and hasattr(store, "check") else None
    info = {
        "index_dir": str(settings.index_dir),
        "store": settings.store,
        "where": describe(settings),
        "index_command": index_command(settings),
        "corpus_dir": str(settings.corpus_dir),
        "state": "damaged" if problem else index_state(settings),
        "generation": str(store.current() or ""),
        "model": manifest.model if manifest else None,
        "passages": manifest.passages if manifest else 0,
        "files": len(manifest.files) if manifest else 0,
        "skipped": len(manifest.skipped) if manifest else 0,
        "built_at": manifest.built_at if manifest else None,
        "changes": corpus_changes(settings, manifest) if manifest else None,
    }
    if problem or verify:
        info["verified"] = "full" if verify else "quick"
        info["problem"] = problem
    return info


def ensure_index(
    settings: Settings,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    say: Callable[[str], None] = log.info,
) -> BuildReport | None:
    """Build the index when it is missing or the corpus changed (saying so through `say`).

    When an index exists but cannot be updated now, because another build holds the lock or
    the index folder is read-only, the live index is used as it is: `say` tells why, and how
    to update it, and None is returned.

    Raises:
        IndexMismatch: the index was built with another model than `settings.model`.
        IndexLocked, IndexUnwritable: there is no index yet and it cannot be built now.
    """
    state = index_state(settings)
    if state == "model":
        if embedder is None:
            get_embedder(settings.model)  # a model that is not there: say that, not "rebuild"
        raise_model_mismatch(get_store(settings).manifest(), settings)
    if state == "ok":
        return None
    if not Path(settings.corpus_dir).is_dir():
        list_files(settings.corpus_dir)  # a file or no folder: raises saying so, before "building it from FILE/"
    say(
        f"No index in {describe(settings)} yet: building it from {settings.corpus_dir}/ ..."
        if state == "missing"
        else f"{settings.corpus_dir}/ changed since the index was built: rebuilding {describe(settings)} ..."
    )
    try:
        return build_index(settings, embedder, progress, say=say)
    except (IndexLocked, IndexUnwritable) as exc:
        if state == "missing":
            raise
        say(_answering_meanwhile(exc, settings))
        return None


def _answering_meanwhile(exc: QAError, settings: Settings) -> str:
    """What `ensure_index` says when it answers from an index it could not update."""
    manifest = get_store(settings).manifest()
    built = manifest.built_at if manifest and manifest.built_at else "?"
    if isinstance(exc, IndexLocked):
        return (f"The index in {settings.index_dir}/ is being updated by another `qa index`: answering from "
                f"the current index (built {built}) until it is done.")
    return (f"The index in {settings.index_dir}/ is stale ({settings.corpus_dir}/ changed since it was built "
            f"{built}) and cannot be updated: {exc} Answering from the stale index.")


def raise_model_mismatch(manifest: Manifest, settings: Settings):
    """Raise IndexMismatch: the index was built with another model than `settings.model`; the
    message names the flag or the variable the model came from."""
    built = manifest.model
    rebuild = index_command(settings)
    if settings.model_source == "--model":
        how = (f"run `{rebuild} --model {settings.model}` to rebuild it with {settings.model!r}, "
               f"or leave --model out to use {built!r}")
    elif settings.model_source == "QA_MODEL":
        how = f"run `{rebuild}` to rebuild it with {settings.model!r}, or set QA_MODEL={built}"
    else:
        how = f"run `{rebuild}` to rebuild it with {settings.model!r}, or pass --model {built}"
    where = f" ({settings.model_source})" if settings.model_source != "default" else ""
    raise IndexMismatch(
        f"{describe(settings)} was built with model {built!r}, not {settings.model!r}{where}: {how}."
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
