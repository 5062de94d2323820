"""Records that cross stage boundaries. Frozen dataclasses, serialised as they are (`asdict`)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Document:
    """One source file, decoded. `source` is its path relative to the corpus folder (POSIX form)."""

    source: str
    text: str
    format: str = "txt"
    # For extracted formats (html, pdf, docx) `text` is the extracted text that passages are exact
    # spans of. `headings` are explicit (start, end, level, title) spans of heading text (html
    # h1-h6, docx heading styles); None means "find them in the text" (txt, md, pdf).
    headings: tuple[tuple[int, int, int, str], ...] | None = None
    # Start offsets of the units a citation names: pages (pdf) or paragraphs (docx), 1-based by
    # position. `unit` is "page", "paragraph" or "" (cite by line).
    units: tuple[int, ...] = ()
    unit: str = ""
    # The document's own title where the format has one apart from its headings (html <title>):
    # the root of its heading paths when they do not already name it (`chunking.rooted`).
    title: str = ""

    def unit_of(self, offset: int) -> int:
        """1-based page/paragraph number holding the character at `offset` (0 without units)."""
        return bisect_right(self.units, offset) if self.units else 0

    def locator(self, start: int, end: int) -> str:
        """What a citation adds for the span [start, end): "p.3", "¶4-6", or "" (lines suffice)."""
        return unit_locator(self.unit, self.units, start, end)

    @property
    def line_starts(self) -> list[int]:
        """Character offset where each line begins (line i+1 starts at line_starts[i])."""
        starts = [0]
        find = self.text.find
        pos = find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = find("\n", pos + 1)
        return starts


def unit_locator(unit: str, starts, start: int, end: int) -> str:
    """The locator of [start, end) given the start offsets of a document's pages (`unit`
    "page") or paragraphs ("paragraph"): "p.3", "pp.3-4", "¶4", "¶4-6"; "" without units."""
    if not starts:
        return ""
    a, b = bisect_right(starts, start), bisect_right(starts, max(start, end - 1))
    if unit == "page":
        return f"p.{a}" if a == b else f"pp.{a}-{b}"
    return f"¶{a}" if a == b else f"¶{a}-{b}"


def line_of(line_starts: list[int], offset: int) -> int:
    """1-based line number of the character at `offset` (the one offset→line function)."""
    return bisect_right(line_starts, offset)


@dataclass(frozen=True)
class Passage:
    """An exact span of a source file: `text == file_text[start_char:end_char]`.

    Lines are 1-based and inclusive; `section` is the heading the span sits under ("" before any).
    For a PDF, DOCX or HTML file the offsets and lines are those of the text extracted from it
    (`qa.documents.read_document`; for HTML the lines are also the file's own lines); `page` is
    the PDF page and `locator` what the citation names instead of lines ("p.3" for a PDF page,
    "¶4-6" for a range of DOCX paragraphs, "" for text files).
    """

    text: str
    source: str
    section: str
    start_line: int
    end_line: int
    start_char: int
    end_char: int
    page: int | None = None
    locator: str = ""

    @property
    def citation(self) -> str:
        """`source:Lstart-Lend`, or `source p.N` / `source ¶a-b` for PDF / DOCX: the form a reader
        uses to check the passage."""
        return cite(self)

    def to_dict(self) -> dict:
        return asdict(self)


def cite(span) -> str:
    """The citation of anything with source, lines and (optionally) a locator."""
    locator = getattr(span, "locator", "")
    if locator:
        return f"{span.source} {locator}"
    if span.start_line == span.end_line:
        return f"{span.source}:L{span.start_line}"
    return f"{span.source}:L{span.start_line}-L{span.end_line}"


@dataclass(frozen=True)
class Hit(Passage):
    """A retrieved passage with its rank, its fused score and the parts that made it.

    `dense` is the cosine similarity of question and passage (its best sentence counts too),
    `bm25` the BM25 score; `dense_rank` / `bm25_rank` are 1-based ranks in each retriever's
    own list (None when the passage was not in it). `sentence_start`/`sentence_end` are the
    file offsets of the sentence of this passage that best matches the question.
    """

    rank: int = 0
    score: float = 0.0
    dense: float | None = None
    bm25: float | None = None
    dense_rank: int | None = None
    bm25_rank: int | None = None
    sentence_start: int | None = None
    sentence_end: int | None = None
    # The file's bytes differ from those it was indexed from: lines and text may have moved.
    source_changed: bool = False


@dataclass(frozen=True)
class Span:
    """A sentence cited on its own (the extractive answer)."""

    text: str
    source: str
    start_line: int
    end_line: int
    start_char: int
    end_char: int
    page: int | None = None
    locator: str = ""
    source_changed: bool = False

    @property
    def citation(self) -> str:
        return cite(self)


@dataclass(frozen=True)
class Answer:
    """What `qa.ask` returns: the ranked passages, the sentence that best answers, and whether
    the corpus supports an answer at all (`found`), and why (`reason`)."""

    question: str
    passages: list[Hit] = field(default_factory=list)
    answer: Span | None = None
    found: bool = False
    source_changed: bool = False  # a cited file changed since it was indexed
    reason: str = ""  # one sentence a reader can check: why these passages answer, or why none does

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "found": self.found,
            "source_changed": self.source_changed,
            "reason": self.reason,
            "answer": asdict(self.answer) if self.answer else None,
            "passages": [asdict(p) for p in self.passages],
        }


INDEX_FORMAT = 3  # 2: page/locator columns, passages.npy, file sizes; 3: checksums, seal, passage digests


@dataclass
class Manifest:
    """`manifest.json` of an index generation: what it was built from and with, and what it holds.

    Written by `qa.build` (the build's facts) and the store (`vector_index`, `index_files`), read
    by the store (checks), `qa.build` (what can be reused, is it stale) and the front ends (status).
    Keys this version does not know are kept in `extra` and written back, so a newer field
    survives an older reader. `get`/`[]` read a field by its JSON name, as the dict used to.
    """

    format: int | None = None
    qa_version: str = ""
    model: str = ""
    chunking: dict = field(default_factory=dict)
    dim: int = 0
    normalize: bool = True
    files: dict[str, str] = field(default_factory=dict)  # source -> sha256
    skipped: list = field(default_factory=list)  # [source, reason]
    skipped_hashes: dict[str, str] = field(default_factory=dict)
    units: dict[str, dict] = field(default_factory=dict)  # source -> {"unit", "starts"}
    passages: int = 0
    sentences: int = 0
    built_at: str = ""
    build: str = ""  # "full" or "incremental"
    build_seconds: float = 0.0
    vector_index: str = "flat"  # "flat", "hnsw", "ivf-sq8" (set by the store)
    index_files: dict[str, int] | None = None  # file -> size in bytes (set by the store)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "Manifest":
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**self.extra, **out}

    def get(self, key: str, default=None):
        if key != "extra" and key in self.__dataclass_fields__:
            return getattr(self, key)
        return self.extra.get(key, default)

    def __getitem__(self, key: str):
        if key != "extra" and key in self.__dataclass_fields__:
            return getattr(self, key)
        return self.extra[key]

    def __contains__(self, key: str) -> bool:
        return (key != "extra" and key in self.__dataclass_fields__) or key in self.extra


@dataclass
class ScoreParts:
    """Every score part of one question, from `Searcher.score` (numpy arrays).

    On an exact index the arrays are indexed by passage row and `candidates` is None; on an
    approximate one they are aligned with `candidates` (the passage rows scored, ascending).
    `sentence[j]` is the cosine of the question with sentence j (computed where asked on an
    approximate index). `question_dense` is the dense score of the question itself (what the
    "found" rule reads); `dense` the one that ranked.
    """

    query: Any
    dense: Any
    question_dense: Any
    bm25: Any
    sentence: Any
    fused: Any
    dense_rank: Any
    bm25_rank: Any
    allowed: Any
    candidates: Any = None
    searched: int = 0  # passages the question was searched in (0: as many as `allowed` holds)

    def __getitem__(self, key: str):
        """Read a part by name (`parts["fused"]`), as the dict of earlier versions allowed."""
        if key == "candidates" and self.candidates is None:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        value = getattr(self, key, None)
        return default if value is None else value

    def __contains__(self, key: str) -> bool:
        return getattr(self, key, None) is not None
