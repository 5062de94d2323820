"""How fast `qa mcp` starts: from spawning the process to the first tool replies.

    python bench/speed/mcp_start.py [--runs 5] [--index DIR]    # -> bench/results/mcp_start.json

Each run spawns `python -m qa mcp` over the default corpus (indexed once into a temporary folder
with the bundled model, or --index) and drives it with the MCP SDK's own stdio client, timing:
the MCP handshake done, the first `list_sources` reply (no model needed) and the first `search`
reply (the model loads then). For scale, the same runs time a cold `qa ask --json` of the same
question (a fresh process answering once) and a bare `python -c pass`; medians of `--runs`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
QUESTION = "Who leads the NCRI?"


def env_for(corpus: Path, index: Path) -> dict:
    return {**os.environ, "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(index), "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(ROOT)}


async def one_mcp_run(corpus: Path, index: Path) -> dict:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=["-m", "qa", "mcp"], env=env_for(corpus, index),
                                   cwd=str(ROOT))
    started = time.perf_counter()
    async with Client(params, read_timeout_seconds=300) as client:
        handshake = time.perf_counter() - started
        listed = await client.call_tool("list_sources", {})
        first_tool = time.perf_counter() - started
        searched = await client.call_tool("search", {"question": QUESTION, "k": 5})
        first_search = time.perf_counter() - started
        again = time.perf_counter()
        await client.call_tool("search", {"question": QUESTION, "k": 5})
        warm = time.perf_counter() - again
    assert not listed.is_error and not searched.is_error, (listed.content, searched.content)
    top = searched.structured_content["passages"][0]
    assert top["section"] == "President-elect of the NCRI", top  # the right answer, not just any reply
    return {"handshake": handshake, "first_tool_reply": first_tool, "first_search_reply": first_search,
            "warm_search": warm}


def timed(cmd: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--corpus", default=str(ROOT / "corpus"))
    parser.add_argument("--index", help="an index of --corpus built with the default model (default: build one)")
    parser.add_argument("--out", default=str(RESULTS / "mcp_start.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))  # measure this checkout's qa, as the server process does
    corpus = Path(args.corpus)
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(args.index) if args.index else Path(tmp) / "index"
        if not args.index:
            from qa.api import build_index
            from qa.config import Settings

            build_index(Settings(corpus_dir=corpus, index_dir=index))
        env = env_for(corpus, index)
        timed([sys.executable, "-m", "qa", "ask", QUESTION, "--json"], env)  # the ONNX export, made once
        runs, ask, bare = [], [], []
        for _ in range(args.runs):  # interleaved, so load on the machine hits all three alike
            runs.append(asyncio.run(one_mcp_run(corpus, index)))
            ask.append(timed([sys.executable, "-m", "qa", "ask", QUESTION, "--json"], env))
            bare.append(timed([sys.executable, "-c", "pass"], env))
    median = {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}
    report = {
        "runs": args.runs,
        "median_seconds": {**median, "qa_ask_cold": round(statistics.median(ask), 3),
                           "python_bare": round(statistics.median(bare), 3)},
        "first_search_vs_qa_ask_cold": round(median["first_search_reply"] / statistics.median(ask), 3),
        "all_runs": [{k: round(v, 3) for k, v in r.items()} for r in runs],
        "command": "python bench/speed/mcp_start.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
