"""Cost of an incremental `qa index` after editing one file, against a full build.

Builds a synthetic corpus of N text files (default 1,000; seeded, about 200 words each in three
sections), then times, each as a fresh `qa index` process with the real bundled model
(all-MiniLM-L6-v2, CPU), so process start and model load are counted as a user would see them:

  1. a full build (`qa index --full`),
  2. `qa index` with nothing changed,
  3. `qa index` after editing one file (one sentence appended),
  4. `qa index` after deleting one file.

Writes bench/results/incremental.json with the seconds and the ratios edit/full and delete/full
(measured in the same run, on the same machine). Usage:

    python bench/speed/incremental.py [--files 1000] [--out bench/results/incremental.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WORDS = (
    "river mill harbour garden library tower bridge market school church field forest valley road "
    "keeper farmer teacher baker sailor miller mayor doctor painter builder council museum station "
    "stone brick timber copper iron wool grain salt oil wheat barley apple honey cloth paper glass "
    "built opened closed repaired painted moved sold bought planted founded measured recorded "
    "north south east west old new small large early late quiet busy narrow wide"
).split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
    return " ".join(words).capitalize() + f" in {rng.randint(1800, 2020)}."


def document(rng: random.Random, i: int) -> str:
    parts = [f"Report {i}\n"]
    for s in range(3):
        parts.append(f"\nPart {s + 1} of report {i}\n\n")
        parts.append(" ".join(sentence(rng) for _ in range(rng.randint(4, 6))) + "\n")
    return "".join(parts)


def run(args: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "qa", "index", "-q", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode:
        sys.exit(f"qa index failed ({proc.returncode}):\n{proc.stderr}")
    return seconds, proc.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "incremental.json"))
    args = parser.parse_args()
    rng = random.Random(4)
    with tempfile.TemporaryDirectory() as tmp:
        corpus, index = Path(tmp) / "corpus", Path(tmp) / "index"
        corpus.mkdir()
        for i in range(args.files):
            (corpus / f"doc{i:04d}.txt").write_text(document(rng, i), encoding="utf-8")
        env = {**os.environ, "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(index), "HF_HUB_OFFLINE": "1",
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        env.pop("QA_MODEL", None)
        full, full_out = run(["--full"], env)
        print(f"full build: {full:.1f} s\n{full_out}", flush=True)
        same, same_out = run([], env)
        print(f"nothing changed: {same:.1f} s\n{same_out}", flush=True)
        edited = corpus / f"doc{args.files // 2:04d}.txt"
        edited.write_text(edited.read_text(encoding="utf-8") + "The mill was repaired after the flood.\n", encoding="utf-8")
        edit, edit_out = run([], env)
        print(f"one file edited: {edit:.1f} s\n{edit_out}", flush=True)
        (corpus / "doc0001.txt").unlink()
        delete, delete_out = run([], env)
        print(f"one file deleted: {delete:.1f} s\n{delete_out}", flush=True)
    result = {
        "files": args.files,
        "model": "all-MiniLM-L6-v2 (bundled, CPU)",
        "measured_as": "wall seconds of a fresh `qa index` process each (start-up and model load included)",
        "full_seconds": round(full, 2),
        "unchanged_seconds": round(same, 2),
        "edit_one_seconds": round(edit, 2),
        "delete_one_seconds": round(delete, 2),
        "edit_over_full": round(edit / full, 4),
        "delete_over_full": round(delete / full, 4),
        "target_edit_over_full": 0.05,
        "outputs": {"full": full_out, "unchanged": same_out, "edit_one": edit_out, "delete_one": delete_out},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"edit/full = {result['edit_over_full']:.3%}, delete/full = {result['delete_over_full']:.3%} → {args.out}")


if __name__ == "__main__":
    main()
