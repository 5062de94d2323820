"""Which folders of an index directory are qa's own, so that a build never deletes anything else.

An index directory holds a state file, `qa-index.json`, that lists (oldest first) every
generation a build started there, recorded before its folder is created; every generation folder
(and its `.tmp` folder while it is written) carries a marker file, `.qa-generation`, naming it.
A build removes only folders that are both listed and marked, and only stray `.CURRENT.*`
links that point at a listed generation: a user's `gen-2025-budget/` or `.CURRENT.x` is never
touched. A build refuses a non-empty folder that is not a qa index (`claim`).

An index written before the state file existed (a `CURRENT` link to a generation holding a
`manifest.json`) is recognised and upgraded: its generations, named as qa named them and holding
only qa's files, are listed and marked (`adopt`).

Every function that writes runs under the build lock (`generations.build_lock`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

from ...errors import IndexUnwritable, NotAnIndex

log = logging.getLogger(__name__)

STATE = "qa-index.json"
MARKER = ".qa-generation"
CURRENT = "CURRENT"
TMP_SUFFIX = ".tmp"
# Entries that may be in a folder qa builds into without it being an index yet: its own lock and
# cache, and the README that the repository's index/ folder ships with.
HARMLESS = frozenset({".lock", ".cache", "README.md", ".gitkeep", ".gitignore"})
# What qa before the state file named its generations, and the only files it put in them.
LEGACY_NAME = re.compile(r"gen-\d{8}T\d{6}-\d+-\d+(\.tmp)?")
LEGACY_FILES = frozenset({"manifest.json", "passages.sqlite", "passages.sqlite-journal", "passages.faiss",
                          "passages.npy", "sentences.npy", "bm25"})


def read_state(index_dir: Path) -> list[str] | None:
    """The generations listed in the state file, oldest first; None when there is none (or it
    is not ours: then the folder is treated as not yet upgraded)."""
    try:
        state = json.loads((Path(index_dir) / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    names = state.get("generations") if isinstance(state, dict) and state.get("qa_index") == 1 else None
    if not isinstance(names, list):
        return None
    return [n for n in names if isinstance(n, str) and _plain_name(n)]


def _plain_name(name: str) -> bool:
    """A folder name directly inside the index directory (no separator, not . or ..)."""
    return bool(name) and "/" not in name and "\x00" not in name and name not in (".", "..")


def write_state(index_dir: Path, names: list[str]) -> None:
    """Write the state file atomically (temporary file, fsync, rename)."""
    index_dir = Path(index_dir)
    tmp = index_dir / f".{STATE}.{os.getpid()}"
    data = json.dumps({"qa_index": 1, "generations": names}, indent=1).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, index_dir / STATE)


def mark(folder: Path, name: str) -> None:
    """Write the marker that says `folder` is qa's generation `name`."""
    (Path(folder) / MARKER).write_text(json.dumps({"qa_generation": name}), encoding="utf-8")


def is_marked(folder: Path, name: str) -> bool:
    """Whether `folder` (not a symlink) holds the marker of generation `name`."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8")).get("qa_generation") == name
    except (OSError, ValueError, AttributeError):
        return False


def generation_id(index_dir: Path) -> str | None:
    """The name of the live generation (changes with every build), read without opening a file."""
    try:
        return os.readlink(Path(index_dir) / CURRENT)
    except OSError:
        return None


def _is_legacy_index(index_dir: Path) -> bool:
    """A qa index written before the state file: CURRENT links to a generation with a manifest."""
    live = generation_id(index_dir)
    return bool(live) and _plain_name(live) and (Path(index_dir) / live / "manifest.json").is_file()


def claim(index_dir: Path) -> None:
    """Check, before a build, that it may write into `index_dir`: missing, empty (but for
    `HARMLESS` entries), or a qa index.

    Raises:
        NotAnIndex: a non-empty folder that is not a qa index (nothing in it is touched).
        IndexUnwritable: the folder is read-only.
    """
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        return  # created by the build (or refused by it, if a file is in the way)
    if read_state(index_dir) is None and not _is_legacy_index(index_dir):
        others = sorted(p.name for p in index_dir.iterdir() if p.name not in HARMLESS)
        if others:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            raise NotAnIndex(
                f"{index_dir}/ is not a qa index and is not empty ({shown}): qa builds only into an "
                "empty folder or one of its own indexes, so that it never deletes your files. "
                "Pass --index (QA_INDEX_DIR) a new or empty folder."
            )
    if not os.access(index_dir, os.W_OK):
        raise IndexUnwritable(
            f"Cannot write the index in {index_dir}/ (read-only). Point --index (QA_INDEX_DIR) at a writable folder."
        )


def adopt(index_dir: Path) -> list[str]:
    """List and mark the generations of an index written before the state file (the live one,
    and others named as qa named them that hold only qa's files); returns the list written."""
    index_dir = Path(index_dir)
    live = generation_id(index_dir)
    found = []
    for path in index_dir.iterdir():
        if path.is_symlink() or not path.is_dir() or not LEGACY_NAME.fullmatch(path.name):
            continue
        if path.name != live and not {p.name for p in path.iterdir()} <= LEGACY_FILES:
            continue
        name = path.name.removesuffix(TMP_SUFFIX)
        try:
            mark(path, name)
        except OSError as exc:
            log.warning("cannot mark %s as a qa generation (%s); it is left alone", path, exc)
            continue
        found.append((path.stat().st_mtime_ns, name))
    names = list(dict.fromkeys(name for _, name in sorted(found)))
    if live in names:  # the live one last: it is never pruned before a newer one exists
        names = [n for n in names if n != live] + [live]
    write_state(index_dir, names)
    return names


def begin(index_dir: Path, name: str) -> None:
    """Record generation `name` as qa's before its folder (`name` + ".tmp") is created."""
    names = read_state(index_dir)
    if names is None:
        names = adopt(index_dir)
    write_state(index_dir, [n for n in names if n != name] + [name])


def prune(index_dir: Path, keep: set[str], keep_previous: int = 1) -> None:
    """Remove qa's orphaned temporary folders, all but the `keep_previous` newest finished
    generations besides `keep` (a reader may still use the previous one), and stray
    `.CURRENT.*` links to qa's generations. Only listed, marked folders are removed."""
    index_dir = Path(index_dir)
    names = read_state(index_dir)
    if names is None:
        return
    live = generation_id(index_dir)
    listed = set(names)
    for stray in index_dir.glob(f".{CURRENT}.*"):  # a link left by a build killed mid-swap
        if stray.is_symlink() and os.readlink(stray) in listed:
            stray.unlink(missing_ok=True)
    finished = [n for n in names if n not in keep and n != live and is_marked(index_dir / n, n)]
    doomed = finished[: max(0, len(finished) - keep_previous)]
    remaining = []
    for name in names:
        tmp = index_dir / (name + TMP_SUFFIX)
        if name not in keep and is_marked(tmp, name):
            shutil.rmtree(tmp, ignore_errors=True)
        elif name not in keep and tmp.is_dir() and not tmp.is_symlink():
            try:
                tmp.rmdir()  # created by a build killed before it wrote the marker: empty
            except OSError:
                pass
        if name in doomed:
            shutil.rmtree(index_dir / name, ignore_errors=True)
        if (index_dir / name).exists() or (index_dir / (name + TMP_SUFFIX)).exists() or name in keep:
            remaining.append(name)
    if remaining != names:
        write_state(index_dir, remaining)
