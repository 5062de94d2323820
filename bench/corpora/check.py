"""Validate the question files of every collection against its materialised documents.

    python -m bench.corpora.check [--dest DIR] [--only NAME ...]

Rules, per row of `bench/corpora/<name>/{dev,test}.jsonl`:
- valid JSON object with "id", "question", "evidence", "kind"; ids unique across the collection
  and shaped `<name>-d001` in dev, `<name>-t001` in test;
- `kind` is one of KINDS; `evidence` is null exactly for the "unanswerable-*" kinds;
- evidence is 4-14 words and occurs, case and spacing normalised as `qa eval` normalises, exactly
  once in the whole collection's rendered text (`qa.documents.read_document(path).text`);
- optional "absent": words or phrases the collection must not contain (proof that an on-topic
  unanswerable question is really not covered);
per collection: at least MIN_ANSWERABLE answerable and MIN_UNANSWERABLE unanswerable questions,
every answerable kind used, and the test split holding about a third of the questions.
A note (not a failure) names evidence that no single passage of qa's default chunking holds.
Prints counts per collection, split and kind, then every problem; exits 1 on any problem, 2 when
a corpus folder is missing. A collection without question files yet is listed and skipped.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from qa.chunking import chunk_document
from qa.documents import read_document
from qa.evaluation.runners import _norm as normalise  # the very normalisation `qa eval` matches with

from .registry import COLLECTIONS, DEFAULT_DEST, SPLITS
from .stats import render

ANSWERABLE_KINDS = ("paraphrase", "keyword", "howto", "why", "typo", "factual")
UNANSWERABLE_KINDS = ("unanswerable-ontopic", "unanswerable-offtopic")
KINDS = ANSWERABLE_KINDS + UNANSWERABLE_KINDS
MIN_WORDS, MAX_WORDS = 4, 14
MIN_ANSWERABLE, MIN_UNANSWERABLE = 60, 20
TEST_SHARE = (0.25, 0.42)  # "a third" with some slack


@dataclass
class Report:
    """The rows read and the problems found for one collection."""

    name: str
    rows: dict[str, list[dict]] = field(default_factory=dict)  # split -> rows
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warnings that do not fail the check

    def counts(self) -> dict[str, Counter]:
        return {split: Counter(row.get("kind", "?") for row in rows) for split, rows in self.rows.items()}


class Haystack:
    """The normalised rendered text of a collection, to count where a string occurs."""

    def __init__(self, texts: dict[str, str], folder: Path | None = None):
        self.texts = {rel: normalise(text) for rel, text in texts.items()}
        self.folder = folder
        self._passages: dict[str, list[str]] = {}

    def in_one_passage(self, needle: str) -> bool:
        """Whether some passage of qa's default chunking holds all of `needle` (so `qa eval`
        can find it); True when the folder is unknown."""
        if self.folder is None:
            return True
        needle = normalise(needle)
        for rel, _ in self.places(needle):
            if rel not in self._passages:
                document = read_document(self.folder / rel, rel)
                self._passages[rel] = [normalise(p.text) for p in chunk_document(document)]
            if any(needle in passage for passage in self._passages[rel]):
                return True
        return False

    def places(self, needle: str) -> list[tuple[str, int]]:
        """(file, occurrences) of the normalised `needle`, for the files that contain it."""
        needle = normalise(needle)
        return [(rel, text.count(needle)) for rel, text in self.texts.items() if needle in text]

    def mentions(self, term: str) -> list[str]:
        """The files where `term` occurs as whole words (normalised)."""
        pattern = re.compile(r"(?<!\w)" + re.escape(normalise(term)) + r"(?!\w)")
        return [rel for rel, text in self.texts.items() if pattern.search(text)]


def read_rows(path: Path, problems: list[str]) -> list[dict]:
    """The JSON objects of a jsonl file; bad lines are recorded in `problems` and left out."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            problems.append(f"{path.name}:{number}: not valid JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{path.name}:{number}: not a JSON object")
            continue
        row["_line"] = f"{path.name}:{number}"
        rows.append(row)
    return rows


