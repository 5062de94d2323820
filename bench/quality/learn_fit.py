"""Fit a linear re-scoring of the first-stage candidates on features from bench/quality/learn_features.py
(listwise softmax loss, each training set weighted equally) and report every dataset.

    PYTHONPATH=. python -m bench.quality.learn_fit pcos,idfcov_s1,when_s,num_s --offset --brief   # the default's fit
    PYTHONPATH=. python -m bench.quality.learn_fit dense,bm25n --weights 1,0.3 --brief            # fixed weights, no fit

--offset adds the first stage's fused score as a feature and reports the weights divided by its
weight (so they read as what is added to the fused score). The loss is scale-free only when the
fused score's weight is not shrunk, hence no L2 on it. Training sets: SciFact train, SQuAD questions
outside test_1k over the whole SQuAD corpus and within their own article (bench/quality/learn_features.py).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from bench.common import CACHE, SHARED
from qa.evaluation import beir_metrics, load_beir

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("features")
ap.add_argument("--train", default="squad-inart-train,squad-train,scifact-train")
ap.add_argument("--l2", type=float, default=0.001)
ap.add_argument("--weights", default=None)
ap.add_argument("--brief", action="store_true")
ap.add_argument("--depth", type=int, default=30)
ap.add_argument("--offset", action="store_true", help="score = the default fused score + features @ w")
ap.add_argument("--sets", default="dev,extra,scifact-train,squad-train,squad-inart-train,scifact-test,squad-test,squad-inart-test")
args = None  # set by main()

QRELS = {}


def load(name):
    z = np.load(CACHE / f"features-{name}.npz")
    pad = z["F"][:, : args.depth] <= -1e8  # in-article sets: articles with fewer passages than the depth
    names = list(z["names"])
    cols = [names.index(f) for f in args.features.split(",")]
    X = z["X"][:, : args.depth][:, :, cols]
    docs = json.loads((CACHE / f"features-{name}-docs.json").read_text())
    if args.offset:  # the default's fused score as an extra feature (its weight scaled to 1 after the fit)
        X = np.concatenate([X, np.where(pad, 0.0, z["F"][:, : args.depth])[:, :, None]], axis=2)
    return X, z["Y"][:, : args.depth], z["G"], docs, pad


def full(w):
    return w


def loss(w, sets):
    w, scale = full(w), 1.0
    total, grad = 0.0, np.zeros_like(w)
    for X, Y, pad in sets:
        ok = Y.sum(1) > 0
        X, Y, pad = X[ok], Y[ok], pad[ok]
        s = np.where(pad, -1e9, scale * (X @ w))
        s = s - s.max(1, keepdims=True)
        e = np.exp(s)
        p = e / e.sum(1, keepdims=True)
        prel = (p * Y).sum(1)
        total += -np.log(prel + 1e-12).mean()
        # d/dw -log(sum_rel p) = sum_all p x - sum_rel (p/prel) x
        q = p * Y / prel[:, None]
        grad += scale * ((p - q)[:, :, None] * X).sum(1).mean(0)
    r = w.copy()
    if args.offset:
        r[-1] = 0.0  # the fused score's weight is the scale: not shrunk
    return total + args.l2 * (r @ r), grad + 2 * args.l2 * r


def evaluate(name, w):
    X, Y, G, docs, pad = load(name)
    s = np.where(pad, -1e9, X @ full(w))
    if name in ("dev", "extra"):
        order = np.argsort(-s, axis=1, kind="stable")
        ranks = []
        for q in range(len(Y)):
            hit = [r for r, i in enumerate(order[q][:5], 1) if Y[q, i] > 0]
            ranks.append(hit[0] if hit else None)
        h1 = np.mean([r == 1 for r in ranks])
        h3 = np.mean([r is not None and r <= 3 for r in ranks])
        miss = [f"{G[q]}:{ranks[q]}" for q in range(len(Y)) if ranks[q] != 1]
        return f"{name}: hit@1 {h1:.3f} hit@3 {h3:.3f} miss {' '.join(miss)}"
    folder, split = {"scifact-train": ("scifact", "train"), "scifact-test": ("scifact", "test"),
                     "squad-train": ("squad-v1.1-dev-passages", "test"),
                     "squad-test": ("squad-v1.1-dev-passages", "test_1k"),
        "squad-inart-train": ("squad-v1.1-dev-passages", "test"),
        "squad-inart-test": ("squad-v1.1-dev-passages", "test_1k")}[name]
    if name not in QRELS:
        QRELS[name] = load_beir(SHARED / "benchmarks" / folder, split).qrels
    qrels = QRELS[name]
    runs = {}
    for q in range(len(G)):
        cut = docs[q].index("|")
        top, rest = docs[q][:cut], docs[q][cut + 1:]
        ranked = [top[i] for i in np.argsort(-s[q], kind="stable")] + rest
        seen, out = set(), []
        for d in ranked:
            if d not in seen and d != "-":
                seen.add(d)
                out.append(d)
        runs[str(G[q])] = out[:100]
    m = beir_metrics(runs, {str(g): qrels[str(g)] for g in G})
    if args.brief:
        return f"{name}: nDCG@10 {m['ndcg@10']:.4f} hit@1 {m['hit@1']:.3f}"
    return f"{name}: nDCG@10 {m['ndcg@10']:.4f} hit@1 {m['hit@1']:.4f} MRR {m['mrr@10']:.4f} R@100 {m['recall@100']:.4f}"


def main(argv=None) -> int:
    global args
    args = ap.parse_args(argv)
    from scipy.optimize import minimize

    if args.weights:
        w = np.array([float(x) for x in args.weights.split(",")])
    else:
        sets = [(lambda t: (t[0], t[1], t[4]))(load(n)) for n in args.train.split(",")]
        d = sets[0][0].shape[2]
        res = minimize(loss, np.zeros(d), args=(sets,), jac=True, method="L-BFGS-B")
        w = res.x / (res.x[-1] if args.offset else 1.0)  # ranks do not change; the fused score gets weight 1
        print("raw scale", round(float(res.x[-1]), 2), "loss", round(float(res.fun), 4))
    if args.brief:
        out = []
        for n in args.sets.split(","):
            r = evaluate(n, w).split(" miss")[0].replace("hit@", "h").replace("nDCG@10", "n")
            out.append(" ".join(x for x in r.split() if not x.startswith(("MRR", "R@")) and not x[0].isdigit() or True))
        print(f"{args.features:40s} w={' '.join(f'{x:.3f}' for x in w)} | " + " | ".join(out), flush=True)
        return 0
    print("features", args.features, "weights", " ".join(f"{x:.3f}" for x in w), "train", args.train if not args.weights else "-")
    for n in args.sets.split(","):
        print("  ", evaluate(n, w), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
