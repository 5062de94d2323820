"""LOAD: find the documents under the corpus folder and decode them into `Document`s.

Formats (by suffix):
- .txt, .md/.markdown: the file's text exactly as decoded (UTF-8, else Windows-1252/Latin-1;
  passages cite its offsets);
- .html/.htm: the visible text (scripts, styles, comments and <head> dropped) kept on the line
  of the file where it stands, so a passage's lines are the HTML file's lines; h1-h6 are sections;
- .pdf (pypdf): the text of each page, pages separated by a blank line; citations name the page;
  lines set larger than the body text (or in bold) are sections;
- .docx (python-docx): one paragraph per block, separated by blank lines; "Heading N" / "Title"
  styles are sections; citations name the paragraph range (paragraph N = `Document.paragraphs[N-1]`).

For the extracted formats, passages are exact spans of the extracted text (`read_document`).
A file that cannot be read (binary, damaged, password-protected, or without any text)
is skipped with one warning that names it; the caller gets the list of skipped files.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable

from .errors import CorpusEmpty
from .schema import Document

log = logging.getLogger(__name__)

FORMATS = {
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
SUFFIXES = ", ".join(sorted({s for s in FORMATS if s not in (".markdown", ".htm")}))


class Unreadable(Exception):
    """A file that is skipped; the message is the reason shown to the user."""


@dataclass
class LoadReport:
    """What `load_corpus` read and what it passed over (path, reason)."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)  # of the files read (or reusable)
    all_hashes: dict[str, str] = field(default_factory=dict)  # of every file, skipped ones too


def format_of(path: Path | str) -> str | None:
    """The format name of a path by its suffix ("txt", "md", "html", "pdf", "docx"), or None."""
    return FORMATS.get(Path(path).suffix.lower())


