"""The pure scoring and fusion functions of qa.search (fusion.py), on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from qa.search import (
    SearchParams,
    answer_types,
    dense_scores,
    fuse,
    held_types,
    match_sources,
    ranks_of,
    rerank_bonus,
    rrf,
    word_share,
)
from qa.search.fusion import structured_share


def test_rrf_weights_and_constant():
    fused = rrf([(np.array([2, 0]), 1.0), (np.array([0]), 0.5)], n=3, k=1)
    # id 2: 1/(1+1); id 0: 1/(1+2) + 0.5/(1+1); id 1 in no ranking
    assert fused.tolist() == pytest.approx([1 / 3 + 0.25, 0.0, 0.5])


def test_ranks_of():
    assert ranks_of(np.array([3, 1]), 4).tolist() == [0, 2, 0, 1]


def test_dense_scores_max_of_passage_and_weighted_sentence():
    passage = np.array([0.5, 0.3, 0.4], dtype=np.float32)
    sentence = np.array([0.4, 0.6, -1.0], dtype=np.float32)  # passage 2 has no sentence vector
    assert dense_scores(passage, sentence, SearchParams(sentence_weight=1.0)).tolist() == pytest.approx([0.5, 0.6, 0.4])
    assert dense_scores(passage, sentence, SearchParams(sentence_weight=1.1)).tolist() == pytest.approx([0.5, 0.66, 0.4])


def test_fuse_cosine_adds_bm25_relative_to_the_best():
    dense = np.array([0.9, 0.5, 0.7, 0.1])
    bm25 = np.array([0.0, 6.0, 3.0, 4.0])
    params = SearchParams(fusion="cosine", bm25_weight=0.3, candidates=3)
    # dense over ids 0,2,1 as they are; id 3 not a dense candidate; bm25 over 1,3,2 divided by 6
    fused = fuse(dense, bm25, np.array([0, 2, 1, 3]), np.array([1, 3, 2]), params)
    assert fused.tolist() == pytest.approx([0.9, 0.5 + 0.3, 0.7 + 0.15, 0.2])


def test_fuse_rrf_uses_candidates():
    dense = np.zeros(3)
    params = SearchParams(fusion="rrf", rrf_k=0, candidates=1, dense_weight=1.0, bm25_weight=2.0)
    fused = fuse(dense, dense, np.array([1, 0, 2]), np.array([2, 1]), params)
    assert fused.tolist() == pytest.approx([0.0, 1.0, 2.0])


def test_fuse_rejects_unknown_method():
    with pytest.raises(ValueError, match="cosine"):
        fuse(np.zeros(1), np.zeros(1), np.array([0]), np.array([0]), SearchParams(fusion="max"))


def test_word_share_weighs_question_words():
    weights = {"camp": 2.0, "ashraf": 1.0, "iraq": 1.0}
    assert word_share(weights, {"camp", "iraq", "albania"}) == pytest.approx(0.75)
    assert word_share(weights, set()) == 0.0
    assert word_share({}, {"camp"}) == 0.0


def test_answer_types_of_questions():
    assert answer_types("When did the group move to Iraq?") == {"when"}
    assert answer_types("pmoi founding year") == {"when"}
    assert answer_types("How many people died that year?") == {"when"}
    assert answer_types("How many died because of the blockade?") == set()  # "how many": no answer type any more
    assert answer_types("Who heads the NCRI?") == set()


def test_held_types():
    when = frozenset({"when"})
    assert held_types("In 1986 the PMOI went to Iraq.", when) == {"when"}
    assert held_types("They arrived in the 1980s.", when) == {"when"}
    assert held_types("It happened in August.", when) == {"when"}
    assert held_types("over the course of the past 7 years", when) == set()  # no year or date
    assert held_types("They went to Europe.", when) == set()
    assert held_types("In 1986 the PMOI went to Iraq.", frozenset()) == set()


def test_rerank_bonus_adds_the_weighted_features():
    params = SearchParams(rerank_passage=0.24, rerank_words=0.24, rerank_when=0.1)
    # 0.24 × 0.5 + 0.24 × 0.75 = 0.30, plus rerank_when when the sentence holds the time asked for
    assert rerank_bonus(0.5, 0.75, frozenset({"when"}), params) == pytest.approx(0.40)
    assert rerank_bonus(0.5, 0.75, frozenset(), params) == pytest.approx(0.30)


def test_structured_documentation_counts_the_passage_cosine_and_length_more():
    assert structured_share(["Page › Section", "Page › Section › Note", "Page", ""]) == pytest.approx(0.5)
    assert structured_share([]) == 0.0 and structured_share(["Roses", ""]) == 0.0
    params = SearchParams(rerank_passage=0.24, rerank_words=0.24, rerank_doc_passage=1.0, rerank_doc_length=0.1)
    plain = rerank_bonus(0.5, 0.75, frozenset(), params)
    # half the top is structured: + 0.5 × (1.0 × 0.5 + 0.1 × log(1 + 99 words))
    assert rerank_bonus(0.5, 0.75, frozenset(), params, 0.5, 99) == pytest.approx(plain + 0.5 * (0.5 + 0.1 * np.log(100)))
    assert rerank_bonus(0.5, 0.75, frozenset(), params, 0.0, 99) == pytest.approx(plain)  # prose: unchanged


def test_rescoring_adds_the_structured_terms_to_the_top_passages_only(settings, fake_embedder):
    """tests/data/sub/boats.md has two-level heading paths ("Boats of the harbour › Repairs"),
    garden.txt none: the structured terms are the share of the top passages with such a path ×
    (cosine + 0.1 × log(1 + words)), added to the top `rerank_depth` passages and nowhere else."""
    from qa.build import build_index
    from qa.retriever import Retriever

    build_index(settings, embedder=fake_embedder)
    reader = Retriever.load(settings.index_dir, embedder=fake_embedder).reader
    question = "Where do the boats get their tar for repairs?"
    without = SearchParams(rerank_depth=3, rerank_doc_passage=0, rerank_doc_length=0)
    plain = Retriever(reader, fake_embedder, without).searcher.score(question)
    params = SearchParams(rerank_depth=3)
    scored = Retriever(reader, fake_embedder, params).searcher.score(question)
    top = np.argsort(-plain["fused"], kind="stable")[:3]
    passages = reader.passages(top.tolist())
    share = structured_share([p.section for p in passages])
    assert 0 < share < 1  # the top mixes boats.md's sections and the garden's
    cosine = reader.passage_vectors(top) @ plain.query
    expected = share * (params.rerank_doc_passage * cosine
                        + params.rerank_doc_length * np.log1p([len(p.text.split()) for p in passages]))
    assert scored["fused"][top] - plain["fused"][top] == pytest.approx(expected, abs=1e-6)
    rest = np.setdiff1d(np.arange(len(plain["fused"])), top)
    assert np.array_equal(scored["fused"][rest], plain["fused"][rest])


def test_rescoring_touches_only_the_top_passages(settings, fake_embedder):
    from qa.build import build_index
    from qa.retriever import Retriever

    build_index(settings, embedder=fake_embedder)
    reader = Retriever.load(settings.index_dir, embedder=fake_embedder).reader
    question = "When are the roses watered?"
    plain = Retriever(reader, fake_embedder, SearchParams(rerank_depth=0)).searcher.score(question)
    rescored = Retriever(reader, fake_embedder, SearchParams(rerank_depth=2)).searcher.score(question)
    top2 = np.argsort(-plain["fused"], kind="stable")[:2]
    changed = np.flatnonzero(rescored["fused"] != plain["fused"])
    assert sorted(changed.tolist()) == sorted(top2.tolist())
    assert np.all(rescored["fused"][top2] > plain["fused"][top2])
    assert np.array_equal(rescored["dense"], plain["dense"])  # "not found" reads these, unchanged


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_search_reads_each_passage_from_the_index_once(settings, fake_embedder, monkeypatch, kind):
    """Re-scoring reads the top passages; showing the results reuses them rather than reading
    them again."""
    from qa.build import build_index
    from qa.retriever import Retriever
    from qa.store.local import vectors

    if kind == "hnsw":  # the approximate tier at this tiny size
        monkeypatch.setattr(vectors, "EXACT_MAX", 0)
    build_index(settings, embedder=fake_embedder)
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    assert retriever.reader.vector_kind == kind
    question = "When are the roses watered?"
    expected = retriever.search(question, k=3)
    asked = []
    read = retriever.reader.passages
    monkeypatch.setattr(retriever.reader, "passages", lambda rows: asked.append(list(rows)) or read(rows))
    assert retriever.search(question, k=3) == expected
    rows = [r for call in asked for r in call]
    assert rows and len(rows) == len(set(rows))  # the top ones, then (larger corpora) the rest of the pool


def test_match_sources_exact_name_glob_or_part():
    sources = ["a.md", "data.md", "notes/b.txt"]
    assert match_sources(sources, ["a.md"]) == {"a.md"}  # an exact name does not bring data.md
    assert match_sources(sources, ["*.md"]) == {"a.md", "data.md"}
    assert match_sources(sources, ["notes"]) == {"notes/b.txt"}
    assert match_sources(sources, [" ", ""]) is None and match_sources(sources, None) is None


def test_navigation_passages_are_tables_of_contents():
    from qa.search.fusion import is_navigation

    toc = "Table of Contents 6.1. Web browsers 6.1.1. Spoofing the User-Agent 6.1.2. Browser extension 6.2. The mail system 6.2.1. Email basics"
    assert is_navigation(toc)
    prose = "See 6.1. Web browsers for details: the browser keeps its settings in a profile, and 6.2. explains mail."
    assert not is_navigation(prose)
    assert not is_navigation("Versions 3.11.2 and 3.11.4 and 3.12.0 and 3.10.1 differ in how they handle the flag " * 3)
    # the quick test of ". followed by a digit" never decides alone: exactly 4 short titles pass
    assert is_navigation("1.1 Aa 1.2 Bb 1.3 Cc 1.4 Dd") and not is_navigation("1.1 Aa 1.2 Bb 1.3 Cc 14 Dd")
    assert not is_navigation("Costs 1.5. 2.5. 3.5. 4.5 rose")  # 4 dots before digits, no title


def test_search_params_parse_booleans():
    from qa.search import SearchParams

    assert SearchParams.parse("merge=false,merge_max=2") == SearchParams(merge=False, merge_max=2)
    with pytest.raises(ValueError):
        SearchParams.parse("merge=maybe")


def test_approximate_search_asks_bm25_for_more_candidates_than_the_vector_search(settings, fake_embedder):
    from qa.build import build_index
    from qa.retriever import Retriever
    from qa.search import Searcher

    build_index(settings, embedder=fake_embedder)
    inner = Retriever.load(settings.index_dir, embedder=fake_embedder).reader

    class Approximate:
        """The built index, read as an approximate one, recording how many candidates are asked."""

        exact = False

        def __init__(self):
            self.asked = {}

        def __getattr__(self, name):
            return getattr(inner, name)

        def __len__(self):
            return len(inner)

        def search(self, query, k, sources=None):
            self.asked["vectors"] = k
            return inner.search(query, k, sources)

        def bm25_search(self, tokens, k, sources=None):
            self.asked["bm25"] = k
            return inner.bm25_search(tokens, k, sources)

    for params, asked in [(SearchParams(ann_candidates=7, bm25_candidates=10), {"vectors": 10, "bm25": 30}),
                          (SearchParams(ann_candidates=7, bm25_candidates=50), {"vectors": 10, "bm25": 50}),
                          (SearchParams(), {"vectors": 100, "bm25": 300})]:
        reader = Approximate()
        parts = Searcher(reader, fake_embedder, params).score("When are the roses watered?", k=5)
        assert reader.asked == asked
        assert len(parts["candidates"]) == len(inner)  # this corpus is smaller than either pool


def test_searches_run_numpy_blas_on_one_thread():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from qa.search.searcher import one_blas_thread

    import faiss  # noqa: F401  (its own OpenBLAS is loaded too in a real search process)
    from pathlib import Path

    def blas_threads():
        """Threads of numpy's own BLAS (a wheel's numpy.libs/)."""
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                if lib["user_api"] == "blas" and "numpy" in Path(lib["filepath"]).parent.name]

    before = blas_threads()
    if not before:
        pytest.skip("numpy is not a wheel with its own BLAS here")
    with one_blas_thread():
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before
