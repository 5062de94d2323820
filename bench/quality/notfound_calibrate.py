"""Calibrate the "not found" thresholds on the per-question features a `bench.quality` run saved
(bench/cache/last-run.json): the rule of `qa.notfound.decide` replayed for a grid of thresholds,
on the dev splits of every corpus (test splits only reported with --split test).

    python -m bench.quality.notfound_calibrate [--runs bench/cache/last-run.json ...] [--split dev] [--loco]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from qa.notfound import detail, statement

CACHE = Path(__file__).resolve().parent.parent / "cache"


def found(f: dict, t: float, tw: float, cov: float, tm: float, sm: float = 99, rel: float = 0.0, ts: float = 1.0) -> bool:
    """`qa.notfound.decide_support` on saved features (best dense score, coverage, missing words,
    specialist words, mean score of the closest passages, statement or question; `sm`:
    SPECIALIST_MIN, 99 = that exception off; `rel`: `FoundRule.related`, 0 = that test off; `ts`:
    `FoundRule.threshold_statement`, 1 = statements judged as questions)."""
    close = (f["best"] >= t or (f["best"] >= tw and f["coverage"] >= cov)) and f.get("related", 1.0) >= rel
    missing = f["missing"] and not detail(len(f["missing"]), f.get("specialist", 0), int(sm))
    if "statement" not in f and "question" in f:
        f["statement"] = statement(f["question"])
    claim = missing and f["best"] >= ts and f.get("statement", False)
    return close and not (missing and f["best"] < tm and not claim)


def rates(records: list[dict], t, tw, cov, tm, sm=99, rel=0.0, ts=1.0) -> dict:
    out = {}
    for kind in ("off-topic", "not-covered", "answerable"):
        group = [r for r in records if r["kind"] == kind and r.get("features")]
        out[kind] = (sum(not found(r["features"], t, tw, cov, tm, sm, rel, ts) for r in group), len(group))
    return out


def choice_key(per: dict, names: list[str], max_answerable: float) -> tuple:
    """What the grid is ranked by, over the splits `names`: answerable flagged at most
    `max_answerable` in each, then the most unanswerable flagged, then the fewest answerable
    flagged (ties: the first grid point)."""
    worst = max((per[n]["answerable"][0] / per[n]["answerable"][1] if per[n]["answerable"][1] else 0.0) for n in names)
    flagged = sum(per[n][k][0] for n in names for k in ("off-topic", "not-covered"))
    return worst <= max_answerable, flagged, -sum(per[n]["answerable"][0] for n in names)


def line(params, per: dict, ok: bool) -> str:
    t, tw, cov, tm, sm, rel, ts = params
    tot = {k: [sum(p[k][0] for p in per.values()), sum(p[k][1] for p in per.values())]
           for k in ("off-topic", "not-covered", "answerable")}
    cells = "; ".join(f"{n}: off {p['off-topic'][0]}/{p['off-topic'][1]}, nc {p['not-covered'][0]}/{p['not-covered'][1]}, "
                      f"ans {p['answerable'][0]}/{p['answerable'][1]}" for n, p in per.items())
    return (f"{'ok ' if ok else 'no '} T={t} Tw={tw} cov={cov} Tm={tm} S={sm:g} R={rel:g} Ts={ts:g}  "
            f"all: off {tot['off-topic'][0]}/{tot['off-topic'][1]} nc {tot['not-covered'][0]}/{tot['not-covered'][1]} "
            f"ans {tot['answerable'][0]}/{tot['answerable'][1]}  | {cells}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.quality.notfound_calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="*", default=[str(CACHE / "last-run.json")])
    ap.add_argument("--split", default="dev")
    ap.add_argument("--grid", default="0.33,0.35,0.37,0.40,0.43:0.27,0.30,0.33:0.5:0.45,0.5,0.55,0.6,0.65:2,3,4,99:0,0.30,0.32,0.34"
                                      ":1,0.55,0.5,0.45,0.4",
                    help="found_threshold values:found_threshold_words:found_coverage:found_threshold_missing"
                         ":SPECIALIST_MIN (99: off):related (0: off; runs before it saved no related score: off)"
                         ":threshold_statement (1: statements judged as questions)")
    ap.add_argument("--max-answerable", type=float, default=0.03, help="answerable wrongly flagged, at most (per corpus)")
    ap.add_argument("--loco", action="store_true",
                    help="also: for each split, the grid point chosen on the others and what it gives on the one left out")
    args = ap.parse_args(argv)
    splits = {}
    for path in args.runs:
        for name, r in json.loads(Path(path).read_text(encoding="utf-8")).items():
            if r["split"] == args.split:
                splits[name] = r["records"]
    grid = [[float(x) for x in part.split(",")] for part in args.grid.split(":")]
    grid += [[0.0]] * (6 - len(grid))  # an older five-part grid: the related test off
    grid += [[1.0]] * (7 - len(grid))  # a six-part grid: statements judged as questions
    points = [(params, {name: rates(recs, *params) for name, recs in splits.items()})
              for params in itertools.product(*grid) if params[1] <= params[0]]
    print(f"splits: {', '.join(splits)}")
    ranked = sorted(points, key=lambda p: choice_key(p[1], list(splits), args.max_answerable), reverse=True)
    for params, per in ranked[:15]:
        print(line(params, per, choice_key(per, list(splits), args.max_answerable)[0]))
    if args.loco:
        print("\nleave-one-corpus-out: chosen on the others, measured on the one left out")
        for held in splits:
            others = [n for n in splits if n != held]
            params, per = max(points, key=lambda p: choice_key(p[1], others, args.max_answerable))
            print(f"{held}: chosen {line(params, {held: per[held]}, True)[4:]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