def list_files(corpus_dir: Path) -> list[Path]:
    """Supported files below `corpus_dir`, recursively, in a stable order; hidden ones left out."""
    corpus_dir = Path(corpus_dir)
    if corpus_dir.is_file():
        raise CorpusEmpty(
            f"{corpus_dir} is a file; --corpus (QA_CORPUS_DIR) takes the folder that holds your "
            f"documents: put it in a folder (e.g. mkdir docs && mv {corpus_dir} docs/) and pass that folder."
        )
    if not corpus_dir.is_dir():
        raise CorpusEmpty(
            f"Corpus folder {corpus_dir}/ does not exist. Put {SUFFIXES} files in it, "
            "or point --corpus (QA_CORPUS_DIR) at the folder that holds them."
        )
    files = []
    root = corpus_dir.resolve()
    for path in sorted(corpus_dir.rglob("*")):
        rel = path.relative_to(corpus_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in FORMATS and path.is_file():
            try:
                rel.as_posix().encode("utf-8")
            except UnicodeEncodeError:
                log.warning("skipped %r: the file name is not valid UTF-8; rename it", rel.as_posix())
                continue
            if not path.resolve().is_relative_to(root):
                # A link out of the corpus would put an outside file's text into answers.
                log.warning("skipped %s: a link to a file outside %s/", rel.as_posix(), corpus_dir)
                continue
            files.append(path)
    return files


def file_hashes(corpus_dir: Path) -> dict[str, str]:
    """sha256 of every supported file, keyed by its corpus-relative POSIX path (unreadable
    files are left out)."""
    hashes = {}
    for path in list_files(corpus_dir):
        try:
            hashes[path.relative_to(corpus_dir).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue
    return hashes


def snapshot(corpus_dir: Path) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of every supported file: a cheap way to notice that the corpus changed."""
    out = {}
    for path in list_files(corpus_dir):
        try:
            st = path.stat()
        except OSError:
            continue
        out[path.relative_to(corpus_dir).as_posix()] = (st.st_mtime_ns, st.st_size)
    return out


def decode(data: bytes) -> str:
    """The file's text (no newline translation, so offsets hold): UTF-8 (a BOM is kept as
    U+FEFF), else Windows-1252, else Latin-1 for the bytes cp1252 leaves undefined, so that an
    older "ANSI" text file is read rather than skipped.

    Raises:
        UnicodeDecodeError: binary (a NUL byte).
    """
    if b"\x00" in data:
        raise UnicodeDecodeError("utf-8", data, data.index(b"\x00"), data.index(b"\x00") + 1, "binary file (NUL byte)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# --- HTML ------------------------------------------------------------------------------------

_HIDDEN = frozenset({"script", "style", "head", "title", "noscript", "template", "svg", "math", "iframe", "object"})
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"})
_BLOCK = frozenset(
    "address article aside blockquote br dd details dialog div dl dt fieldset figcaption figure footer "
    "form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table tbody td tfoot th thead "
    "tr ul".split()
)
_HEADING_TAGS = {f"h{i}": i for i in range(1, 7)}


_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_STYLE_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")


def hidden_selectors(raw: str) -> frozenset[str]:
    """The simple `.class` and `#id` selectors that the page's <style> blocks hide
    (display: none / visibility: hidden), outside media queries."""
    out = set()
    for block in re.findall(r"<style[^>]*>(.*?)</style>", raw, re.I | re.S):
        block = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", block)  # print/screen-size rules
        for selectors, body in _STYLE_RULE.findall(block):
            if _HIDDEN_STYLE.search(body):
                out.update(sel.strip() for sel in selectors.split(",") if re.fullmatch(r"\s*[.#][\w-]+\s*", sel))
    return frozenset(out)


class _VisibleText(HTMLParser):
    """Collects the visible text of an HTML page on the line of the file it comes from.

    Markup is dropped but the line breaks inside it are kept, so line N of the result is line N
    of the file; where a block element (p, li, h2...) begins or ends mid-line a space stands in.
    """

    def __init__(self, raw: str):
        super().__init__(convert_charrefs=True)
        self.raw = raw
        self.out: list[str] = []
        self.length = 0
        self.line = 1  # lines written so far + 1
        self.hidden: list[str] = []  # open elements since the one that hides them
        self.hidden_selectors = hidden_selectors(raw)
        self.heading: tuple[int, int] | None = None  # (level, start offset)
        self.headings: list[tuple[int, int, int, str]] = []
        self.title: list[str] | None = None  # the text of the first <title> while it is read
        self.title_done = False

    def _emit(self, text: str) -> None:
        if text:
            self.out.append(text)
            self.length += len(text)
            self.line += text.count("\n")

    def _sync(self) -> None:
        """Add the newlines that markup took up, so the output stands on the parser's line."""
        line = self.getpos()[0]
        if line > self.line:
            self._emit("\n" * (line - self.line))

    def _space(self) -> None:
        if self.out and not self.out[-1][-1:].isspace():
            self._emit(" ")

    def _hides(self, tag: str, attrs) -> bool:
        """Whether this element and all inside it are boilerplate or not shown: scripts and the
        like, navigation (`nav`, role=navigation), the `hidden` attribute, aria-hidden="true",
        an inline style or a class/id that the page's own <style> sets to display:none or
        visibility:hidden."""
        if tag in _HIDDEN or tag == "nav":
            return True
        values = {k.lower(): (v or "") for k, v in attrs}
        if "hidden" in values or values.get("aria-hidden", "").strip().lower() == "true":
            return True
        if values.get("role", "").strip().lower() == "navigation":
            return True
        if _HIDDEN_STYLE.search(values.get("style", "")):
            return True
        classes = {"." + c for c in values.get("class", "").split()}
        ident = {"#" + values["id"]} if values.get("id") else set()
        return bool((classes | ident) & self.hidden_selectors)

    def handle_starttag(self, tag, attrs):
        self._sync()
        if tag == "title" and not self.title_done and "svg" not in self.hidden:
            self.title = []
        if self.hidden:
            if tag not in _VOID:
                self.hidden.append(tag)
            return
        if self._hides(tag, attrs):
            if tag not in _VOID:
                self.hidden.append(tag)
            return
        if tag in _BLOCK:
            self._space()
        if tag in _HEADING_TAGS and self.heading is None:
            self.heading = (_HEADING_TAGS[tag], self.length)

    def handle_startendtag(self, tag, attrs):
        self._sync()
        if not self.hidden and tag in _BLOCK:
            self._space()

    def handle_endtag(self, tag):
        self._sync()
        if tag == "title" and self.title is not None:
            self.title_done = True
        if self.hidden:
            if tag in self.hidden:
                while self.hidden and self.hidden.pop() != tag:
                    pass
            return
        if tag in _HEADING_TAGS and self.heading is not None:
            level, start = self.heading
            self.heading = None
            text = "".join(self.out)[start:]
            a = start + len(text) - len(text.lstrip())
            b = start + len(text.rstrip())
            title = " ".join(text.split())
            if title:
                self.headings.append((a, b, level, title))
        if tag in _BLOCK:
            self._space()

    def handle_data(self, data):
        self._sync()
        if self.title is not None and not self.title_done:
            self.title.append(data)
        # Hidden text (a script, a style) still takes up lines of the file: keep them, empty.
        self._emit(data if not self.hidden else "\n" * data.count("\n"))

    def handle_comment(self, data):
        self._sync()
        self._emit("\n" * data.count("\n"))


def read_html(data: bytes) -> tuple[str, tuple, str]:
    """(visible text, headings, title) of an HTML file; see `_VisibleText`. The title (of the
    first <title>, white space collapsed; "" without one) is not part of the text."""
    raw = decode(data)
    parser = _VisibleText(raw)
    parser.feed(raw)
    parser.close()
    # Anything left at the end (a final newline) keeps the line count equal to the file's.
    text = "".join(parser.out)
    extra = raw.count("\n") - text.count("\n")
    if extra > 0:
        text += "\n" * extra
    return text, tuple(parser.headings), " ".join("".join(parser.title or ()).split())


# --- PDF --------------------------------------------------------------------------------------

_SPACES = re.compile(r"[ \t\r\f\v]+\n")


PDF_HEADING_MAX_WORDS = 12
PDF_HEADING_SCALE = 1.15  # a line this much larger than the body text is a heading


class _PdfLines:
    """Collects, through pypdf's `visitor_text`, each text line of a page with its font size
    (the largest on the line) and whether all of it is bold: what marks a heading in a PDF."""

    def __init__(self):
        self.lines: list[tuple[str, float, bool]] = []
        self._text, self._size, self._bold = "", 0.0, True

    def visit(self, text, cm, tm, font, size):
        name = str((font or {}).get("/BaseFont", "")) if hasattr(font, "get") else ""
        scale = abs(tm[3]) if tm and tm[3] else 1.0
        for i, piece in enumerate(text.split("\n")):
            if i:
                self.close()
            if piece.strip():
                self._text += piece
                self._size = max(self._size, float(size or 0) * scale)
                self._bold = self._bold and ("bold" in name.lower() or "black" in name.lower())

    def close(self):
        if self._text.strip():
            self.lines.append((" ".join(self._text.split()), self._size, self._bold))
        self._text, self._size, self._bold = "", 0.0, True


def pdf_headings(page_text: str, lines: list[tuple[str, float, bool]], body: float, offset: int,
                 levels: list[float]) -> list[tuple[int, int, int, str]]:
    """Headings of one page as (start, end, level, title) in the document text: lines of the
    extracted `page_text` that stand in larger type than the `body` size, or in bold when the body
    is not, short and without final punctuation. `levels`: heading sizes, largest first."""
    styled = {}
    for text, size, bold in lines:
        larger = size >= body * PDF_HEADING_SCALE
        if not (larger or bold) or len(text.split()) > PDF_HEADING_MAX_WORDS:
            continue
        if text[-1] in ".,;!?" or not any(c.isalpha() for c in text):
            continue
        styled.setdefault(text, size)
    out, pos = [], 0
    for line in page_text.split("\n"):
        title = " ".join(line.split())
        if title in styled:
            a = pos + len(line) - len(line.lstrip())
            size = styled[title]
            level = next((i + 1 for i, s in enumerate(levels) if size >= s), len(levels) + 1)
            out.append((offset + a, offset + pos + len(line.rstrip()), level, title))
        pos += len(line) + 1
    return out


def read_pdf(path: Path) -> tuple[str, tuple[int, ...], tuple | None]:
    """(text, page start offsets, headings): each page's extracted text, pages separated by a
    blank line; headings are the lines set larger than the body text, or bold (None if none).

    Raises:
        Unreadable: damaged, password-protected, or no page has text.
    """
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:  # pragma: no cover - pypdf is a dependency
        raise Unreadable("reading .pdf needs pypdf: `pip install pypdf`") from exc
    try:
        reader = PdfReader(path if isinstance(path, io.BytesIO) else str(path))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception as exc:  # pypdf raises several types for crypto it lacks
                raise Unreadable(f"password-protected PDF ({exc})") from exc
            if not opened:
                raise Unreadable("password-protected PDF")
        pages, styles = [], []
        for page in reader.pages:
            collect = _PdfLines()
            text = page.extract_text(visitor_text=collect.visit) or ""
            collect.close()
            pages.append(_SPACES.sub("\n", text.replace("\r\n", "\n").replace("\r", "\n")).strip())
            styles.append(collect.lines)
    except Unreadable:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError) as exc:
        raise Unreadable(f"damaged or unsupported PDF ({type(exc).__name__}: {exc})") from exc
    if not any(pages):
        raise Unreadable("no extractable text in the PDF (scanned images?)")
    # The body size is the one most characters are set in; its boldness too.
    weight: dict[float, int] = {}
    bold_chars = 0
    for text, size, bold in (line for lines in styles for line in lines):
        weight[round(size, 1)] = weight.get(round(size, 1), 0) + len(text)
        bold_chars += len(text) if bold else 0
    total = sum(weight.values())
    body = max(weight, key=weight.get) if weight else 0.0
    if bold_chars > total / 2:  # a document set all in bold: boldness marks nothing
        styles = [[(t, s, False) for t, s, _ in lines] for lines in styles]
    levels = sorted({s for s in weight if s >= body * PDF_HEADING_SCALE}, reverse=True)
    starts, parts, headings, pos = [], [], [], 0
    for text, lines in zip(pages, styles):
        starts.append(pos)
        parts.append(text)
        if body:
            headings += pdf_headings(text, lines, body, pos, levels)
        pos += len(text) + 2
    return "\n\n".join(parts), tuple(starts), (tuple(headings) if headings else None)


