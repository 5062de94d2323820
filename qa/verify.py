"""Checks that tie the stages to `integrity`: what an update may reuse, what `qa status --verify`
reports, and which cited files changed since they were indexed.

Wired by `api` (build and retrieval) and called by the front ends through it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from . import integrity
from .documents import Unreadable, format_of, read_document
from .schema import Answer, Hit, Passage

log = logging.getLogger(__name__)

TEXT_FORMATS = ("txt", "md", "html")  # cheap to read again: stored passages are compared with the file


def passage_digests(passages: list[Passage]) -> dict[str, str]:
    """`integrity.passages_digest` of every source's passages (recorded in the manifest)."""
    by_source: dict[str, list] = {}
    for p in passages:
        by_source.setdefault(p.source, []).append((p.start_char, p.end_char, p.text))
    return {source: integrity.passages_digest(rows) for source, rows in by_source.items()}


def recheck_reused(report, reuse, known: dict, corpus_dir: Path, digests: dict) -> list[str]:
    """Check every file an update is about to reuse, and read again (into `report.documents`)
    those whose stored parts cannot be trusted: passages that differ from the digest recorded at
    build time or (text formats) from the file's text at their offsets, or vectors that are not
    unit length. Returns the sources read again (one warning each).
    """
    read = {d.source for d in report.documents}
    redo = []
    for source, digest in report.hashes.items():
        if source in read:
            continue
        old = known[(digest, format_of(source))]
        passages, vectors, _, sentence_vectors = reuse.of(old)
        rows = [(p.start_char, p.end_char, p.text) for p in passages]
        problem = ""
        if old in digests and digests[old] != integrity.passages_digest(rows):
            problem = "its stored passages differ from what was indexed"
        elif not (integrity.unit_rows(vectors) and integrity.unit_rows(sentence_vectors)):
            problem = "its stored vectors are not unit length"
        document = None
        if not problem and format_of(source) in TEXT_FORMATS:
            try:
                document = read_document(Path(corpus_dir) / source, source)
            except Unreadable:
                continue  # the loader read it a moment ago; let the next update judge it
            if any(p.text != document.text[p.start_char : p.end_char] for p in passages):
                problem = "its stored passages do not match the file's text at their offsets"
        if not problem:
            continue
        log.warning("%s: %s; reading and embedding it again", source, problem)
        try:
            document = read_document(Path(corpus_dir) / source, source)
        except Unreadable as exc:
            report.skipped.append((source, str(exc)))
            report.hashes.pop(source, None)
            continue
        report.documents.append(document)
        redo.append(source)
    return redo


def check_space_for(index_dir: Path, fresh: dict, fresh_sentences: int, report, reuse, known: dict, embedder) -> None:
    """Refuse a build whose new generation cannot fit (before anything is embedded): its size
    estimated from the chunked new files (`fresh`: source -> (passages, spans)) and the
    passages reused from the live index.

    Raises:
        DiskFull: the message says how much is needed and how much is free.
    """
    rows = [reuse.rows.get(known[(digest, format_of(source))], (0, 0))
            for source, digest in report.hashes.items() if source not in fresh] if reuse is not None else []
    passages = sum(len(ps) for ps, _ in fresh.values()) + sum(b - a for a, b in rows)
    chars = sum(len(p.text) for ps, _ in fresh.values() for p in ps)
    chars += sum(len(reuse.passages[i].text) for a, b in rows for i in range(a, b))
    sentences = fresh_sentences + (len(reuse.sentence_spans) if reuse is not None else 0)  # at most
    dim = reuse.passage_vectors.shape[1] if reuse is not None else embedder.dim
    integrity.check_free_space(Path(index_dir), integrity.estimate_bytes(passages, sentences, dim, chars))


def verify_index(index_dir: Path, full: bool = True) -> str | None:
    """The problem of the live index (the first damaged file, named, with the fix), or None when
    it is intact or absent. `full`: every sha256 (`qa status --verify`); else the cheap check."""
    from .store.local import LocalStore

    return LocalStore(index_dir).check(full=full)


def changed_sources(sources, files: dict, hashes: integrity.SourceHashes | None) -> set[str]:
    """Those of `sources` whose file differs from the bytes it was indexed from (each file
    checked once, however often it is named)."""
    if hashes is None:
        return set()
    return {s for s in dict.fromkeys(sources) if hashes.changed(s, files.get(s))}


def flag_changed(hits: list[Hit], files: dict, hashes: integrity.SourceHashes | None,
                 changed: set[str] | None = None) -> list[Hit]:
    """`hits` with `source_changed` set where the file differs from the bytes it was indexed from
    (`changed`: those files, when already checked by `changed_sources`)."""
    if hashes is None:
        return hits
    if changed is None:
        changed = changed_sources((h.source for h in hits), files, hashes)
    return [replace(h, source_changed=True) if h.source in changed else h for h in hits]


def flag_answer(answer: Answer, files: dict, hashes: integrity.SourceHashes | None) -> Answer:
    """`answer` with its passages, its answer sentence and itself flagged (see `flag_changed`)."""
    if hashes is None:
        return answer
    span = answer.answer
    changed = changed_sources([p.source for p in answer.passages] + ([span.source] if span is not None else []),
                              files, hashes)
    passages = flag_changed(answer.passages, files, hashes, changed)
    if span is not None and span.source in changed:
        span = replace(span, source_changed=True)
    flagged = any(p.source_changed for p in passages) or bool(span and span.source_changed)
    return replace(answer, passages=passages, answer=span, source_changed=flagged)
