"""SQLite side of the local backend: `passages.sqlite` holds the passages (row id i = FAISS
vector i = BM25 doc i) and the sentence spans (sentence id j = row j of sentences.npy)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ...schema import Passage

def write_sqlite(path: Path, passages: list[Passage], sentence_spans) -> None:
    con = sqlite3.connect(path)
    try:
        con.executescript(
            """
            CREATE TABLE passages (
                id INTEGER PRIMARY KEY, source TEXT NOT NULL, section TEXT NOT NULL,
                start_line INTEGER NOT NULL, end_line INTEGER NOT NULL,
                start_char INTEGER NOT NULL, end_char INTEGER NOT NULL, text TEXT NOT NULL,
                page INTEGER, locator TEXT NOT NULL DEFAULT '');
            CREATE INDEX passages_source ON passages(source);
            CREATE TABLE sentences (
                id INTEGER PRIMARY KEY, passage_id INTEGER NOT NULL REFERENCES passages(id),
                start_char INTEGER NOT NULL, end_char INTEGER NOT NULL);
            """
        )
        con.executemany(
            "INSERT INTO passages VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                (i, p.source, p.section, p.start_line, p.end_line, p.start_char, p.end_char, p.text,
                 p.page, p.locator)
                for i, p in enumerate(passages)
            ),
        )
        con.executemany(
            "INSERT INTO sentences VALUES (?,?,?,?)",
            ((j, *span) for j, span in enumerate(sentence_spans)),
        )
        con.commit()
    finally:
        con.close()


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