# --- DOCX -------------------------------------------------------------------------------------

_DOCX_HEADING = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def read_docx(path: Path) -> tuple[str, tuple, tuple[int, ...]]:
    """(text, headings, paragraph start offsets) of a .docx: paragraphs separated by a blank line.

    Raises:
        Unreadable: not a valid .docx (damaged, or encrypted: Word saves those as another format).
    """
    try:
        import docx
        from docx.opc.exceptions import PackageNotFoundError
    except ImportError as exc:  # pragma: no cover - python-docx is a dependency
        raise Unreadable("reading .docx needs python-docx: `pip install python-docx`") from exc
    import zipfile

    try:
        document = docx.Document(path if isinstance(path, io.BytesIO) else str(path))
        paragraphs = [(p.text or "", p.style.name if p.style is not None else "") for p in document.paragraphs]
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise Unreadable(
            f"not a readable .docx (damaged or password-protected: {type(exc).__name__})"
        ) from exc
    parts, starts, headings, pos = [], [], [], 0
    for text, style in paragraphs:
        text = text.replace("\r", "\n").replace("\v", "\n")
        starts.append(pos)
        parts.append(text)
        m = _DOCX_HEADING.match(style.strip())
        level = int(m.group(1)) if m else 1 if style.strip().lower() == "title" else 0
        if level and text.strip():
            a = pos + len(text) - len(text.lstrip())
            headings.append((a, pos + len(text.rstrip()), level, " ".join(text.split())))
        pos += len(text) + 2
    text = "\n\n".join(parts)
    if not text.strip():
        raise Unreadable("empty")
    return text, tuple(headings), tuple(starts)


