"""CHUNK: cut a `Document` into passages that are exact spans of its text.

Pure functions of plain data: no model, no I/O. Every offset is computed on the original string and
every passage text is a slice of it, so `passage.text == document.text[start_char:end_char]`.

Rules: a passage never cuts a sentence, never crosses a section heading, holds about
`min_words`..`max_words` words, and repeats the last sentence(s) of the passage before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .config import ChunkSettings
from .schema import Document, Passage, line_of

# Abbreviations after which a period does not end a sentence.
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs etc e.g i.e al fig no nos vol pp gen col lt sgt rev hon "
    "inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k d.c "
    "a.k.a n.b cf approx viz resp".split()
)
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LIST_ITEM = re.compile(r"\n[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]+")
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^[ \t]*(```|~~~)")
HEADING_MAX_CHARS = 100
HEADING_MAX_WORDS = 14


@dataclass(frozen=True)
class Section:
    """A heading's title and the [start, end) character range of the body under it."""

    title: str
    start: int
    end: int


def _lines(text: str):
    """Yield (start, end, line) for every line, `end` excluding the newline."""
    pos = 0
    for line in text.split("\n"):
        yield pos, pos + len(line), line
        pos += len(line) + 1


def _is_txt_heading(line: str, before_blank: bool, after_blank: bool) -> bool:
    """A plain-text heading: a short line standing alone between blank lines, with no final
    sentence punctuation."""
    s = line.strip()
    return (
        bool(s)
        and before_blank
        and after_blank
        and len(s) <= HEADING_MAX_CHARS
        and len(s.split()) <= HEADING_MAX_WORDS
        and s[-1] not in ".!?,;:"
        and s[0].isalnum()
        and any(c.isalpha() for c in s)
    )


def _words(text: str) -> str:
    """The words of `text`, lower case, each between spaces (" a b "): `in` then matches whole words."""
    return " " + " ".join(re.findall(r"\w+", text.lower())) + " "


def rooted(title: str, path: str) -> str:
    """A heading path (" › "-joined) started at the document's `title`, unless the path already
    names it (the title's words, in order, are in the path) or its first heading is the title
    (its words are in the title, as "re — Regular expression operations¶" in "re — Regular
    expression operations — Python 3.11 documentation"). An empty path (text before the first
    heading) becomes the title."""
    if not _words(title).strip():
        return path
    if not path:
        return title
    if _words(title) in _words(path) or _words(path.split(" › ")[0]) in _words(title):
        return path
    return f"{title} › {path}"


def find_headings(document: Document) -> list[tuple[int, int, str]]:
    """Heading lines as (line start, line end, section title), in order."""
    lines = list(_lines(document.text))
    headings: list[tuple[int, int, str]] = []  # (line start, line end, title)
    if document.headings is not None:  # given by the format (html h1-h6, docx heading styles)
        path: list[tuple[int, str]] = []
        for start, end, level, title in document.headings:
            path = [(lv, t) for lv, t in path if lv < level] + [(level, title)]
            headings.append((start, end, " › ".join(t for _, t in path)))
    elif document.format == "md":
        in_fence = False
        path: list[tuple[int, str]] = []
        for start, end, line in lines:
            if _FENCE.match(line):
                in_fence = not in_fence
                continue
            m = None if in_fence else _MD_HEADING.match(line)
            if m:
                level = len(m.group(1))
                path = [(lv, t) for lv, t in path if lv < level] + [(level, m.group(2).strip())]
                headings.append((start, end, " › ".join(t for _, t in path)))
    else:
        for i, (start, end, line) in enumerate(lines):
            before = i == 0 or not lines[i - 1][2].strip()
            after = i == len(lines) - 1 or not lines[i + 1][2].strip()
            if _is_txt_heading(line, before, after):
                headings.append((start, end, line.strip()))
    return headings


