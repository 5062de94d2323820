"""Soak: `qa serve` answering concurrent clients while `qa index --watch` re-indexes after edits.

    python -m bench.speed.soak                       # 20 clients, 10 minutes -> bench/results/soak.json
    python -m bench.speed.soak --minutes 1 --out DIR # the short version `make test` runs (tests/test_soak.py)

Real processes, the real model (its ONNX export), the default corpus plus small files that a
mutator edits, adds or deletes every few seconds (`--change-every`). Checked all along:

- failed requests: an HTTP error, a dropped stream or an error event (target: 0);
- citations: every passage and answer sentence returned must be exactly the text, at its
  offsets, of a version of its file that was on disk (the mutator records every version);
- server RSS: growth from the end of the warm-up (the first 20% of the run) to the end (< 10%);
- generations: never more than the live one and the one being built in the index folder,
  and exactly one (none temporary) once the watcher has stopped.

Processes are started and stopped by their own process ids; servers bind 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import RESULTS, ROOT, target, write_result
from bench.speed.load import call_ask, free_port, questions

TOPICS = [
    ("Orchard", "The orchard has {n} apple trees planted in rows of six. Pickers start at dawn in September."),
    ("Harbour", "The harbour holds {n} fishing boats. The ferry to the island leaves at noon on weekdays."),
    ("Library", "The library lends {n} books a week. Its reading room opens at nine and closes at eight."),
    ("Bakery", "The bakery sells {n} loaves every morning. Rye bread is baked on Tuesdays and Fridays."),
]
SOAK_QUESTIONS = [
    "How many apple trees are in the orchard?",
    "When does the ferry leave?",
    "When does the reading room open?",
    "When is rye bread baked?",
]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Versions:
    """Every content each corpus file has had, to judge a citation against."""

    def __init__(self, corpus: Path):
        self.corpus = corpus
        self.lock = threading.Lock()
        self.texts: dict[str, set[str]] = {}
        for path in corpus.rglob("*.txt"):
            self.add(path.relative_to(corpus).as_posix(), path.read_text(encoding="utf-8"))

    def add(self, source: str, text: str) -> None:
        with self.lock:
            self.texts.setdefault(source, set()).add(text)

    def exact(self, item: dict) -> bool:
        with self.lock:
            versions = list(self.texts.get(item["source"], ()))
        return any(v[item["start_char"] : item["end_char"]] == item["text"] for v in versions)


class Mutator(threading.Thread):
    """Every `every` seconds: edit, add or delete one of the soak files (never the default corpus)."""

    def __init__(self, corpus: Path, versions: Versions, every: float, stop: threading.Event, seed: int = 7):
        super().__init__(daemon=True)
        self.corpus, self.versions, self.every, self.stop = corpus, versions, every, stop
        self.rng = random.Random(seed)
        self.changes = {"edit": 0, "add": 0, "delete": 0}
        self.next_id = 0

    def _write(self, path: Path, text: str) -> None:
        self.versions.add(path.name, text)  # recorded first: a reader may see it at once
        path.write_text(text, encoding="utf-8")

    def _new(self) -> None:
        title, body = self.rng.choice(TOPICS)
        path = self.corpus / f"soak-{self.next_id:04}.txt"
        self.next_id += 1
        self._write(path, f"{title}\n\n{body.format(n=self.rng.randint(2, 900))}\n")

    def run(self) -> None:
        for _ in range(2):
            self._new()
        while not self.stop.wait(self.every):
            files = sorted(self.corpus.glob("soak-*.txt"))
            kind = self.rng.choice(["edit", "edit", "add", "delete"]) if len(files) > 1 else "add"
            if kind == "add" and len(files) < 8:
                self._new()
            elif kind == "delete":
                victim = self.rng.choice(files)
                victim.unlink()
            else:
                kind = "edit"
                path = self.rng.choice(files)
                title, body = self.rng.choice(TOPICS)
                old = path.read_text(encoding="utf-8")
                self._write(path, old + f"\n{title} again\n\n{body.format(n=self.rng.randint(2, 900))}\n")
            self.changes[kind] += 1


def _start(args, env, log_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "qa", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=open(log_path, "w"), stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 120) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(minutes: float = 10.0, clients: int = 20, change_every: float = 3.0, cache_from: Path | None = None,
        work: Path | None = None) -> dict:
    """Run the soak; returns the results dict (see the module docstring)."""
    import httpx

    work = Path(work or tempfile.mkdtemp(prefix="qa-soak-"))
    corpus, index = work / "corpus", work / "index"
    shutil.copytree(ROOT / "corpus", corpus, dirs_exist_ok=True)
    if cache_from and Path(cache_from).is_dir():  # an ONNX export made earlier: no 40 s export here
        shutil.copytree(cache_from, index / ".cache", dirs_exist_ok=True)
    env = {**os.environ, "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(index), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}
    env.pop("QA_FAULT_POINT", None)
    versions = Versions(corpus)
    stop = threading.Event()
    mutator = Mutator(corpus, versions, change_every, stop)
    mutator._new()  # the first soak file, indexed before the server starts
    subprocess.run([sys.executable, "-m", "qa", "index", "-q"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(["serve", "--port", str(port)], env, work / "serve.log")
    watcher = None
    results: dict = {}
    try:
        with httpx.Client() as http:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                if server.poll() is not None:
                    raise RuntimeError(f"qa serve exited: {(work / 'serve.log').read_text()[-2000:]}")
                try:
                    if http.get(f"{base}/gradio_api/info", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        watcher = _start(["index", "--watch", "--interval", "0.5"], env, work / "watch.log")
        mutator.start()
        counts = {"requests": 0, "failed": 0, "citations": 0, "inexact": 0}
        failures: list[str] = []
        lock = threading.Lock()
        pool = questions() + SOAK_QUESTIONS * 4
        end = time.monotonic() + minutes * 60

        def client(seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client() as http:
                while time.monotonic() < end:
                    kind, value, _ = call_ask(http, base, rng.choice(pool), rng.choice([1, 3, 5]))
                    items = []
                    if kind == "answer":
                        items = list(value.get("passages", [])) + ([value["answer"]] if value.get("answer") else [])
                    bad = [i for i in items if not versions.exact(i)]
                    with lock:
                        counts["requests"] += 1
                        counts["citations"] += len(items)
                        counts["inexact"] += len(bad)
                        if kind != "answer":
                            counts["failed"] += 1
                            failures.append(f"{kind}: {str(value)[:300]}")
                        failures.extend(f"inexact: {b['source']} {b['start_char']}-{b['end_char']}" for b in bad[:2])

        rss: list[tuple[float, float]] = []
        gens_max = {"finished": 0, "all": 0}
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        for t in threads:
            t.start()
        while time.monotonic() < end:
            value = rss_mb(server.pid)
            if value is not None:
                rss.append((time.monotonic() - started, value))
            names = [p.name for p in index.glob("gen-*")]
            gens_max["all"] = max(gens_max["all"], len(names))
            gens_max["finished"] = max(gens_max["finished"], len([n for n in names if not n.endswith(".tmp")]))
            time.sleep(1.0)
        for t in threads:
            t.join(timeout=300)
        stop.set()
        mutator.join(timeout=30)
        _stop(watcher, signal.SIGINT)  # finishes a build under way, then exits
        left = sorted(p.name for p in index.glob("gen-*"))
        warm = [v for t, v in rss if t >= 0.2 * minutes * 60][:3]
        last = [v for _, v in rss][-3:]
        growth = (statistics.fmean(last) / statistics.fmean(warm) - 1) if warm and last else float("nan")
        builds = (work / "watch.log").read_text(errors="replace").count("Indexed ")
        results = {
            "minutes": minutes,
            "clients": clients,
            "change_every_seconds": change_every,
            "changes": mutator.changes,
            "builds": builds,
            **counts,
            "failures_sample": failures[:10],
            "server_rss_mb": {"after_warmup": round(statistics.fmean(warm), 1) if warm else None,
                              "end": round(statistics.fmean(last), 1) if last else None,
                              "max": round(max(v for _, v in rss), 1) if rss else None},
            "server_rss_growth": round(growth, 4),
            "server_rss_mb_every_30s": [round(v, 1) for t, v in rss if int(t) % 30 == 0][:: 1],
            "generations_max_seen": gens_max,
            "generations_left": left,
            "server_alive_after": server.poll() is None,
            "targets": [
                target("soak: failed requests", counts["failed"], 0, unit="requests"),
                target("soak: inexact citations", counts["inexact"], 0, unit="citations"),
                target("soak: server RSS growth after warm-up", growth, 0.10, unit="ratio"),
                target("soak: generations on disk at once (live + building)", gens_max["all"], 2, unit="folders"),
            ],
        }
    finally:
        stop.set()
        if watcher is not None:
            _stop(watcher, signal.SIGINT)
        _stop(server)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--change-every", type=float, default=3.0, help="seconds between corpus changes")
    parser.add_argument("--cache-from", type=Path, help="an index's .cache/ folder to copy (skips the ONNX export)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder (soak.json)")
    args = parser.parse_args(argv)
    results = run(args.minutes, args.clients, args.change_every, args.cache_from)
    path = write_result("soak", results, args.out)
    print(json.dumps({k: v for k, v in results.items() if k != "failures_sample"}, indent=1))
    print(f"-> {path}")
    return 0 if all(t["pass"] for t in results["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
