"""What the programmatic front ends (REST API, MCP server, `qa status`) offer, as plain functions
that return JSON-ready dicts: search, the indexed sources, index status and the text of a cited
span. One serialiser: `search_record` is `Answer.to_dict()`, the object `qa ask --json` prints,
and `status_record` is the object `qa status --json` prints.

Also the one rule for which files may be shown (`resolve_source`): only files the index knows,
inside the corpus folder, symlinks followed. The web viewer, the REST API and MCP all use it.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Sequence

from ..config import Settings
from ..errors import BadInput

MAX_SOURCE_CHARS = 200_000  # the most text one `source` request returns (about 100 pages)


class NotInCorpus(BadInput):
    """A request for a path that is not a file of the indexed corpus."""


class TooLarge(BadInput):
    """A request (or the text it asks for) is larger than the limit."""


def resolve_source(corpus_dir: Path, files: dict | set | list, requested: str) -> Path:
    """The file of the corpus named by `requested` (a corpus-relative POSIX path).

    Only paths the index knows (`files`) are served, and only when the real path (symlinks
    followed) lies inside the corpus folder.

    Raises:
        NotInCorpus: empty, absolute, `..`, backslash or NUL in the path, unknown to the index,
            missing, or leading out of the corpus.
    """
    refuse = NotInCorpus(f"{requested!r} is not a file of the corpus.")
    if not isinstance(requested, str) or not requested or "\x00" in requested or "\\" in requested:
        raise refuse
    pure = PurePosixPath(requested)
    if pure.is_absolute() or any(part in ("..", ".", "") for part in requested.split("/")):
        raise refuse
    if requested not in files:
        raise refuse
    root = Path(corpus_dir).resolve()
    try:
        real = (root / pure).resolve(strict=True)
    except (OSError, RuntimeError):
        raise refuse from None
    if not real.is_relative_to(root) or not real.is_file():
        raise refuse
    return real


class LiveRetriever:
    """The retriever every request of a server uses: the given one, or the process-wide
    `retriever.default_retriever` (reloaded when a build swaps in a new index), looked up per call.

    `ask` and `search` pass through `gate`, a semaphore shared by every front end of the
    process (chat, Gradio API, REST, MCP), so that no more than its count of questions use the
    CPU-bound model at once; the rest wait their turn. Other attributes are the live
    retriever's own (`manifest`, `sources()`, `generation`, ...).
    """

    def __init__(self, settings: Settings, retriever=None, gate: threading.Semaphore | None = None):
        from ..retriever import default_retriever

        if retriever is not None:
            self._get = lambda: retriever
        else:
            self._get = lambda: default_retriever(settings, build_if_missing=False)
        self.gate = gate or threading.BoundedSemaphore(4)

    def current(self):
        """The retriever of the live index. Raises IndexMissing / IndexCorrupt / IndexMismatch."""
        return self._get()

    def ask(self, question, k=5, sources: Sequence[str] | None = None):
        with self.gate:
            return self._get().ask(question, k, sources=sources)

    def search(self, question, k=5, sources: Sequence[str] | None = None):
        with self.gate:
            return self._get().search(question, k, sources=sources)

    def __getattr__(self, name):
        return getattr(self._get(), name)


# --- the records ----------------------------------------------------------------------------


def search_record(retriever, question, k=5, sources: Sequence[str] | None = None) -> dict:
    """The answer to `question` as `qa ask --json` prints it: question, found, answer (the cited
    sentence) and passages (citations, exact offsets, score parts).

    Raises:
        BadInput: empty question, k out of range, `sources` not a list of strings or matching
            no indexed file.
    """
    from ..retriever import check_k, check_question

    if sources is not None:
        if isinstance(sources, str):
            sources = [sources]
        if not isinstance(sources, (list, tuple)) or not all(isinstance(s, str) for s in sources):
            raise BadInput("sources must be a list of file patterns (globs or parts of a path), e.g. [\"*.md\"].")
    return retriever.ask(check_question(question), check_k(k), sources=list(sources) if sources else None).to_dict()


def status_record(settings: Settings) -> dict:
    """The index's state as `qa status --json` prints it (`build.status`): folders, state ("ok",
    "stale", "missing", "model"), generation, model, counts, build time and the corpus changes."""
    from ..build import status

    return status(settings)


_counts_lock = threading.Lock()
_counts: dict[str, Counter] = {}  # passages per source, by index generation


def _passage_counts(retriever, sources) -> Counter:
    key = retriever.generation
    with _counts_lock:
        if key not in _counts:
            _counts.clear()  # only the live generation's counts are kept
            _counts[key] = Counter({source: len(retriever.passages_of(source)) for source in sources})
        return _counts[key]


def sources_record(settings: Settings, retriever) -> dict:
    """Every indexed file with its passage count and whether it changed since the build
    (`changed`: its bytes differ from what was indexed, or it is gone: `exists` false); files
    of the corpus the index does not hold yet (`not_indexed`); files the build skipped, with why.
    """
    from ..build import corpus_changes

    live = retriever.current() if isinstance(retriever, LiveRetriever) else retriever
    manifest = live.manifest
    indexed = sorted(manifest.get("files", {}))
    changes = corpus_changes(settings, manifest) or {"added": [], "changed": [], "removed": indexed}
    changed, removed = set(changes["changed"]), set(changes["removed"])
    counts = _passage_counts(live, indexed)
    skipped = {path: reason for path, reason in manifest.get("skipped", [])}
    return {
        "generation": live.generation,
        "built_at": manifest.get("built_at"),
        "sources": [
            {
                "source": source,
                "passages": counts.get(source, 0),
                "changed": source in changed or source in removed,
                "exists": source not in removed,
            }
            for source in indexed
        ],
        "not_indexed": [s for s in changes["added"] if s not in skipped],
        "skipped": [{"source": path, "reason": reason} for path, reason in sorted(skipped.items())],
    }


def parse_lines(value) -> tuple[int, int] | None:
    """'a-b' (or 'a') as 1-based inclusive line numbers; None for no value.

    Raises:
        BadInput: malformed, zero or negative, or the end before the start.
    """
    if value is None or value == "":
        return None
    a, _, b = str(value).partition("-")
    try:
        start = int(a)
        end = int(b) if b else start
    except ValueError:
        raise BadInput(f"lines must look like 12 or 12-18 (1-based, inclusive), not {value!r}.") from None
    if start < 1 or end < start:
        raise BadInput(f"lines must be 1-based and in order, like 12-18, not {value!r}.")
    return start, end


def source_record(settings: Settings, retriever, file: str, lines: tuple[int, int] | None = None,
                  max_chars: int | None = None) -> dict:
    """The text of lines `lines` (1-based, inclusive; default the whole file) of an indexed
    file, as the index sees it (the extracted text for html/pdf/docx: the text that passages'
    lines and offsets refer to). `text == document_text[start_char:end_char]`; `changed` says
    the file's bytes differ from what was indexed (the cited lines may have moved).

    Raises:
        NotInCorpus: `file` is not a file of the indexed corpus (or leads out of it).
        BadInput: the lines lie outside the file, or the file cannot be read.
        TooLarge: the text asked for is longer than `max_chars` (default MAX_SOURCE_CHARS).
    """
    from ..retriever import read_source

    live = retriever.current() if isinstance(retriever, LiveRetriever) else retriever
    files = live.manifest.get("files", {})
    path = resolve_source(settings.corpus_dir, files, file)
    try:
        data = path.read_bytes()
    except OSError:
        raise NotInCorpus(f"{file!r} cannot be read.") from None
    document = read_source(path, file)
    starts = document.line_starts
    total = len(starts) - (len(starts) > 1 and document.text.endswith("\n"))  # a final newline ends the last line
    first, last = lines or (1, total)
    if first > total:
        raise BadInput(f"{file} has {total} lines: ask for lines within 1-{total}.")
    last = min(last, total)
    start_char = starts[first - 1]
    end_char = starts[last] - 1 if last < len(starts) else len(document.text)  # without the line's newline
    max_chars = max_chars or MAX_SOURCE_CHARS
    if end_char - start_char > max_chars:
        raise TooLarge(
            f"Lines {first}-{last} of {file} hold {end_char - start_char:,} characters, more than "
            f"{max_chars:,}: ask for fewer lines."
        )
    return {
        "source": file,
        "start_line": first,
        "end_line": last,
        "total_lines": total,
        "start_char": start_char,
        "end_char": end_char,
        "text": document.text[start_char:end_char],
        "changed": files.get(file) != hashlib.sha256(data).hexdigest(),
    }

