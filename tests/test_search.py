"""The pure scoring and fusion functions of search.py, on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from qa.search import (
    SearchParams,
    answer_types,
    bm25_idf,
    bm25_scores,
    build_bm25,
    decisiveness,
    dense_scores,
    fuse,
    held_types,
    is_navigation,
    minmax,
    ranks_of,
    rerank_bonus,
    rrf,
    tokenize,
    with_neighbours,
    word_share,
)


def test_tokenize_stems_and_drops_stop_words():
    assert tokenize("The residents of the camps, in the attacks") == ["resid", "camp", "attack"]
    assert tokenize("a 7 b") == ["7"]


def test_rrf_weights_and_constant():
    fused = rrf([(np.array([2, 0]), 1.0), (np.array([0]), 0.5)], n=3, k=1)
    # id 2: 1/(1+1); id 0: 1/(1+2) + 0.5/(1+1); id 1 in no ranking
    assert fused.tolist() == pytest.approx([1 / 3 + 0.25, 0.0, 0.5])


def test_ranks_of():
    assert ranks_of(np.array([3, 1]), 4).tolist() == [0, 2, 0, 1]


def test_minmax_over_given_ids_only():
    scores = np.array([0.2, 0.8, 0.5, 0.9])
    assert minmax(scores, np.array([1, 2, 0]), 4).tolist() == pytest.approx([0.0, 1.0, 0.5, 0.0])
    assert minmax(scores, np.array([2]), 4).tolist() == [0.0, 0.0, 1.0, 0.0]
    assert minmax(scores, np.array([], dtype=int), 4).tolist() == [0.0] * 4


def test_dense_scores_max_and_mix():
    passage = np.array([0.5, 0.3, 0.4], dtype=np.float32)
    sentence = np.array([0.4, 0.6, -1.0], dtype=np.float32)  # passage 2 has no sentence vector
    assert dense_scores(passage, sentence, SearchParams(sentence_weight=1.0)).tolist() == pytest.approx([0.5, 0.6, 0.4])
    assert dense_scores(passage, sentence, SearchParams(sentence_weight=1.1, sentence_mix=0)).tolist() == pytest.approx(
        [0.5, 0.66, 0.4]
    )
    mixed = dense_scores(passage, sentence, SearchParams(sentence_mix=0.25))
    assert mixed.tolist() == pytest.approx([0.475, 0.375, 0.4])


def test_with_neighbours_stays_inside_a_file():
    scores = np.array([1.0, 2.0, 4.0, 8.0])
    same_next = np.array([True, False, True, False])  # files: [0, 1] and [2, 3]
    assert with_neighbours(scores, same_next, 0.5).tolist() == [2.0, 2.5, 8.0, 10.0]
    assert with_neighbours(scores, same_next, 0.0) is scores


def test_fuse_convex_normalises_each_retriever_over_its_candidates():
    dense = np.array([0.9, 0.5, 0.7, 0.1])
    bm25 = np.array([0.0, 6.0, 2.0, 4.0])
    dense_order = np.array([0, 2, 1, 3])
    bm25_order = np.array([1, 3, 2])
    params = SearchParams(fusion="convex", dense_weight=1.0, bm25_weight=0.5, candidates=3)
    # dense over ids 0,2,1: (0.9, 0.7, 0.5) -> 1, 0.5, 0; id 3 not a candidate -> 0
    # bm25 over ids 1,3,2: (6, 4, 2) -> 1, 0.5, 0
    assert fuse(dense, bm25, dense_order, bm25_order, params).tolist() == pytest.approx([1.0, 0.5, 0.5, 0.25])


def test_fuse_rrf_uses_candidates():
    dense = np.zeros(3)
    params = SearchParams(fusion="rrf", rrf_k=0, candidates=1, dense_weight=1.0, bm25_weight=2.0)
    fused = fuse(dense, dense, np.array([1, 0, 2]), np.array([2, 1]), params)
    assert fused.tolist() == pytest.approx([0.0, 1.0, 2.0])


def test_fuse_rejects_unknown_method():
    with pytest.raises(ValueError, match="convex"):
        fuse(np.zeros(1), np.zeros(1), np.array([0]), np.array([0]), SearchParams(fusion="max"))


def test_decisiveness_and_decisive_fusion_weigh_bm25_by_how_clearly_it_picks():
    assert decisiveness(np.array([1.0, 1.0, 1.0]), 3) == 0.0
    assert decisiveness(np.array([3.0, 1.0, 1.0, 1.0]), 4) == pytest.approx(np.sqrt(3))
    dense = np.array([0.50, 0.48, 0.47, 0.46], dtype=np.float32)  # dense hesitates
    bm25 = np.array([1.0, 9.0, 1.0, 1.0], dtype=np.float32)  # BM25 is sure of passage 1
    order = lambda x: np.argsort(-x, kind="stable")  # noqa: E731
    params = SearchParams(fusion="decisive", decisive_top=4, bm25_weight=0.3)
    fused = fuse(dense, bm25, order(dense), order(bm25), params)
    plain = fuse(dense, bm25, order(dense), order(bm25), SearchParams(fusion="cosine", bm25_weight=0.3))
    assert fused[1] - dense[1] > plain[1] - dense[1] > 0  # BM25 counts more when it is the decisive one


def test_navigation_passages_are_tables_of_contents():
    toc = "Table of Contents 6.1. Web browsers 6.1.1. Spoofing the User-Agent 6.1.2. Browser extension 6.2. The mail system 6.2.1. Email basics"
    assert is_navigation(toc)
    prose = "See 6.1. Web browsers for details: the browser keeps its settings in a profile, and 6.2. explains mail."
    assert not is_navigation(prose)
    assert not is_navigation("Versions 3.11.2 and 3.11.4 and 3.12.0 and 3.10.1 differ in how they handle the flag " * 3)


def test_bm25_without_question_words():
    from qa.schema import Passage

    texts = ["How the garden is watered", "What the boats are", "Roses in the garden"]
    bm25 = build_bm25([Passage(text=t, source="a", section="", start_line=1, end_line=1, start_char=0, end_char=len(t)) for t in texts])
    plain = bm25_scores(bm25, "how is the garden watered")
    content = bm25_scores(bm25, "how is the garden watered", content_only=True)
    assert content[2] > 0 and content[0] > content[2]
    assert plain[0] - content[0] > 0  # "how" counted only in the plain query
    # a question of question words only falls back to them
    assert bm25_scores(bm25, "what", content_only=True)[1] > 0


def test_bm25_idf_of_question_words():
    import bm25s

    bm25 = bm25s.BM25(method="lucene")
    bm25.index([["camp", "ashraf"], ["camp"], ["iraq"]], show_progress=False)
    idf = bm25_idf(bm25, {"camp", "ashraf", "albania"})
    # N = 3; camp in 2 passages: log(1 + 1.5/2.5); ashraf in 1: log(1 + 2.5/1.5); unknown counts as in 1
    assert idf == pytest.approx({"camp": np.log(1.6), "ashraf": np.log(8 / 3), "albania": np.log(8 / 3)})


def test_word_share_weighs_question_words():
    weights = {"camp": 2.0, "ashraf": 1.0, "iraq": 1.0}
    assert word_share(weights, {"camp", "iraq", "albania"}) == pytest.approx(0.75)
    assert word_share(weights, set()) == 0.0
    assert word_share({}, {"camp"}) == 0.0


def test_answer_types_of_questions():
    assert answer_types("When did the group move to Iraq?") == {"when"}
    assert answer_types("pmoi founding year") == {"when"}
    assert answer_types("How many died because of the blockade?") == {"count"}
    assert answer_types("What share of the members are women?") == {"count"}
    assert answer_types("How many people died that year?") == {"when", "count"}
    assert answer_types("How many years did they stay?") == {"count"}
    assert answer_types("Who heads the NCRI?") == set()


def test_held_types():
    both = frozenset({"when", "count"})
    assert held_types("In 1986 the PMOI went to Iraq.", both) == {"when", "count"}
    assert held_types("They arrived in the 1980s.", frozenset({"when"})) == {"when"}
    assert held_types("It happened in August.", both) == {"when"}
    assert held_types("over the course of the past 7 years", both) == {"count"}  # no year or date
    assert held_types("Dozens have been assassinated abroad.", both) == {"count"}
    assert held_types("They went to Europe.", both) == set()
    assert held_types("In 1986 the PMOI went to Iraq.", frozenset()) == set()


def test_rerank_bonus_adds_the_weighted_features():
    params = SearchParams(rerank_passage=0.24, rerank_words=0.24, rerank_when=0.1, rerank_count=0.08)
    # 0.24 × 0.5 + 0.24 × 0.75 = 0.30, plus the weight of each answer type the sentence holds
    assert rerank_bonus(0.5, 0.75, frozenset({"when"}), params) == pytest.approx(0.40)
    assert rerank_bonus(0.5, 0.75, frozenset({"count"}), params) == pytest.approx(0.38)
    assert rerank_bonus(0.5, 0.75, frozenset({"when", "count"}), params) == pytest.approx(0.48)
    assert rerank_bonus(0.5, 0.75, frozenset(), params) == pytest.approx(0.30)


def test_rescoring_touches_only_the_top_passages(settings, fake_embedder):
    from qa.api import Retriever, build_index

    build_index(settings, embedder=fake_embedder)
    data = Retriever.load(settings.index_dir, embedder=fake_embedder).data
    question = "When are the roses watered?"
    plain = Retriever(data, fake_embedder, SearchParams(rerank_depth=0)).searcher.score(question)
    rescored = Retriever(data, fake_embedder, SearchParams(rerank_depth=2)).searcher.score(question)
    top2 = np.argsort(-plain["fused"], kind="stable")[:2]
    changed = np.flatnonzero(rescored["fused"] != plain["fused"])
    assert sorted(changed.tolist()) == sorted(top2.tolist())
    assert np.all(rescored["fused"][top2] > plain["fused"][top2])
    assert np.array_equal(rescored["dense"], plain["dense"])  # "not found" reads these, unchanged