def read_document(path: Path, source: str | None = None, data: bytes | None = None) -> Document:
    """The `Document` of one file (its text, or its extracted text for html/pdf/docx). Given
    `data`, the file's bytes already read, those are parsed: the document is of that version
    even if the file changes meanwhile.

    Raises:
        Unreadable: the file cannot be used; the message says why.
    """
    path = Path(path)
    source = source or path.name
    fmt = format_of(path)
    if fmt is None:
        raise Unreadable(f"unsupported file type {path.suffix!r}")
    try:
        if fmt in ("txt", "md", "html"):
            data = path.read_bytes() if data is None else data
            if fmt == "html":
                text, headings, title = read_html(data)
                document = Document(source=source, text=text, format=fmt, headings=headings, title=title)
            else:
                document = Document(source=source, text=decode(data), format=fmt)
        elif fmt == "pdf":
            text, pages, headings = read_pdf(io.BytesIO(data) if data is not None else path)
            document = Document(source=source, text=text, format=fmt, headings=headings, units=pages, unit="page")
        else:
            text, headings, paragraphs = read_docx(io.BytesIO(data) if data is not None else path)
            document = Document(
                source=source, text=text, format=fmt, headings=headings, units=paragraphs, unit="paragraph"
            )
    except Unreadable:
        raise
    except UnicodeDecodeError as exc:
        raise Unreadable(exc.reason if "binary" in str(exc.reason) else "not valid UTF-8") from exc
    except OSError as exc:
        raise Unreadable(str(exc.strerror or exc)) from exc
    except Exception as exc:  # parsers of damaged pdf/docx raise anything (XMLSyntaxError, NotImplementedError...)
        raise Unreadable(f"damaged {fmt} file ({type(exc).__name__})") from exc
    if not document.text.strip():
        raise Unreadable("empty")
    return document


