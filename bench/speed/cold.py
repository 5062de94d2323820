"""Cold start: wall time of `qa ask "Who leads the NCRI?"` in a fresh process (index built) against
`python -c "import sentence_transformers"`, alternated in one run. Target: ratio <= 0.25."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import CACHE, ROOT, summary, target, write_result

QUESTION = "Who leads the NCRI?"
SERVE = """
import sys
from qa.retriever import default_retriever
from qa.config import Settings
from qa.frontends.web import build_app
settings = Settings.from_env(corpus_dir=sys.argv[1], index_dir=sys.argv[2])
build_app(settings)
default_retriever(settings).search("Who leads the NCRI?")
assert "torch" not in sys.modules and "sentence_transformers" not in sys.modules
"""


def _wall(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {out.stderr[-2000:]}")
    return seconds, out


def run(repeats: int = 5, corpus: Path = ROOT / "corpus", work: Path = CACHE / "cold", out_dir=None) -> dict:
    index = Path(work) / "index"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    py = sys.executable
    build_s, _ = _wall([py, "-m", "qa", "index", "-q", "--corpus", str(corpus), "--index", str(index)], env)
    ask = [py, "-m", "qa", "ask", QUESTION, "--corpus", str(corpus), "--index", str(index)]
    imports, asks, serves = [], [], []
    answer = ""
    for _ in range(repeats):  # alternated, so both see the same machine state
        seconds, _ = _wall([py, "-c", "import sentence_transformers"], env)
        imports.append(seconds)
        seconds, out = _wall(ask, env)
        asks.append(seconds)
        answer = out.stdout.splitlines()[1].strip() if out.stdout else ""
        seconds, _ = _wall([py, "-c", SERVE, str(corpus), str(index)], env)
        serves.append(seconds)
    _, traced = _wall([py, "-X", "importtime", *ask[1:]], env)
    loaded = {line.split("|")[-1].strip().split(".")[0] for line in traced.stderr.splitlines() if "|" in line}
    ratio = statistics.median(asks) / statistics.median(imports)
    result = {
        "question": QUESTION,
        "answer_line": answer,
        "index_build_seconds": round(build_s, 2),
        "import_sentence_transformers": summary(imports),
        "qa_ask": summary(asks),
        "serve_app_and_first_answer": summary(serves),
        "first_run_seconds": {"import_sentence_transformers": round(imports[0], 3), "qa_ask": round(asks[0], 3)},
        "qa_ask_imports": sorted(m for m in ("torch", "sentence_transformers", "transformers", "gradio") if m in loaded),
        "targets": [target("cold start: qa ask / import sentence_transformers (medians)", ratio, 0.25)],
    }
    write_result("cold_start", result, out_dir)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(args.repeats, out_dir=args.out)
    print(f"cold start: qa ask p50 {result['qa_ask']['p50_ms']:.0f} ms, import sentence_transformers "
          f"p50 {result['import_sentence_transformers']['p50_ms']:.0f} ms, ratio {result['targets'][0]['value']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
