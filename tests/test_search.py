"""The pure scoring and fusion functions of search.py, on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from qa.search import (
    SearchParams,
    dense_scores,
    fuse,
    minmax,
    ranks_of,
    rrf,
    tokenize,
    with_neighbours,
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