CHANGING = "changed while it was being read; left for the next `qa index`"


def read_stable(path: Path, attempts: int = 3) -> bytes:
    """The bytes of a file that is not being written meanwhile: its size, mtime and inode are
    the same before and after the read (tried `attempts` times).

    Raises:
        Unreadable: it kept changing (the message says it is left for the next update).
        OSError: it cannot be read (deleted, permissions...).
    """
    for _ in range(attempts):
        before = os.stat(path)
        data = Path(path).read_bytes()
        after = os.stat(path)
        stamp = lambda st: (st.st_size, st.st_mtime_ns, st.st_ino)  # noqa: E731
        if stamp(before) == stamp(after) and len(data) == after.st_size:
            return data
    raise Unreadable(CHANGING)


def load_corpus(corpus_dir: Path, have: Callable[[str, str], bool] | None = None) -> LoadReport:
    """Read every supported file of `corpus_dir`.

    Args:
        have: optional `have(source, sha256)`; a file for which it returns True is not read
            any further (the caller already has its passages); it only gets its hash in
            `report.hashes`.
    Raises:
        CorpusEmpty: the folder is missing or has no readable document.
    """
    corpus_dir = Path(corpus_dir)
    report = LoadReport()
    for path in list_files(corpus_dir):
        source = path.relative_to(corpus_dir).as_posix()
        try:
            data = read_stable(path)
        except (OSError, Unreadable) as exc:
            reason = str(exc.strerror or exc) if isinstance(exc, OSError) else str(exc)
            log.warning("skipped %s: %s", source, reason)
            report.skipped.append((source, reason))
            continue
        digest = hashlib.sha256(data).hexdigest()
        report.all_hashes[source] = digest
        if have is not None and have(source, digest):
            report.hashes[source] = digest
            continue
        try:
            document = read_document(path, source, data)  # parsed from these bytes: the hashed version
        except Unreadable as exc:
            log.warning("skipped %s: %s", source, exc)
            report.skipped.append((source, str(exc)))
            continue
        report.hashes[source] = digest
        report.documents.append(document)
    if not report.hashes:
        raise CorpusEmpty(
            f"No readable document ({SUFFIXES}) in {corpus_dir}/"
            + (f" ({len(report.skipped)} skipped)" if report.skipped else "")
            + ". Add documents there, or point --corpus (QA_CORPUS_DIR) at another folder."
        )
    return report
