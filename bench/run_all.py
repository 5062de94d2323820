"""`make bench`: every benchmark, each in its own process, then bench/RESULTS.md."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.common import ROOT

STEPS = [
    ["bench.speed.cold"],
    ["bench.speed.warm"],
    ["bench.speed.build"],
    ["bench.speed.scale", "run"],
    ["bench.speed.incremental"],
    ["bench.speed.report"],
]


def main() -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    failed = []
    for step in STEPS:
        print(f"== python -m {' '.join(step)}", flush=True)
        if subprocess.run([sys.executable, "-m", *step], env=env, cwd=ROOT).returncode != 0:
            failed.append(step[0])
    if failed:
        print(f"benchmarks that crashed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
