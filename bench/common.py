"""Shared helpers for the benchmarks: timing, memory, machine facts, result files, SciFact corpus."""

from __future__ import annotations

import gzip
import json
import os
import platform
import resource
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / "bench" / "cache"  # git-ignored: generated corpora and indexes


def shared_dir() -> Path:
    """The shared data folder (benchmarks/, eval/): $QA_SHARED, else a `shared/` beside the
    repository or beside the folder holding it (a git worktree)."""
    if os.environ.get("QA_SHARED"):
        return Path(os.environ["QA_SHARED"])
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared").is_dir():
            return base / "shared"
    return ROOT.parent / "shared"


SHARED = shared_dir()
SCIFACT = Path(os.environ.get("QA_SCIFACT", SHARED / "benchmarks" / "scifact"))


def machine() -> dict:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def percentile(values, q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    pos = (len(values) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def summary(seconds: list[float]) -> dict:
    """p50/p95/mean in milliseconds."""
    return {
        "p50_ms": round(percentile(seconds, 0.5) * 1e3, 3),
        "p95_ms": round(percentile(seconds, 0.95) * 1e3, 3),
        "mean_ms": round(statistics.fmean(seconds) * 1e3, 3) if seconds else None,
        "n": len(seconds),
    }


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory (ru_maxrss) of this process, or of its finished children."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def target(name: str, value: float, limit: float, unit: str = "x", higher_is_better: bool = False) -> dict:
    ok = value >= limit if higher_is_better else value <= limit
    return {"name": name, "value": round(value, 4), "limit": limit, "op": ">=" if higher_is_better else "<=",
            "unit": unit, "pass": bool(ok)}


def write_result(name: str, data: dict, out_dir: Path | None = None) -> Path:
    out_dir = Path(out_dir or RESULTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **data}, indent=2) + "\n", encoding="utf-8")
    return path


def scifact_docs(limit: int | None = None):
    """(id, title, text) of SciFact corpus documents, in file order."""
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                return
            d = json.loads(line)
            yield d["_id"], d["title"], d["text"]


def scifact_queries(limit: int | None = None) -> list[str]:
    out = []
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line)["text"])
            if limit and len(out) >= limit:
                break
    return out


def write_scifact_corpus(folder: Path, limit: int | None = None) -> Path:
    """SciFact documents as Markdown files (`# title`, blank line, abstract) in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, title, text in scifact_docs(limit):
        path = folder / f"{doc_id}.md"
        body = f"# {title}\n\n{text}\n"
        if not path.exists() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")
    return folder


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
