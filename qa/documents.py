"""LOAD: find the documents under the corpus folder and decode them into `Document`s.

Formats (by suffix):
- .txt, .md/.markdown: the file's text exactly as UTF-8 decodes it (passages cite its offsets);
- .html/.htm: the visible text (scripts, styles, comments and <head> dropped) kept on the line
  of the file where it stands, so a passage's lines are the HTML file's lines; h1-h6 are sections;
- .pdf (pypdf): the text of each page, pages separated by a blank line; citations name the page;
- .docx (python-docx): one paragraph per block, separated by blank lines; "Heading N" / "Title"
  styles are sections; citations name the paragraph range (paragraph N = `Document.paragraphs[N-1]`).

For the extracted formats, passages are exact spans of the extracted text (`read_document`).
A file that cannot be read (not UTF-8, binary, damaged, password-protected, or without any text)
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
    """The file's text exactly as UTF-8 decodes it (no newline translation, so offsets hold).

    Raises:
        UnicodeDecodeError: not UTF-8, or binary (a NUL byte).
    """
    if b"\x00" in data:
        raise UnicodeDecodeError("utf-8", data, data.index(b"\x00"), data.index(b"\x00") + 1, "binary file (NUL byte)")
    return data.decode("utf-8")


# --- HTML ------------------------------------------------------------------------------------

_HIDDEN = frozenset({"script", "style", "head", "title", "noscript", "template", "svg", "math", "iframe", "object"})
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"})
_BLOCK = frozenset(
    "address article aside blockquote br dd details dialog div dl dt fieldset figcaption figure footer "
    "form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table tbody td tfoot th thead "
    "tr ul".split()
)
_HEADING_TAGS = {f"h{i}": i for i in range(1, 7)}


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
        self.hidden: list[str] = []
        self.heading: tuple[int, int] | None = None  # (level, start offset)
        self.headings: list[tuple[int, int, int, str]] = []

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

    def handle_starttag(self, tag, attrs):
        self._sync()
        if tag in _HIDDEN:
            if tag not in _VOID:
                self.hidden.append(tag)
            return
        if self.hidden:
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
        # Hidden text (a script, a style) still takes up lines of the file: keep them, empty.
        self._emit(data if not self.hidden else "\n" * data.count("\n"))

    def handle_comment(self, data):
        self._sync()
        self._emit("\n" * data.count("\n"))


def read_html(data: bytes) -> tuple[str, tuple]:
    """(visible text, headings) of an HTML file; see `_VisibleText`."""
    raw = decode(data)
    parser = _VisibleText(raw)
    parser.feed(raw)
    parser.close()
    # Anything left at the end (a final newline) keeps the line count equal to the file's.
    text = "".join(parser.out)
    extra = raw.count("\n") - text.count("\n")
    if extra > 0:
        text += "\n" * extra
    return text, tuple(parser.headings)


# --- PDF --------------------------------------------------------------------------------------

_SPACES = re.compile(r"[ \t\r\f\v]+\n")


def read_pdf(path: Path) -> tuple[str, tuple[int, ...]]:
    """(text, page start offsets): each page's extracted text, pages separated by a blank line.

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
        pages = []
        for page in reader.pages:
            text = page.extract_text() or ""
            pages.append(_SPACES.sub("\n", text.replace("\r\n", "\n").replace("\r", "\n")).strip())
    except Unreadable:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError) as exc:
        raise Unreadable(f"damaged or unsupported PDF ({type(exc).__name__}: {exc})") from exc
    if not any(pages):
        raise Unreadable("no extractable text in the PDF (scanned images?)")
    starts, parts, pos = [], [], 0
    for text in pages:
        starts.append(pos)
        parts.append(text)
        pos += len(text) + 2
    return "\n\n".join(parts), tuple(starts)


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
                text, headings = read_html(data)
                document = Document(source=source, text=text, format=fmt, headings=headings)
            else:
                document = Document(source=source, text=decode(data), format=fmt)
        elif fmt == "pdf":
            text, pages = read_pdf(io.BytesIO(data) if data is not None else path)
            document = Document(source=source, text=text, format=fmt, units=pages, unit="page")
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