def check_row(row: dict, name: str, split: str, haystack: Haystack) -> list[str]:
    """The problems of one question row (an empty list when it is fine)."""
    where = f"{row['_line']} {row.get('id')!r}"
    problems = []
    for key in ("id", "question", "kind"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            problems.append(f"{where}: \"{key}\" must be a non-empty string")
    if "evidence" not in row:
        problems.append(f"{where}: \"evidence\" is missing (null for an unanswerable question)")
    if problems:
        return problems
    if not re.fullmatch(rf"{re.escape(name)}-{split[0]}\d{{3}}", row["id"]):
        problems.append(f"{where}: id must look like {name}-{split[0]}001 in {split}.jsonl")
    kind, evidence = row["kind"], row["evidence"]
    if kind not in KINDS:
        problems.append(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    elif kind in UNANSWERABLE_KINDS:
        if evidence is not None:
            problems.append(f"{where}: an {kind} question must have \"evidence\": null")
    elif not isinstance(evidence, str):
        problems.append(f"{where}: an answerable ({kind}) question needs an evidence string")
    if isinstance(evidence, str):
        words = len(evidence.split())
        if not MIN_WORDS <= words <= MAX_WORDS:
            problems.append(f"{where}: evidence has {words} words, not {MIN_WORDS}-{MAX_WORDS}")
        places = haystack.places(evidence)
        total = sum(n for _, n in places)
        if total == 0:
            problems.append(f"{where}: evidence {evidence!r} does not occur in the collection")
        elif total > 1:
            shown = ", ".join(f"{rel} x{n}" for rel, n in places[:4])
            problems.append(f"{where}: evidence {evidence!r} occurs {total} times ({shown}); make it longer or pick another")
    absent = row.get("absent", [])
    if not isinstance(absent, list) or not all(isinstance(t, str) and t.strip() for t in absent):
        problems.append(f"{where}: \"absent\" must be a list of words or phrases")
    else:
        for term in absent:
            found = haystack.mentions(term)
            if found:
                problems.append(f"{where}: {term!r} is said to be absent but occurs in {', '.join(found[:3])}")
    return problems


def check_collection(name: str, folder: Path, question_dir: Path) -> Report:
    """Check `question_dir/{dev,test}.jsonl` of collection `name` against the documents in `folder`."""
    report = Report(name)
    paths = {split: question_dir / f"{split}.jsonl" for split in SPLITS}
    for split, path in paths.items():
        if path.is_file():
            report.rows[split] = read_rows(path, report.problems)
        else:
            report.problems.append(f"{path} is missing")
    rows = [row for split in report.rows for row in report.rows[split]]
    if not rows:
        return report
    haystack = Haystack(render(folder), folder)
    if not haystack.texts:
        report.problems.append(f"{folder}/ has no readable document")
        return report
    seen: Counter = Counter(row.get("id") for row in rows)
    report.problems += [f"id {i!r} is used {n} times" for i, n in seen.items() if n > 1]
    evidences = Counter(normalise(r["evidence"]) for r in rows if isinstance(r.get("evidence"), str))
    questions = Counter(normalise(r["question"]) for r in rows if isinstance(r.get("question"), str))
    report.problems += [f"question {q!r} is asked {n} times" for q, n in questions.items() if n > 1]
    for split, split_rows in report.rows.items():
        for row in split_rows:
            report.problems += check_row(row, name, split, haystack)
            if isinstance(row.get("evidence"), str) and evidences[normalise(row["evidence"])] > 1:
                report.problems.append(f"{row['_line']}: evidence {row['evidence']!r} is shared by two questions")
            elif isinstance(row.get("evidence"), str) and len(haystack.places(row["evidence"])) == 1:
                if not haystack.in_one_passage(row["evidence"]):
                    report.notes.append(f"{row['_line']}: evidence {row['evidence']!r} spans two passages of the default chunking")
    kinds = Counter(row.get("kind") for row in rows)
    answerable = sum(kinds[k] for k in ANSWERABLE_KINDS)
    unanswerable = sum(kinds[k] for k in UNANSWERABLE_KINDS)
    if answerable < MIN_ANSWERABLE:
        report.problems.append(f"{name}: {answerable} answerable questions, at least {MIN_ANSWERABLE} wanted")
    if unanswerable < MIN_UNANSWERABLE:
        report.problems.append(f"{name}: {unanswerable} unanswerable questions, at least {MIN_UNANSWERABLE} wanted")
    unused = [k for k in KINDS if not kinds[k]]
    if unused:
        report.problems.append(f"{name}: no question of kind {', '.join(unused)}")
    share = len(report.rows.get("test", [])) / len(rows)
    if not TEST_SHARE[0] <= share <= TEST_SHARE[1]:
        report.problems.append(f"{name}: test holds {share:.0%} of the questions, a third wanted")
    return report


def format_counts(report: Report) -> str:
    """One line per split: total, answerable, unanswerable, then the count of every kind."""
    lines = []
    for split, counts in report.counts().items():
        answerable = sum(counts[k] for k in ANSWERABLE_KINDS)
        parts = " ".join(f"{k}={counts[k]}" for k in KINDS if counts[k])
        lines.append(
            f"  {split:4s} {sum(counts.values()):3d} questions ({answerable} answerable, "
            f"{sum(counts.values()) - answerable} unanswerable): {parts}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.corpora.check", description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="the corpus folders (default %(default)s)")
    parser.add_argument("--only", nargs="+", choices=sorted(COLLECTIONS))
    args = parser.parse_args(argv)
    failed = False
    for name in args.only or COLLECTIONS:
        collection = COLLECTIONS[name]
        question_dir = collection.question_file("dev").parent
        if not any(collection.question_file(s).is_file() for s in SPLITS):
            print(f"{name}: no question files yet ({question_dir}/dev.jsonl, test.jsonl), skipped")
            continue
        folder = args.dest / name
        if not folder.is_dir():
            print(f"error: {folder}/ is missing: run `python -m bench.corpora.install` first.", file=sys.stderr)
            return 2
        report = check_collection(name, folder, question_dir)
        status = "ok" if not report.problems else f"{len(report.problems)} problem(s)"
        print(f"{name}: {status}")
        print(format_counts(report))
        for problem in report.problems:
            print(f"  PROBLEM {problem}")
        for note in report.notes:
            print(f"  note    {note}")
        failed = failed or bool(report.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
