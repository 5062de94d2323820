"""The registry of real-document collections: which Debian package, which folder, which files.

Each collection is a coherent subset of one Debian documentation package, chosen so that it
holds between ~500 and ~20,000 passages as qa chunks it and all four together embed in under
~25 minutes on 2 cores (counts: `python -m bench.corpora.stats`, written in README.md).

Files are chosen by `include` globs (relative to `source`), minus `exclude` globs, plus, for
`toc_pages`, every page linked from the table of contents (`<div class="toc">`) of those pages
(how the PostgreSQL manual names the pages of a part).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_DEST = ROOT / "bench" / "cache" / "corpora"  # git-ignored
SPLITS = ("dev", "test")


@dataclass(frozen=True)
class Collection:
    """One benchmark collection; `source` is the Debian doc folder its files are taken from."""

    name: str
    package: str
    source: Path
    description: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    toc_pages: tuple[str, ...] = ()
    subset: str = field(default="", compare=False)  # one line for the README: what was kept

    def question_file(self, split: str) -> Path:
        return HERE / self.name / f"{split}.jsonl"


# The Python library pages kept: the built-ins and the everyday standard library
# (text, data types, files, formats, persistence, logging, CLI, processes, testing, typing).
PYTHON_LIBRARY = (
    "intro functions constants stdtypes exceptions string re textwrap datetime collections enum "
    "dataclasses itertools functools contextlib pathlib os.path shutil glob tempfile csv json "
    "sqlite3 pickle logging argparse subprocess venv unittest typing"
).split()

# SQLite pages left out: lists and indexes of other pages, release history, a second copy of
# the file format page, the requirements page (sentences copied from the other pages), legal text.
SQLITE_EXCLUDE = (
    "requirements.html changes.html oldnews.html news.html chronology.html releaselog/* "
    "doc_backlink_crossref.html doc_keyword_crossref.html doc_pagelink_crossref.html "
    "doc_target_crossref.html sitemap.html keyword_index.html docs.html doclist.html "
    "fileformat.html syntaxdiagrams.html consortium_agreement-20071201.html "
    "pressrelease-20071212.html copyright-release.html c3ref/* session/* syntax/*"
).split()

COLLECTIONS: dict[str, Collection] = {
    c.name: c
    for c in (
        Collection(
            name="python311",
            package="python3.11-doc",
            source=Path("/usr/share/doc/python3.11-doc/html"),
            description="Python 3.11 documentation (Sphinx HTML)",
            include=(
                "tutorial/*.html",
                "howto/*.html",
                "faq/*.html",
                "reference/*.html",
                "using/*.html",
                "glossary.html",
                *(f"library/{m}.html" for m in PYTHON_LIBRARY),
            ),
            subset="tutorial, howto, faq, language reference, using, glossary, and 30 library pages: "
            + ", ".join(PYTHON_LIBRARY),
        ),
        Collection(
            name="postgres15",
            package="postgresql-doc-15",
            source=Path("/usr/share/doc/postgresql-doc-15/html"),
            description="PostgreSQL 15 manual (DocBook HTML, one page per section)",
            toc_pages=("tutorial.html", "sql.html", "sql-commands.html", "admin.html"),
            subset="Part I Tutorial, Part II The SQL Language, Part III Server Administration, "
            "and the SQL Commands reference (the pages in the table of contents of "
            "tutorial.html, sql.html, admin.html and sql-commands.html)",
        ),
        Collection(
            name="debref",
            package="debian-reference-en",
            source=Path("/usr/share/doc/debian-reference-en/docs"),
            description="Debian Reference, English (DocBook HTML, one page per chapter)",
            include=("pr01.en.html", "ch*.en.html", "apa.en.html"),
            subset="the preface, all 12 chapters and the appendix (the table-of-contents page left out)",
        ),
        Collection(
            name="sqlite",
            package="sqlite3-doc",
            source=Path("/usr/share/doc/sqlite3"),
            description="SQLite documentation (HTML pages of sqlite.org)",
            include=("*.html",),
            exclude=tuple(SQLITE_EXCLUDE),
            subset="every top-level page except lists and indexes of pages, release history, "
            "the duplicate fileformat.html, requirements.html and legal pages; the C API is "
            "kept once (capi3ref.html, not the c3ref/ folder)",
        ),
    )
}


def _toc_links(page: Path) -> list[str]:
    """The pages linked from the table of contents of a DocBook part page."""
    html = page.read_text(encoding="utf-8", errors="replace")
    start = html.find('class="toc"')
    if start < 0:
        return []
    end = html.find("</div>", start)
    return re.findall(r'href="([A-Za-z0-9_.-]+\.html)', html[start:end])


def select_files(collection: Collection, source: Path | None = None) -> list[str]:
    """The relative POSIX paths of the collection's files under `source` (default: its Debian
    folder), sorted. Missing folders give an empty list."""
    source = Path(source or collection.source)
    if not source.is_dir():
        return []
    chosen: set[str] = set()
    for pattern in collection.include:
        for path in source.glob(pattern):
            if path.is_file():
                chosen.add(path.relative_to(source).as_posix())
    for page in collection.toc_pages:
        if (source / page).is_file():
            chosen.add(page)
            chosen.update(name for name in _toc_links(source / page) if (source / name).is_file())
    return sorted(
        rel for rel in chosen if not any(fnmatch.fnmatchcase(rel, pattern) for pattern in collection.exclude)
    )


def get(name: str) -> Collection:
    """The collection called `name`.

    Raises:
        KeyError: with the list of known names.
    """
    try:
        return COLLECTIONS[name]
    except KeyError:
        raise KeyError(f"unknown collection {name!r}; known: {', '.join(COLLECTIONS)}") from None