def find_sections(document: Document, title_root: bool = True) -> list[Section]:
    """Split a document into sections by its headings; text before the first heading has title "".
    With `title_root`, every title is `rooted` at the document's title (which text before the
    first heading takes)."""
    text = document.text
    root = (lambda path: rooted(document.title, path)) if title_root else (lambda path: path)
    sections = []
    body_start, title = 0, root("")
    for start, end, heading in find_headings(document):
        sections.append(Section(title, body_start, start))
        body_start, title = end, root(heading)
    sections.append(Section(title, body_start, len(text)))
    return [s for s in sections if text[s.start : s.end].strip()]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) so that it neither starts nor ends with white space."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _ends_sentence(text: str, stop: int) -> bool:
    """Whether the punctuation run that ends at `stop` closes a sentence (not `Mrs.` or `D.C.`)."""
    word_start = stop
    while word_start > 0 and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:stop].rstrip("\"'”’)]").rstrip(".").lower().lstrip("(\"'“‘")
    if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
        return False
    nxt = stop
    while nxt < len(text) and text[nxt].isspace():
        nxt += 1
    # A following lower-case word means the period was not the end ("approx. five").
    return nxt >= len(text) or not text[nxt].islower()


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans [(start, end)] of text[start:end], trimmed of white space, in order.

    Sentences end at . ! ? (not after a known abbreviation or an initial), at a paragraph
    break and before a list item.
    """
    end = len(text) if end is None else end
    cuts = {start, end}
    segment = text[start:end]
    for m in _PARAGRAPH.finditer(segment):
        cuts.add(start + m.start())
    for m in _LIST_ITEM.finditer(segment):
        cuts.add(start + m.start())
    for m in _BOUNDARY.finditer(segment):
        if _ends_sentence(text, start + m.end()):
            cuts.add(start + m.end())
    points = sorted(cuts)
    spans = []
    for a, b in zip(points, points[1:]):
        a, b = _trim(text, a, b)
        if a < b:
            spans.append((a, b))
    return spans


def _split_long(text: str, span: tuple[int, int], max_words: int) -> list[tuple[int, int]]:
    """Cut a run-on "sentence" of more than 3 × max_words words at word boundaries."""
    words = list(re.finditer(r"\S+", text[span[0] : span[1]]))
    if len(words) <= 3 * max_words:
        return [span]
    pieces = []
    for i in range(0, len(words), max_words):
        group = words[i : i + max_words]
        pieces.append((span[0] + group[0].start(), span[0] + group[-1].end()))
    return pieces


def _word_count(text: str, span: tuple[int, int]) -> int:
    return len(text[span[0] : span[1]].split())


def _group(counts: list[int], settings: ChunkSettings) -> list[tuple[int, int]]:
    """Group sentences (by word count) into [i, j) runs: greedy up to max_words, with overlap,
    and a short tail merged into the run before it when the result stays near max_words."""
    n, runs, i = len(counts), [], 0
    while i < n:
        j, words = i, 0
        while j < n and (j == i or words + counts[j] <= settings.max_words):
            words += counts[j]
            j += 1
        runs.append((i, j))
        if j >= n:
            break
        i = max(j - settings.overlap_sentences, i + 1)
    if len(runs) >= 2:
        (pi, _), (li, lj) = runs[-2], runs[-1]
        if sum(counts[li:lj]) < settings.min_words and sum(counts[pi:lj]) <= settings.max_words * 1.2:
            runs[-2:] = [(pi, lj)]
    return runs


def _split_at(sections: list[Section], cuts) -> list[Section]:
    """Sections cut at the given offsets (page starts), keeping their titles."""
    out = []
    for s in sections:
        inner = [c for c in cuts if s.start < c < s.end]
        bounds = [s.start, *inner, s.end]
        out.extend(Section(s.title, a, b) for a, b in zip(bounds, bounds[1:]))
    return out


def chunk_document(document: Document, settings: ChunkSettings = ChunkSettings()) -> list[Passage]:
    """Cut `document` into passages (see module docstring). Pure; order follows the text."""
    text = document.text
    starts = document.line_starts
    passages = []
    sections = find_sections(document, settings.title_root)
    if document.unit == "page":  # a passage never spans two PDF pages: each cites one page
        sections = _split_at(sections, document.units)
    for section in sections:
        sentences = []
        for span in split_sentences(text, section.start, section.end):
            sentences.extend(_split_long(text, span, settings.max_words))
        counts = [_word_count(text, s) for s in sentences]
        for i, j in _group(counts, settings):
            a, b = sentences[i][0], sentences[j - 1][1]
            passages.append(
                Passage(
                    text=text[a:b],
                    source=document.source,
                    section=section.title,
                    start_line=line_of(starts, a),
                    end_line=line_of(starts, b - 1),
                    start_char=a,
                    end_char=b,
                    page=document.unit_of(a) if document.unit == "page" else None,
                    locator=document.locator(a, b),
                )
            )
    return passages
