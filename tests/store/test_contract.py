"""The store contract: what every backend's `Store` and `IndexReader` must do, checked against
each backend listed in tests/store/backends.py (as txtai's ANN tests run once per backend)."""

from __future__ import annotations

import numpy as np
import pytest

from qa.errors import IndexLocked
from qa.lexical import bm25_idf, bm25_scores, tokenize
from qa.store.base import IndexReader, Store

from backends import data, make_data, milvus_server, reader, store  # noqa: F401 (fixtures)  tests/store/backends.py


def _brute_force(data, query, k, sources=None):
    scores = data.passage_vectors @ query
    rows = [i for i, p in enumerate(data.passages) if sources is None or p.source in sources]
    rows.sort(key=lambda i: (-scores[i], i))
    return rows[:k]


def test_reader_implements_the_interface(reader, data):
    assert isinstance(reader, IndexReader)
    assert len(reader) == len(data.passages)
    assert reader.manifest.passages == len(data.passages) and reader.manifest.model == "fake-embedder"
    assert isinstance(reader.generation, str) and reader.generation


def test_passages_by_id_in_the_order_asked(reader, data):
    assert reader.passages([3, 0, 7]) == [data.passages[3], data.passages[0], data.passages[7]]
    assert reader.passages([]) == []
    assert reader.passages(range(len(reader))) == data.passages


def test_sources_and_source_mask(reader, data):
    assert reader.sources() == sorted({p.source for p in data.passages})
    mask = reader.source_mask({"sub/boats.md"})
    assert mask.dtype == bool and mask.tolist() == [p.source == "sub/boats.md" for p in data.passages]
    assert not reader.source_mask(set()).any()
    assert reader.passages_of("sub/boats.md") == [p for p in data.passages if p.source == "sub/boats.md"]
    assert reader.passages_of("nope.txt") == []


def test_vector_search_finds_the_nearest_and_honours_the_source_filter(reader, data):
    for q in (0, 5, 11):
        query = data.passage_vectors[q]
        rows, cos = reader.search(query, 3)
        assert rows[0] == q and cos[0] == pytest.approx(1.0, abs=1e-5)
        assert list(cos) == sorted(cos, reverse=True)
        if reader.exact:
            assert rows.tolist() == _brute_force(data, query, 3)
        allowed = {"notes/bees.txt"}
        rows, cos = reader.search(query, 3, allowed)
        assert 0 < len(rows) <= 3 and all(data.passages[r].source in allowed for r in rows)
        expected = data.passage_vectors[rows] @ query
        np.testing.assert_allclose(cos, expected, atol=1e-5)


def test_vectors_of_rows(reader, data):
    rows = np.array([1, 4, 9])
    np.testing.assert_allclose(reader.passage_vectors(rows), data.passage_vectors[rows], atol=1e-6)
    assert reader.passage_vectors(np.array([], dtype=np.int64)).shape == (0, data.passage_vectors.shape[1])
    if reader.exact:
        np.testing.assert_allclose(reader.passage_vectors(None), data.passage_vectors, atol=1e-6)


def test_sentences_of_passages(reader, data):
    rows = np.arange(len(data.passages))
    starts, counts = reader.sentence_range(rows)
    owners = [s[0] for s in data.sentence_spans]
    for row, start, count in zip(rows, starts, counts):
        assert count == owners.count(row)
        ids = list(range(int(start), int(start + count)))
        assert reader.sentence_spans(ids) == [data.sentence_spans[j] for j in ids]
    ids = np.array([0, 2, 3])
    np.testing.assert_allclose(np.asarray(reader.sentence_vectors(ids), dtype=np.float32),
                               data.sentence_vectors[ids], atol=1e-3)
    if reader.exact:
        np.testing.assert_allclose(np.asarray(reader.sentence_vectors(None), dtype=np.float32),
                                   data.sentence_vectors, atol=1e-3)


def test_bm25_scores_and_idf(reader, data):
    tokens = tokenize("roses by the lake")
    rows = np.arange(len(data.passages))
    expected = bm25_scores(data.bm25, tokens)
    np.testing.assert_allclose(reader.bm25_scores(tokens, rows), expected, rtol=1e-6)
    np.testing.assert_allclose(reader.bm25_scores(tokens, rows[[7, 2, 7]]), expected[[7, 2, 7]], rtol=1e-6)
    if reader.exact:
        np.testing.assert_allclose(reader.bm25_scores(tokens), expected, rtol=1e-6)
    assert reader.bm25_scores(tokenize("zebra"), rows).tolist() == [0.0] * len(data.passages)
    words = {"rose", "lake", "albania"}
    assert reader.bm25_idf(words) == pytest.approx(bm25_idf(data.bm25, words))


