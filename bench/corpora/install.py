"""Install the Debian documentation packages and materialise each collection as a corpus folder.

    python -m bench.corpora.install [--dest DIR] [--only NAME ...] [--no-apt]

Missing packages are installed with `apt-get install -y` (needs root; without apt, install the
packages named in the message on a Debian/Ubuntu machine or container first). Each collection's
selected files are then copied, keeping their relative paths, into `DEST/<name>/` (default
bench/cache/corpora/, git-ignored): the folder to give `qa index --corpus` / `QA_CORPUS_DIR`.
Copies, not links: qa skips links that point outside the corpus folder. Idempotent: a folder
whose manifest (`.collection.json`) matches the selected files is left alone; a new one is built
beside it and swapped in, so an interrupted run never leaves a half-copied collection.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .registry import COLLECTIONS, DEFAULT_DEST, Collection, select_files

MANIFEST = ".collection.json"


class InstallError(Exception):
    """A step that cannot go on; the message says what to do."""


def missing_packages(packages: list[str]) -> list[str]:
    """The packages of `packages` that dpkg does not report as installed."""
    if shutil.which("dpkg-query") is None:
        return list(packages)
    missing = []
    for package in packages:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
        )
        if result.returncode != 0 or "install ok installed" not in result.stdout:
            missing.append(package)
    return missing


def apt_install(packages: list[str]) -> None:
    """`apt-get install -y packages` (running `apt-get update` once if the first try fails).

    Raises:
        InstallError: no apt-get, not root, or apt failed.
    """
    hint = (
        f"install them yourself (`sudo apt-get install {' '.join(packages)}` on Debian 12 / Ubuntu), "
        "then run this again with --no-apt"
    )
    if shutil.which("apt-get") is None:
        raise InstallError(f"apt-get is not available to install {', '.join(packages)}: {hint}.")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise InstallError(f"installing {', '.join(packages)} needs root: {hint}.")
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("running:", " ".join(command), flush=True)
    if subprocess.run(command, env=env, check=False).returncode == 0:
        return
    print("running: apt-get update", flush=True)
    subprocess.run(["apt-get", "update"], env=env, check=False)
    if subprocess.run(command, env=env, check=False).returncode != 0:
        raise InstallError(f"apt-get could not install {', '.join(packages)}: see its output above, or {hint}.")


def _signature(source: Path, files: list[str]) -> str:
    """A digest of the selection: relative paths, sizes and modification times of the files."""
    h = hashlib.sha256()
    for rel in files:
        st = (source / rel).stat()
        h.update(f"{rel}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()


def materialise(collection: Collection, dest: Path, source: Path | None = None) -> tuple[Path, bool]:
    """Copy the collection's files into `dest/<name>/`; returns (folder, whether it was rebuilt).

    Raises:
        InstallError: the source folder has none of the collection's files.
    """
    source = Path(source or collection.source)
    files = select_files(collection, source)
    if not files:
        raise InstallError(
            f"{collection.name}: no files in {source}/: is {collection.package} installed? "
            "Run `python -m bench.corpora.install` without --no-apt (as root)."
        )
    target = Path(dest) / collection.name
    signature = _signature(source, files)
    manifest = target / MANIFEST
    if manifest.is_file():
        try:
            if json.loads(manifest.read_text(encoding="utf-8")).get("signature") == signature:
                return target, False
        except (OSError, ValueError):
            pass  # unreadable manifest: rebuild
    tmp = target.with_name(f".{collection.name}.tmp")
    old = target.with_name(f".{collection.name}.old")
    for stale in (tmp, old):
        if stale.exists():
            shutil.rmtree(stale)
    for rel in files:
        out = tmp / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, out)
    record = {
        "name": collection.name,
        "package": collection.package,
        "source": str(collection.source),
        "files": len(files),
        "signature": signature,
    }
    (tmp / MANIFEST).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    if old.exists():
        shutil.rmtree(old)
    return target, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.corpora.install",
        description="Install the Debian doc packages of the benchmark collections and copy each "
        "collection's files into DEST/<name>/.",
    )
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="where the corpus folders go (default %(default)s)")
    parser.add_argument("--only", nargs="+", choices=sorted(COLLECTIONS), help="just these collections")
    parser.add_argument("--no-apt", action="store_true", help="do not install packages; use what is there")
    args = parser.parse_args(argv)
    chosen = [COLLECTIONS[name] for name in (args.only or COLLECTIONS)]
    try:
        missing = missing_packages([c.package for c in chosen])
        if missing and not args.no_apt:
            apt_install(missing)
        for collection in chosen:
            folder, rebuilt = materialise(collection, args.dest)
            count = len(select_files(collection))
            state = "copied" if rebuilt else "up to date"
            print(f"{collection.name:11s} {count:5d} files  {state:10s} {folder}")
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}; check that --dest is writable and the disk has room.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
