"""The knobs of retrieval and their fitted defaults, each naming the bench/quality.md row that
chose it. Standard library only: `qa.config.Settings` carries a `SearchParams`.

Experiments measured worse and switched off in earlier versions (min-max "convex" fusion,
sentence mixing, neighbour and title scores, pseudo-relevance feedback) were removed with their
code; their rows stay in bench/quality.md as history.
"""

from __future__ import annotations

from dataclasses import dataclass

# bench/quality.md "Fusion": cosine fusion, BM25 weight 0.3 (dev + extra, SciFact train).
BM25_WEIGHT = 0.3
# bench/quality.md "Sentence scores": dense = max(passage cosine, best sentence cosine).
SENTENCE_WEIGHT = 1.0
# bench/quality.md "Re-scoring the top passages" (bench/quality/learn_fit.py on SciFact train + SQuAD
# questions outside test_1k): depth 10, weights below. (RERANK_COUNT, 0.08 for a "how many" question whose
# best sentence holds a number, changed no rank on any dev split of the fourth round: removed.)
RERANK_DEPTH = 10
RERANK_PASSAGE = 0.24
RERANK_WORDS = 0.24
RERANK_WHEN = 0.10
# bench/quality.md "Issue 10" experiments (debref + default corpus dev): a top passage that is a table
# of contents loses this much; overlapping passages of one place are shown as one result of at most
# MERGE_MAX passages.
RERANK_NAVIGATION = 0.2
MERGE_MAX = 3
# bench/quality.md "Fourth round: the re-scoring refitted across corpora" (bench/quality/refit.py, fitted
# leave-one-corpus-out on the dev splits of python311, postgres15, debref, sqlite, the default corpus, SciFact
# train and SQuAD): when the top passages are structured documentation (heading paths of two levels or
# more), each gets that share × (1.0 × its cosine + 0.1 × log(1 + its words)) more.
RERANK_DOC_PASSAGE = 1.0
RERANK_DOC_LENGTH = 0.1
# bench/RESULTS.md "scale": candidates per retriever on an approximate index (= HNSW efSearch).
ANN_CANDIDATES = 100
# bench/quality.md "Approximate indexes as shipped": BM25 candidates on an approximate index. With 100,
# sqlite dev lost 2 of 52 firsts against every passage scored (passages whose best sentence, not their
# whole text, matches sit below the top 100 of both retrievers); 300 gave the exact ranking back on
# sqlite and postgres15 dev (a BM25 top-k is one partial sort, the cheap side to widen).
BM25_CANDIDATES = 300


@dataclass(frozen=True)
class SearchParams:
    """How passages are scored. Defaults are the configuration chosen in bench/quality.md."""

    fusion: str = "cosine"  # "cosine" (dense + weighted BM25 / best BM25) or "rrf" (reciprocal ranks, a baseline)
    rrf_k: int = 60
    dense_weight: float = 1.0  # 0: BM25 alone (a baseline row)
    bm25_weight: float = BM25_WEIGHT  # 0: dense alone (a baseline row)
    sentence_weight: float = SENTENCE_WEIGHT  # dense = max(passage cosine, sentence_weight × best sentence cosine)
    candidates: int = 1000  # how deep each retriever's list is read before fusing
    ann_candidates: int = ANN_CANDIDATES  # approximate (large) indexes: passages the vector search proposes
    bm25_candidates: int = BM25_CANDIDATES  # approximate indexes: passages BM25 proposes (at least 3× the vector search's)
    rerank_depth: int = RERANK_DEPTH  # the top fused passages that get `rerank_bonus` (0: none)
    rerank_passage: float = RERANK_PASSAGE  # × the passage's own cosine
    rerank_words: float = RERANK_WORDS  # × IDF-weighted share of the question's words in its best sentence
    rerank_when: float = RERANK_WHEN  # when the question asks "when" and the best sentence holds a year/date
    rerank_navigation: float = RERANK_NAVIGATION  # taken off a top passage that is a table of contents
    rerank_doc_passage: float = RERANK_DOC_PASSAGE  # × its cosine × the top's share of 2-level heading paths
    rerank_doc_length: float = RERANK_DOC_LENGTH  # × log(1 + words) × the same share
    merge: bool = True  # overlapping passages of one place shown as one result (qa.search.merge)
    merge_max: int = MERGE_MAX  # passages in one merged result at most

    @classmethod
    def parse(cls, text: str) -> "SearchParams":
        """`SearchParams` from "name=value,name=value" (bench scripts' command lines; no eval).

        Raises:
            ValueError: an unknown name or a value of the wrong type.
        """
        values = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, raw = item.partition("=")
            name, raw = name.strip(), raw.strip().strip("\"'")
            if not sep or name not in cls.__dataclass_fields__:
                raise ValueError(f"unknown search parameter {name!r}: use one of {', '.join(cls.__dataclass_fields__)}")
            kind = type(getattr(cls(), name))
            if kind is bool:
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(f"search parameter {name} takes true or false, not {raw!r}")
                values[name] = raw.lower() in ("true", "1")
            else:
                values[name] = kind(raw)
        return cls(**values)
