"""Records that cross stage boundaries. Frozen dataclasses, serialised as they are (`asdict`)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Document:
    """One source file, decoded. `source` is its path relative to the corpus folder (POSIX form)."""

    source: str
    text: str
    format: str = "txt"

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


def line_of(line_starts: list[int], offset: int) -> int:
    """1-based line number of the character at `offset` (the one offset→line function)."""
    return bisect_right(line_starts, offset)


@dataclass(frozen=True)
class Passage:
    """An exact span of a source file: `text == file_text[start_char:end_char]`.

    Lines are 1-based and inclusive; `section` is the heading the span sits under ("" before any).
    """

    text: str
    source: str
    section: str
    start_line: int
    end_line: int
    start_char: int
    end_char: int

    @property
    def citation(self) -> str:
        """`source:Lstart-Lend`, the form a reader uses to check the passage."""
        if self.start_line == self.end_line:
            return f"{self.source}:L{self.start_line}"
        return f"{self.source}:L{self.start_line}-L{self.end_line}"

    def to_dict(self) -> dict:
        return asdict(self)


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


@dataclass(frozen=True)
class Span:
    """A sentence cited on its own (the extractive answer)."""

    text: str
    source: str
    start_line: int
    end_line: int
    start_char: int
    end_char: int


@dataclass(frozen=True)
class Answer:
    """What `qa.ask` returns: the ranked passages, the sentence that best answers, and whether
    the corpus supports an answer at all (`found`)."""

    question: str
    passages: list[Hit] = field(default_factory=list)
    answer: Span | None = None
    found: bool = False

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "found": self.found,
            "answer": asdict(self.answer) if self.answer else None,
            "passages": [asdict(p) for p in self.passages],
        }
