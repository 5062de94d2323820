"""SQLite side of the local backend: `passages.sqlite` holds the passages (row id i = FAISS
vector i = BM25 doc i) and the sentence spans (sentence id j = row j of sentences.npy)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np

from ...schema import Passage

SCHEMA = """
CREATE TABLE passages (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, section TEXT NOT NULL,
    start_line INTEGER NOT NULL, end_line INTEGER NOT NULL,
    start_char INTEGER NOT NULL, end_char INTEGER NOT NULL, text TEXT NOT NULL,
    page INTEGER, locator TEXT NOT NULL DEFAULT '');
CREATE TABLE sentences (
    id INTEGER PRIMARY KEY, passage_id INTEGER NOT NULL REFERENCES passages(id),
    start_char INTEGER NOT NULL, end_char INTEGER NOT NULL);
"""
SOURCE_INDEX = "CREATE INDEX passages_source ON passages(source)"  # made once all rows are in: faster


def create(path: Path) -> sqlite3.Connection:
    """A new, empty passage store at `path`, open for `insert` (then `finish`)."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = OFF")  # a build writes into a temporary folder: no journal needed
    con.execute("PRAGMA synchronous = OFF")  # the generation is fsynced as a whole before it is switched in
    con.executescript(SCHEMA)
    return con


def insert(con: sqlite3.Connection, passages, sentence_spans, first_row: int, first_sentence: int) -> None:
    """Add passages (rows from `first_row`) and their sentences (ids from `first_sentence`;
    spans hold absolute passage rows)."""
    con.executemany(
        "INSERT INTO passages VALUES (?,?,?,?,?,?,?,?,?,?)",
        ((first_row + i, p.source, p.section, p.start_line, p.end_line, p.start_char, p.end_char, p.text,
          p.page, p.locator) for i, p in enumerate(passages)),
    )
    con.executemany("INSERT INTO sentences VALUES (?,?,?,?)",
                    ((first_sentence + j, *span) for j, span in enumerate(sentence_spans)))


def finish(con: sqlite3.Connection) -> None:
    """Index the passages by source, commit and close."""
    con.execute(SOURCE_INDEX)
    con.commit()
    con.close()


def write_sqlite(path: Path, passages: list[Passage], sentence_spans) -> None:
    """A passage store holding `passages` and `sentence_spans` (in one go)."""
    con = create(path)
    try:
        insert(con, passages, sentence_spans, 0, 0)
        finish(con)
    except BaseException:
        con.close()
        raise


COLUMNS = "text, source, section, start_line, end_line, start_char, end_char, page, locator"


def connect(path: Path) -> sqlite3.Connection:
    """A read-only connection to a passage store."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def read_passages(path: Path) -> tuple[list[Passage], list[tuple[int, int, int]]]:
    con = connect(path)
    try:
        passages = [Passage(*row) for row in con.execute(f"SELECT {COLUMNS} FROM passages ORDER BY id")]
        spans = [tuple(row) for row in con.execute("SELECT passage_id, start_char, end_char FROM sentences ORDER BY id")]
    finally:
        con.close()
    return passages, spans


class PassageDB:
    """Passages and sentence spans read by id from a passage store, as they are needed: nothing
    is loaded when it is opened. One read-only connection shared by the threads of a process
    (sqlite3 serialises its use; each call holds the lock for one query)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        # A generation's files never change once it is live (a build writes a new folder), so SQLite
        # is told so: no file lock and no change check per query (immutable), and pages are read
        # from the OS's cache in place (mmap) rather than copied by a read call each.
        self._con = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._con.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        self._lock = threading.Lock()

    def close(self) -> None:
        self._con.close()

    def _all(self, sql: str, args=()) -> list[tuple]:
        with self._lock:
            return self._con.execute(sql, args).fetchall()

    def counts(self) -> tuple[int, int]:
        """(passages, sentences), from the largest ids (cheap at any size)."""
        (p,) = self._all("SELECT MAX(id) FROM passages")[0]
        (s,) = self._all("SELECT MAX(id) FROM sentences")[0]
        return (-1 if p is None else p) + 1, (-1 if s is None else s) + 1

    def passages(self, rows) -> list[Passage]:
        rows = [int(r) for r in rows]
        if not rows:
            return []
        found: dict[int, Passage] = {}
        for start in range(0, len(rows), _BATCH):
            chunk = sorted(set(rows[start : start + _BATCH]))
            marks = ",".join("?" * len(chunk))
            for row in self._all(f"SELECT id, {COLUMNS} FROM passages WHERE id IN ({marks})", chunk):
                found[row[0]] = Passage(*row[1:])
        missing = [r for r in rows if r not in found]
        if missing:
            raise KeyError(f"no passage {missing[0]} in {self.path}")
        return [found[r] for r in rows]

    def passages_of(self, source: str) -> list[Passage]:
        return [Passage(*row) for row in self._all(f"SELECT {COLUMNS} FROM passages WHERE source = ? ORDER BY id", (source,))]

    def sentence_spans(self, ids) -> list[tuple[int, int, int]]:
        ids = [int(j) for j in ids]
        if not ids:
            return []
        lo, hi = min(ids), max(ids)
        if hi - lo < 4 * len(ids) + 64:  # one range read: sentences asked for are usually neighbours
            rows = self._all("SELECT id, passage_id, start_char, end_char FROM sentences WHERE id BETWEEN ? AND ?", (lo, hi))
        else:
            rows = []
            for start in range(0, len(ids), _BATCH):
                chunk = sorted(set(ids[start : start + _BATCH]))
                marks = ",".join("?" * len(chunk))
                rows += self._all(f"SELECT id, passage_id, start_char, end_char FROM sentences WHERE id IN ({marks})", chunk)
        found = {row[0]: tuple(row[1:]) for row in rows}
        return [found[j] for j in ids]

    def source_rows(self) -> tuple[list[str], np.ndarray]:
        """(sorted source names, source number of every passage row): what `row_sources` writes."""
        sources = [row[0] for row in self._all("SELECT source FROM passages ORDER BY id")]
        names = sorted(set(sources))
        number = {name: i for i, name in enumerate(names)}
        return names, np.fromiter((number[s] for s in sources), dtype=np.int32, count=len(sources))

    def sentence_starts(self, n_passages: int) -> np.ndarray:
        """First sentence id of every passage row, and the number of sentences at the end (n + 1)."""
        owner = np.array([row[0] for row in self._all("SELECT passage_id FROM sentences ORDER BY id")], dtype=np.int64)
        return np.searchsorted(owner, np.arange(n_passages + 1)).astype(np.int64)


MMAP_BYTES = 1 << 30  # at most this much of the file is mapped (SQLite reads the rest)
_BATCH = 500  # ids per IN (...) query (SQLite allows 999 parameters in older versions)
