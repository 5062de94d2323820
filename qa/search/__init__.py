"""SEARCH: `params` (the knobs and fitted defaults), `fusion` (pure scoring functions) and
`searcher` (hybrid search over a `qa.store.base.IndexReader`)."""

from .fusion import answer_types, dense_scores, fuse, held_types, match_sources, ranks_of, rerank_bonus, rrf, source_mask, word_share
from .params import SearchParams
from .searcher import Searcher, SentenceScores

__all__ = [
    "SearchParams", "Searcher", "SentenceScores", "answer_types", "dense_scores", "fuse", "held_types",
    "match_sources", "ranks_of", "rerank_bonus", "rrf", "source_mask", "word_share",
]
