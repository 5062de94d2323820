"""Files, words and passages of each materialised collection, as qa loads and chunks them (no model).

    python -m bench.corpora.stats [--dest DIR] [--only NAME ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qa.chunking import chunk_document
from qa.config import ChunkSettings
from qa.documents import Unreadable, list_files, read_document

from .registry import COLLECTIONS, DEFAULT_DEST


def render(folder: Path) -> dict[str, str]:
    """The text qa reads from every file of `folder` (`read_document(path).text`), keyed by the
    corpus-relative path; unreadable files are left out, as `qa index` skips them."""
    folder = Path(folder)
    texts = {}
    for path in list_files(folder):
        rel = path.relative_to(folder).as_posix()
        try:
            texts[rel] = read_document(path, rel).text
        except Unreadable:
            continue
    return texts


def measure(folder: Path, settings: ChunkSettings = ChunkSettings()) -> dict:
    """{"files", "words", "passages"} of a corpus folder as qa loads and chunks it."""
    folder = Path(folder)
    files = words = passages = 0
    for path in list_files(folder):
        rel = path.relative_to(folder).as_posix()
        try:
            document = read_document(path, rel)
        except Unreadable:
            continue
        files += 1
        words += len(document.text.split())
        passages += len(chunk_document(document, settings))
    return {"files": files, "words": words, "passages": passages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.corpora.stats", description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="the corpus folders (default %(default)s)")
    parser.add_argument("--only", nargs="+", choices=sorted(COLLECTIONS))
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = parser.parse_args(argv)
    out = {}
    for name in args.only or COLLECTIONS:
        folder = args.dest / name
        if not folder.is_dir():
            print(f"error: {folder}/ is missing: run `python -m bench.corpora.install` first.", file=sys.stderr)
            return 1
        out[name] = measure(folder)
    if args.json:
        print(json.dumps(out))
        return 0
    print("| collection | files | words | passages |\n|---|---:|---:|---:|")
    for name, m in out.items():
        print(f"| {name} | {m['files']:,} | {m['words']:,} | {m['passages']:,} |")
    total = {key: sum(m[key] for m in out.values()) for key in ("files", "words", "passages")}
    print(f"| total | {total['files']:,} | {total['words']:,} | {total['passages']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