def test_bm25_scores_of_rows_are_the_same_after_a_bm25_search(reader, data):
    """The searcher asks for the BM25 candidates and then for the scores of its candidate rows
    with the same tokens: a backend may keep what the search computed, but must give exactly the
    numbers it gives when asked alone, and nothing kept from one query's tokens for another's."""
    rows = np.array([7, 2, 7, 0, len(data.passages) - 1])
    first, second = tokenize("roses by the lake lake"), tokenize("bees and hives")
    alone = {tuple(t): reader.bm25_scores(t, rows).tolist() for t in (first, second)}
    assert alone[tuple(first)] != alone[tuple(second)]
    reader.bm25_search(first, 4)
    assert reader.bm25_scores(first, rows).tolist() == alone[tuple(first)]
    assert reader.bm25_scores(second, rows).tolist() == alone[tuple(second)]
    assert reader.bm25_scores(first[::-1], rows).tolist() == pytest.approx(alone[tuple(first)], rel=1e-6)
    reader.bm25_search(second, 4, {"garden.txt"})  # a filtered search scores the same rows alike
    assert reader.bm25_scores(second, rows).tolist() == alone[tuple(second)]
    assert reader.bm25_scores(first, rows).tolist() == alone[tuple(first)]


def test_store_lifecycle(store):
    assert isinstance(store, Store)
    assert store.manifest() is None and store.generation() is None and store.current() is None
    data = make_data()
    with store.lock():
        with pytest.raises(IndexLocked):
            with store.lock():
                pass
        store.write(data)
    first = store.generation()
    assert first and store.manifest().passages == len(data.passages)
    assert store.manifest().index_files  # the store records what it wrote
    reader = store.open()
    assert reader.generation == first and reader.passages(range(len(reader))) == data.passages
    reuse = store.reusable()
    assert reuse.passages == data.passages
    np.testing.assert_allclose(reuse.passage_vectors, data.passage_vectors, atol=1e-6)
    passages, vectors, spans, _ = reuse.of("sub/boats.md", "boats-renamed.md", row_offset=100)
    assert [p.source for p in passages] == ["boats-renamed.md"] * len(passages) and passages
    assert all(row >= 100 for row, _, _ in spans)
    smaller = make_data(n_files=2)
    with store.lock():
        store.write(smaller)
    assert store.generation() != first and len(store.open()) == len(smaller.passages)
    assert len(reader) == len(data.passages)  # an open reader keeps reading its own generation


def test_bm25_search_gives_the_best_scored_rows_and_honours_the_source_filter(reader, data):
    for text in ("roses by the lake", "bees and hives", "rain tanks gate"):
        tokens = tokenize(text)
        expected = bm25_scores(data.bm25, tokens)
        for sources in (None, {"notes/bees.txt"}, {"garden.txt", "sub/boats.md"}):
            allowed = [i for i, p in enumerate(data.passages) if sources is None or p.source in sources]
            best = sorted((i for i in allowed if expected[i] > 0), key=lambda i: (-expected[i], i))[:4]
            rows, scores = reader.bm25_search(tokens, 4, sources)
            assert rows.tolist() == best, (text, sources)
            np.testing.assert_allclose(scores, expected[best], rtol=1e-6)
    assert len(reader.bm25_search(tokenize("zebra"), 4)[0]) == 0
    assert len(reader.bm25_search(tokenize("roses"), 4, set())[0]) == 0


def test_a_generation_written_in_blocks_equals_one_written_at_once(store, tmp_path):
    data = make_data(n_files=4, per_file=5, seed=3)
    with store.lock():
        writer = store.writer(data.passage_vectors.shape[1], expected_passages=len(data.passages))
        sentence_rows = [s[0] for s in data.sentence_spans]
        for a in range(0, len(data.passages), 6):
            b = min(len(data.passages), a + 6)
            first, last = np.searchsorted(sentence_rows, a), np.searchsorted(sentence_rows, b)
            spans = [(r - a, s, e) for r, s, e in data.sentence_spans[first:last]]
            writer.add(data.passages[a:b], data.passage_vectors[a:b], spans, data.sentence_vectors[first:last])
        writer.finish(data.manifest)
    reader = store.open()
    assert reader.passages(range(len(reader))) == data.passages
    n_sentences = len(data.sentence_spans)
    assert reader.sentence_spans(range(n_sentences)) == data.sentence_spans
    starts, counts = reader.sentence_range(np.arange(len(data.passages)))
    assert counts.tolist() == [sentence_rows.count(r) for r in range(len(data.passages))]
    tokens = tokenize("roses by the lake")
    assert reader.bm25_scores(tokens, np.arange(len(data.passages))).tolist() == pytest.approx(bm25_scores(data.bm25, tokens).tolist(), rel=1e-6)
    assert reader.sources() == sorted({p.source for p in data.passages})
    assert reader.source_mask({"data.md"}).tolist() == [p.source == "data.md" for p in data.passages]
