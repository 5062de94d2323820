"""Load and bad-input benchmarks of the `qa serve` endpoints: Gradio's `ask` and the REST API's
`POST /api/v1/search`.

    python bench/speed/load.py                 # 50 clients x 20 questions, each endpoint -> bench/results/load.json
    python bench/speed/load.py --fuzz 1000 --endpoint gradio   # 1,000 generated bad inputs -> bench/results/fuzz.json
    python bench/speed/load.py --endpoint rest # one endpoint only (gradio, rest or both)

The server runs in its own process (`qa.frontends.server.serve`, as `qa serve` runs it: the real
model, the default corpus indexed into a temporary folder), on a free 127.0.0.1 port; clients speak
plain HTTP: to Gradio's /gradio_api/call/ask (POST, then the event stream) and to /api/v1/search
(one POST). The endpoints are measured one after the other against the same server in one run.
Every reply is compared with a direct `Retriever.ask` in this process: the same dict, or the same
error message. The run is bounded (per-request and overall time limits) and stops the server itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
SEED_DEV = ROOT.parent / "shared" / "eval" / "seed_dev.jsonl"
EXTRA_QUESTIONS = [
    "Who leads the NCRI?",
    "When was the PMOI founded?",
    "What does the NCRI platform include?",
    "What happened at Camp Ashraf?",
    "What is the boiling point of mercury?",
]


def fuzz_cases(n: int, seed: int = 6):
    """`n` (question, k) pairs of bad or odd input: empty, whitespace, 100 KB, control
    characters, mixed scripts, emoji, markup, and k valid or not (-1, 0, 101, 10**9, ...)."""
    rng = random.Random(seed)
    alphabet = (
        "abcdefghijklmnopqrstuvwxyz ABC roses garden boats NCRI PMOI "  # latin + corpus words
        "\x00\x01\x07\x1b\x7f\u200b\u202e\ufeff"  # control and invisible characters
        "Ωλφ Жук 中文字 日本語 한국어 עברית العربية हिन्दी "  # mixed scripts
        "😀🚣‍♀️🌹👍🏽 "  # emoji, ZWJ sequences, skin tones
        "<>&\"'`*_[]()#!|~$\\"  # markup characters
    )
    specials = [
        "",
        " ",
        "\t\n\r \u00a0\u2003",
        "roses " * 17000,  # about 100 KB
        "<script>alert(1)</script>",
        "[x](javascript:alert(1))",
        "\x00",
        "😀" * 500,
    ]
    ks = [1, 3, 5, 20, 100, -1, 0, 101, 10**9, -(10**9)]
    for i in range(n):
        if i < len(specials):
            question = specials[i]
        elif i % 50 == 0:
            question = rng.choice(specials[:3]) * rng.randint(1, 50)  # more blank variants
        else:
            question = "".join(rng.choice(alphabet) for _ in range(rng.choice([1, 3, 10, 40, 200])))
        yield question, rng.choice(ks)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call_ask(http, base: str, question, k, timeout: float = 120.0) -> tuple[str, object, float]:
    """One call of the `ask` endpoint: ("answer", dict, seconds) or ("error", message, seconds).
    A dropped request (HTTP error, no final event) is ("dropped", detail, seconds)."""
    started = time.perf_counter()
    try:
        r = http.post(f"{base}/gradio_api/call/ask", json={"data": [question, k]}, timeout=timeout)
        if r.status_code == 413:  # a body over qa.config.MAX_BODY_BYTES: a clear error, not a drop
            return "error", r.json().get("detail"), time.perf_counter() - started
        if r.status_code != 200:
            return "dropped", f"HTTP {r.status_code}: {r.text[:200]}", time.perf_counter() - started
        event_id = r.json()["event_id"]
        event = None
        with http.stream("GET", f"{base}/gradio_api/call/ask/{event_id}", timeout=timeout) as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    data = json.loads(line.split(":", 1)[1])
                    seconds = time.perf_counter() - started
                    if event == "complete":
                        return "answer", data[0], seconds
                    return "error", (data or {}).get("error"), seconds
    except Exception as exc:  # a benchmark records every failure instead of stopping
        return "dropped", f"{type(exc).__name__}: {exc}", time.perf_counter() - started
    return "dropped", f"stream ended after event {event!r}", time.perf_counter() - started


TOO_LARGE = "The request body is"


def call_rest(http, base: str, question, k, timeout: float = 120.0) -> tuple[str, object, float]:
    """One POST /api/v1/search: ("answer", dict, seconds), ("error", message, seconds) for a 400,
    or ("dropped", detail, seconds) for anything else."""
    started = time.perf_counter()
    try:
        r = http.post(f"{base}/api/v1/search", json={"question": question, "k": k}, timeout=timeout)
        seconds = time.perf_counter() - started
        if r.status_code == 200:
            return "answer", r.json(), seconds
        if r.status_code == 400:
            return "error", r.json()["detail"], seconds
        if r.status_code == 413:  # a body over qa.config.MAX_BODY_BYTES: a clear error, not a drop
            return "error", r.json().get("error") or r.json().get("detail"), seconds
        return "dropped", f"HTTP {r.status_code}: {r.text[:200]}", seconds
    except Exception as exc:  # a benchmark records every failure instead of stopping
        return "dropped", f"{type(exc).__name__}: {exc}", time.perf_counter() - started


CALLS = {"gradio": call_ask, "rest": call_rest}


def expected(retriever, question, k) -> tuple[str, object]:
    """What the endpoint must reply, from a direct Retriever.ask (a body over the cap: HTTP 413,
    whose message starts "The request body is")."""
    from qa.config import MAX_BODY_BYTES
    from qa.errors import QAError
    from qa.retriever import check_k, check_question

    if len(json.dumps({"data": [question, k]}).encode()) > MAX_BODY_BYTES:
        return "error", TOO_LARGE
    try:
        return "answer", retriever.ask(check_question(question), check_k(k)).to_dict()
    except QAError as exc:
        return "error", str(exc)


# --- the server process ----------------------------------------------------------------------


def run_server(args) -> None:
    """`load.py serve ...`: the web app on 127.0.0.1, as `qa serve` runs it."""
    from qa.frontends import server, web
    from qa.config import Settings

    if args.concurrency:
        web.CONCURRENCY = args.concurrency
    settings = Settings(corpus_dir=Path(args.corpus), index_dir=Path(args.index))
    server.serve(settings, host="127.0.0.1", port=args.port, say=lambda m: print(m, flush=True))


class Server:
    """The server subprocess: started, waited for, always stopped."""

    def __init__(self, corpus: Path, index: Path, concurrency: int | None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, __file__, "serve", "--corpus", str(corpus), "--index", str(index), "--port", str(self.port)]
        if concurrency:
            cmd += ["--concurrency", str(concurrency)]
        env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            self.log.append(line.rstrip())

    def wait_ready(self, http, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("server exited:\n" + "\n".join(self.log[-30:]))
            try:
                if http.get(f"{self.base}/gradio_api/info", timeout=5).status_code == 200:
                    return
            except Exception:
                pass
            time.sleep(0.5)
        raise SystemExit("server did not start in time:\n" + "\n".join(self.log[-30:]))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# --- the two benchmarks ----------------------------------------------------------------------


def questions() -> list[str]:
    qs = [json.loads(line)["question"] for line in SEED_DEV.read_text().splitlines() if line.strip()] if SEED_DEV.exists() else []
    return qs + EXTRA_QUESTIONS


def run_load(args, retriever, server, http, endpoint: str = "gradio") -> dict:
    call = CALLS[endpoint]
    pool = questions()
    work = [
        [(pool[(c * 7 + i) % len(pool)], (3, 5, 10)[(c + i) % 3]) for i in range(args.questions)]
        for c in range(args.clients)
    ]
    truth = {case: expected(retriever, *case) for case in {case for client in work for case in client}}
    results: list[tuple[str, bool, float]] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + args.time_limit

    def client(cases):
        import httpx

        with httpx.Client() as c:
            for question, k in cases:
                if time.monotonic() > stop_at:
                    with lock:
                        results.append(("dropped", False, 0.0))
                    continue
                kind, value, seconds = call(c, server.base, question, k)
                ok = (kind, value) == truth[(question, k)]
                with lock:
                    results.append((kind, ok, seconds))

    load_before = [round(x, 2) for x in os.getloadavg()]  # other work on the machine, for the reader
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.clients) as ex:
        list(ex.map(client, work))
    wall = time.perf_counter() - started
    latencies = sorted(s for kind, ok, s in results if kind != "dropped")
    total = args.clients * args.questions

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 4) if latencies else None

    return {
        "endpoint": {"gradio": "POST /gradio_api/call/ask + event stream", "rest": "POST /api/v1/search"}[endpoint],
        "clients": args.clients,
        "questions_per_client": args.questions,
        "requests": total,
        "replies": len(results),
        "correct": sum(ok for _, ok, _ in results),
        "wrong": sum(1 for kind, ok, _ in results if kind != "dropped" and not ok),
        "dropped": sum(1 for kind, _, _ in results if kind == "dropped"),
        "errors": sum(1 for kind, _, _ in results if kind == "error"),
        "wall_seconds": round(wall, 3),
        "throughput_per_second": round(len(latencies) / wall, 3),
        "latency_seconds": {
            "p50": pct(0.50),
            "p95": pct(0.95),
            "max": round(latencies[-1], 4) if latencies else None,
            "mean": round(statistics.mean(latencies), 4) if latencies else None,
        },
        "server_alive_after": server.alive(),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def run_fuzz(args, retriever, server, http, endpoint: str = "gradio") -> dict:
    call = CALLS[endpoint]
    counts = {"answer": 0, "error": 0, "wrong": 0, "dropped": 0}
    wrong_examples = []
    errors: dict[str, int] = {}
    deadline = time.monotonic() + args.time_limit
    for question, k in fuzz_cases(args.fuzz):
        if time.monotonic() > deadline:
            counts["dropped"] += 1
            continue
        kind, value, _ = call(http, server.base, question, k)
        want = expected(retriever, question, k)
        if kind == "dropped":
            counts["dropped"] += 1
            wrong_examples.append({"question": question[:60], "k": k, "got": str(value)[:200]})
        elif want[1] is TOO_LARGE and kind == "error" and str(value).startswith(TOO_LARGE):
            counts["error"] += 1
            errors[TOO_LARGE] = errors.get(TOO_LARGE, 0) + 1
        elif (kind, value) != want:
            counts["wrong"] += 1
            wrong_examples.append({"question": question[:60], "k": k, "got": str(value)[:200], "want": str(want[1])[:200]})
        else:
            counts[kind] += 1
            if kind == "error":
                key = value.split(":")[0] if value.startswith("The question") else value.split(",")[0]
                errors[key] = errors.get(key, 0) + 1
    final = call(http, server.base, "Who leads the NCRI?", 5)
    return {
        "endpoint": endpoint,
        "cases": args.fuzz,
        "seed": 6,
        **counts,
        "error_messages": errors,
        "wrong_examples": wrong_examples[:10],
        "server_alive_after": server.alive() and final[0] == "answer",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode")
    s = sub.add_parser("serve", help="(internal) run the server process")
    s.add_argument("--corpus", required=True)
    s.add_argument("--index", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--concurrency", type=int)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--questions", type=int, default=20, help="per client")
    parser.add_argument("--fuzz", type=int, default=0, metavar="N", help="run N bad-input cases instead of the load test")
    parser.add_argument("--concurrency", type=int, help="override qa.frontends.web.CONCURRENCY in the server")
    parser.add_argument("--endpoint", choices=["gradio", "rest", "both"], default="both",
                        help="which endpoint to drive (both: Gradio's ask, then /api/v1/search, in one run)")
    parser.add_argument("--corpus", default=str(ROOT / "corpus"))
    parser.add_argument("--index", help="an index of --corpus built with the default model (default: build one)")
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds before remaining requests count as dropped")
    parser.add_argument("--out", help="results file (default bench/results/load.json or fuzz.json)")
    args = parser.parse_args(argv)
    if args.mode == "serve":
        run_server(args)
        return 0

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))  # measure this checkout's qa, as the server process does
    import httpx

    from qa.frontends import web
    from qa.build import build_index
    from qa.retriever import Retriever
    from qa.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        index = Path(args.index) if args.index else Path(tmp) / "index"
        if not args.index:
            build_index(Settings(corpus_dir=Path(args.corpus), index_dir=index))
        retriever = Retriever.load(index)
        server = Server(Path(args.corpus), index, args.concurrency)
        try:
            with httpx.Client() as http:
                server.wait_ready(http)
                endpoints = ["gradio", "rest"] if args.endpoint == "both" else [args.endpoint]
                run = run_fuzz if args.fuzz else run_load
                results = {}
                for endpoint in endpoints:
                    CALLS[endpoint](http, server.base, "warm up", 1)  # not measured
                    results[endpoint] = run(args, retriever, server, http, endpoint)
                report = {"endpoints": results}
                if not args.fuzz and len(results) == 2:
                    g, r = results["gradio"], results["rest"]
                    report["rest_vs_gradio"] = {
                        "throughput_ratio": round(r["throughput_per_second"] / g["throughput_per_second"], 3),
                        "p50_ratio": round(r["latency_seconds"]["p50"] / g["latency_seconds"]["p50"], 3),
                        "p95_ratio": round(r["latency_seconds"]["p95"] / g["latency_seconds"]["p95"], 3),
                    }
        finally:
            server.stop()
    report.update(
        {
            "command": ("python bench/speed/load.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip(),
            "server_concurrency": args.concurrency or web.CONCURRENCY,
            "queue_max_size": web.QUEUE_SIZE,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
    out = Path(args.out) if args.out else RESULTS / ("fuzz.json" if args.fuzz else "load.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    parts = report["endpoints"].values()
    bad = sum(part.get("wrong", 0) + part.get("dropped", 0) for part in parts)
    return 1 if bad or not all(part["server_alive_after"] for part in parts) else 0


if __name__ == "__main__":
    sys.exit(main())
