"""Retrieval metrics as pure functions of ranked ids and relevance judgements."""

from __future__ import annotations

import math
from typing import Iterable, Sequence


def hit_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """1.0 when any of the first `k` ranked ids is relevant, else 0.0."""
    rel = set(relevant)
    return 1.0 if any(d in rel for d in ranked[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: Iterable[str], k: int = 10) -> float:
    """1 / rank of the first relevant id within the first `k` (0.0 when none)."""
    rel = set(relevant)
    for i, d in enumerate(ranked[:k], start=1):
        if d in rel:
            return 1.0 / i
    return 0.0


def recall_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Share of the relevant ids found in the first `k` (0.0 when nothing is relevant)."""
    rel = set(relevant)
    if not rel:
        return 0.0
    return len(rel.intersection(ranked[:k])) / len(rel)


def ndcg_at_k(ranked: Sequence[str], gains: dict[str, float], k: int = 10) -> float:
    """nDCG@k with linear gains (as BEIR / trec_eval compute it): DCG = sum gain / log2(rank + 1),
    divided by the DCG of the ideal order. 0.0 when no id has a positive gain."""
    dcg = sum(gains.get(d, 0.0) / math.log2(i + 1) for i, d in enumerate(ranked[:k], start=1))
    ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def beir_metrics(runs: dict[str, list[str]], qrels: dict[str, dict[str, float]], ks=(10, 100)) -> dict:
    """nDCG@10, MRR@10 and Recall@k averaged over the queries of `qrels` (a query missing from
    `runs` counts as retrieving nothing)."""
    qids = [q for q in qrels if any(g > 0 for g in qrels[q].values())]
    out = {
        "queries": len(qids),
        "ndcg@10": mean(ndcg_at_k(runs.get(q, []), qrels[q], 10) for q in qids),
        "mrr@10": mean(reciprocal_rank(runs.get(q, []), _relevant(qrels[q]), 10) for q in qids),
        "hit@1": mean(hit_at_k(runs.get(q, []), _relevant(qrels[q]), 1) for q in qids),
    }
    for k in ks:
        out[f"recall@{k}"] = mean(recall_at_k(runs.get(q, []), _relevant(qrels[q]), k) for q in qids)
    return out


def _relevant(gains: dict[str, float]) -> set[str]:
    return {d for d, g in gains.items() if g > 0}
