"""LOAD: find the documents under the corpus folder and decode them into `Document`s.

A file that cannot be read as text (not UTF-8, binary, unreadable) is skipped with a warning that
names it; the caller decides what to do with the list of skipped files.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorpusEmpty
from .schema import Document

log = logging.getLogger(__name__)

FORMATS = {".txt": "txt", ".md": "md", ".markdown": "md"}


@dataclass
class LoadReport:
    """What `load_corpus` read and what it passed over (path, reason)."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)


def list_files(corpus_dir: Path) -> list[Path]:
    """Supported files below `corpus_dir`, recursively, in a stable order; hidden ones left out."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusEmpty(
            f"Corpus folder {corpus_dir}/ does not exist. Put .txt or .md files in it, "
            "or point --corpus (QA_CORPUS_DIR) at the folder that holds them."
        )
    files = []
    for path in sorted(corpus_dir.rglob("*")):
        rel = path.relative_to(corpus_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in FORMATS and path.is_file():
            files.append(path)
    return files


def file_hashes(corpus_dir: Path) -> dict[str, str]:
    """sha256 of every supported file, keyed by its corpus-relative POSIX path."""
    return {
        path.relative_to(corpus_dir).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in list_files(corpus_dir)
    }


def decode(data: bytes) -> str:
    """The file's text exactly as UTF-8 decodes it (no newline translation, so offsets hold).

    Raises:
        UnicodeDecodeError: not UTF-8, or binary (a NUL byte).
    """
    if b"\x00" in data:
        raise UnicodeDecodeError("utf-8", data, data.index(b"\x00"), data.index(b"\x00") + 1, "binary file (NUL byte)")
    return data.decode("utf-8")


def load_corpus(corpus_dir: Path) -> LoadReport:
    """Read every supported file of `corpus_dir`.

    Raises:
        CorpusEmpty: the folder is missing or has no readable document.
    """
    corpus_dir = Path(corpus_dir)
    report = LoadReport()
    for path in list_files(corpus_dir):
        source = path.relative_to(corpus_dir).as_posix()
        try:
            data = path.read_bytes()
            text = decode(data)
        except UnicodeDecodeError as exc:
            reason = exc.reason if "binary" in str(exc.reason) else "not valid UTF-8"
            log.warning("skipped %s: %s", source, reason)
            report.skipped.append((source, reason))
            continue
        except OSError as exc:
            log.warning("skipped %s: %s", source, exc.strerror or exc)
            report.skipped.append((source, str(exc.strerror or exc)))
            continue
        if not text.strip():
            log.warning("skipped %s: empty", source)
            report.skipped.append((source, "empty"))
            continue
        report.hashes[source] = hashlib.sha256(data).hexdigest()
        report.documents.append(Document(source=source, text=text, format=FORMATS[path.suffix.lower()]))
    if not report.documents:
        raise CorpusEmpty(
            f"No readable .txt or .md document in {corpus_dir}/"
            + (f" ({len(report.skipped)} skipped)" if report.skipped else "")
            + ". Add documents there, or point --corpus (QA_CORPUS_DIR) at another folder."
        )
    return report
