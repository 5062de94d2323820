"""The JSON records of the REST API and the MCP server, as pydantic models: they document the
shapes (OpenAPI, MCP output schemas) and nothing else. The values themselves come from one
serialiser, `Answer.to_dict()` and the `service` functions; the models allow extra fields, so a
field the record gains reaches every client unchanged.

Imported only by the front ends that need it (pydantic is not loaded by `import qa`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class Span(_Record):
    """An exact span of a corpus file: `text == file_text[start_char:end_char]`."""

    text: str = Field(description="The words of the corpus, exactly as written. Quote them verbatim.")
    source: str = Field(description="File path relative to the corpus folder.")
    start_line: int = Field(description="First line of the span (1-based).")
    end_line: int = Field(description="Last line of the span (1-based, inclusive).")
    start_char: int = Field(description="Offset of the first character in the file's text.")
    end_char: int = Field(description="Offset just past the last character.")
    page: int | None = Field(None, description="PDF page number, when the file is a PDF.")
    locator: str = Field("", description='What a citation names instead of lines: "p.3" (PDF), "¶4-6" (DOCX), or "".')
    source_changed: bool = Field(False, description="The file changed since it was indexed (run `qa index`): "
                                 "the text is what was indexed, the file's lines may have moved.")


class Passage(Span):
    """A retrieved passage with its rank and the parts of its score."""

    section: str = Field(description="The heading the passage sits under (empty before any heading).")
    rank: int = Field(description="1 for the best passage.")
    score: float = Field(description="The fused score that ranked it.")
    dense: float | None = Field(None, description="Cosine similarity of question and passage (or its best sentence).")
    bm25: float | None = Field(None, description="BM25 keyword score.")
    dense_rank: int | None = Field(None, description="Rank by the dense score alone.")
    bm25_rank: int | None = Field(None, description="Rank by BM25 alone.")
    sentence_start: int | None = Field(None, description="Offset of the passage's sentence that best matches the question.")
    sentence_end: int | None = Field(None, description="End offset of that sentence.")


class SearchResult(_Record):
    """The record `qa ask --json` prints."""

    question: str
    found: bool = Field(description="False when no passage clearly answers: the passages are then only the closest ones.")
    reason: str = Field("", description="Why the question counts as answered or not found, in terms a reader can check.")
    source_changed: bool = Field(False, description="A cited file changed since it was indexed: run `qa index`.")
    answer: Span | None = Field(description="The sentence of the corpus that best answers, with its citation; when `found` is "
                                             "false, only the closest sentence, not an answer.")
    passages: list[Passage]


class SearchRequest(BaseModel):
    """POST /api/v1/search."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="The question, in your own words.", examples=["Who leads the NCRI?"])
    k: int = Field(5, ge=1, le=100, description="How many passages to return.")
    sources: list[str] | None = Field(
        None, description="Only search files matching any of these globs or path parts, e.g. [\"*.md\", \"handbook/\"]."
    )


class SourceInfo(_Record):
    source: str
    passages: int = Field(description="Passages of this file in the index.")
    changed: bool = Field(description="The file's bytes differ from what was indexed (or it is gone): run `qa index`.")
    exists: bool = Field(description="The file is still in the corpus folder.")


class Skipped(_Record):
    source: str
    reason: str


class SourcesResult(_Record):
    generation: str = Field(description="The index generation answering now.")
    built_at: str | None
    sources: list[SourceInfo]
    not_indexed: list[str] = Field(description="Files in the corpus folder that the index does not hold yet.")
    skipped: list[Skipped] = Field(description="Files the build could not read, with the reason.")


class Changes(_Record):
    added: list[str]
    changed: list[str]
    removed: list[str]


class StatusResult(_Record):
    """The record `qa status --json` prints."""

    index_dir: str
    store: str = Field(description='The backend holding the index: "local" (the index folder) or "milvus".')
    where: str = Field(description='Where the index lives, as messages name it: "index/" or "Milvus at URI".')
    index_command: str = Field(description="The `qa index` command that builds or updates this index.")
    corpus_dir: str
    state: str = Field(description='"ok", "stale" (corpus changed: run `qa index`), "missing", "model" (other '
                       'model) or "damaged" (see `problem`).')
    generation: str
    model: str | None
    passages: int
    files: int
    skipped: int
    built_at: str | None
    changes: Changes | None


class SourceText(_Record):
    """Lines of a corpus file, as the index sees it (extracted text for HTML, PDF and DOCX)."""

    source: str
    start_line: int
    end_line: int
    total_lines: int = Field(description="Lines in the whole file.")
    start_char: int
    end_char: int
    text: str = Field(description="The text of those lines, exactly: file_text[start_char:end_char].")
    changed: bool = Field(description="The file changed since it was indexed: citations into it may have moved.")


class Error(BaseModel):
    error: str = Field(description="bad_input, unauthenticated, not_found, too_large, unavailable or internal.")
    detail: str = Field(description="What went wrong and what to do next.")
