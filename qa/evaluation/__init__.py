"""EVAL (`qa eval`): `metrics` (pure functions) and `runners` (BEIR folders and QA .jsonl files
run through the same build and search as a user's corpus, with an embedding cache)."""

from .metrics import beir_metrics, hit_at_k, mean, ndcg_at_k, recall_at_k, reciprocal_rank
from .runners import (
    DEFAULT_CACHE,
    BeirData,
    CachedEmbedder,
    EvalIndex,
    corpus_fingerprint,
    doc_ranking,
    evaluate,
    format_report,
    index_beir,
    is_beir,
    load_beir,
    qa_retriever,
    read_qa,
    run_beir,
    run_qa,
    write_beir_corpus,
)

__all__ = [
    "DEFAULT_CACHE", "BeirData", "CachedEmbedder", "EvalIndex", "beir_metrics", "corpus_fingerprint", "doc_ranking",
    "evaluate", "format_report", "hit_at_k", "index_beir", "is_beir", "load_beir", "mean", "ndcg_at_k",
    "qa_retriever", "read_qa", "recall_at_k", "reciprocal_rank", "run_beir", "run_qa", "write_beir_corpus",
]
