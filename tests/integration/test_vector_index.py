"""The passage vector index: its kind follows corpus size, approximate kinds find what exact
search finds, files load memory-mapped, and search over an approximate index returns the same
passages as exact search when the candidates cover the corpus."""

from __future__ import annotations

import numpy as np
import pytest

from qa.store.local import vectors as store
from qa.build import build_index
from qa.retriever import Retriever
from conftest import all_passages


def _clustered(n: int, dim: int = 32, clusters: int = 20, seed: int = 0) -> np.ndarray:
    """Unit vectors around `clusters` random centres (real embeddings cluster; uniform noise does not)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_index_kind_follows_corpus_size():
    assert store.index_kind(0) == store.index_kind(store.EXACT_MAX) == "flat"
    assert store.index_kind(store.EXACT_MAX + 1) == store.index_kind(store.HNSW_MAX) == "hnsw"
    assert store.index_kind(store.HNSW_MAX + 1) == store.index_kind(10**7) == "ivf-sq8"
    assert store.sentence_dtype(store.HNSW_MAX) == np.float32
    assert store.sentence_dtype(store.HNSW_MAX + 1) == np.float16


def test_ivf_lists_is_a_power_of_two_near_four_sqrt_n():
    assert store.ivf_lists(1_000_000) == 4096
    assert store.ivf_lists(250_000) == 2048
    assert store.ivf_lists(10) == 16


@pytest.mark.parametrize("kind", ["hnsw", "ivf-sq8"])
def test_approximate_kinds_recall_what_exact_search_finds(tmp_path, kind):
    vectors, queries = _clustered(4000), _clustered(50, seed=1)
    exact = store.build_vector_index(vectors, "flat")
    approx = store.build_vector_index(vectors, kind)
    assert store.vector_kind(approx) == kind and approx.ntotal == 4000
    _, truth = exact.search(queries, 10)
    path = tmp_path / "passages.faiss"
    store._faiss().write_index(approx, str(path))
    loaded = store.read_vector_index(path, kind)
    found = [store.search_vectors(loaded, q, 10)[0] for q in queries]
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.9, recall
    # Read back memory-mapped, it answers as the index it was written from.
    _, before = approx.search(queries[:5], 10)
    assert [list(f) for f in found[:5]] == before.tolist()


def test_ivf_index_is_mapped_and_starts_no_prefetch_threads(tmp_path):
    faiss = store._faiss()
    path = tmp_path / "passages.faiss"
    faiss.write_index(store.build_vector_index(_clustered(4000), "ivf-sq8"), str(path))
    index = store.read_vector_index(path, "ivf-sq8")  # held: the lists below belong to it
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
    # Memory-mapped, and read on demand: FAISS's default starts 32 threads per query.
    assert isinstance(lists, faiss.OnDiskInvertedLists) and lists.prefetch_nthread == 0


def test_flat_vectors_is_a_view_of_the_exact_index(tmp_path):
    vectors = _clustered(100)
    index = store.build_vector_index(vectors)
    assert store.vector_kind(index) == "flat"
    np.testing.assert_array_equal(store.flat_vectors(index), vectors)
    path = tmp_path / "flat.faiss"
    store._faiss().write_index(index, str(path))
    np.testing.assert_array_equal(store.flat_vectors(store.read_vector_index(path)), vectors)


def test_search_vectors_skips_passages_not_allowed():
    vectors = _clustered(3000)
    index = store.build_vector_index(vectors, "hnsw")
    allowed = np.zeros(3000, dtype=bool)
    allowed[::7] = True
    ids, scores = store.search_vectors(index, vectors[0], 20, allowed)
    assert len(ids) == 20 and allowed[ids].all() and ids[0] == 0
    exact = np.flatnonzero(allowed)[np.argsort(-(vectors[allowed] @ vectors[0]))[:20]]
    assert len(set(ids) & set(exact)) >= 18
    np.testing.assert_allclose(scores, vectors[ids] @ vectors[0], rtol=1e-5)


def _hits(retriever, question, **kw):
    return [(h.source, h.start_char, h.end_char, h.dense_rank, h.bm25_rank) for h in retriever.search(question, **kw)]


@pytest.mark.parametrize("kind, limits", [("hnsw", (0, 10**6)), ("ivf-sq8", (0, 0))])
def test_approximate_index_returns_the_exact_results_when_candidates_cover_the_corpus(
    settings, fake_embedder, monkeypatch, tmp_path, kind, limits
):
    from dataclasses import replace

    build_index(settings, embedder=fake_embedder)
    exact = Retriever.load(settings.index_dir, embedder=fake_embedder)
    assert exact.reader.vector_kind == "flat" and exact.manifest["vector_index"] == "flat"
    monkeypatch.setattr(store, "EXACT_MAX", limits[0])
    monkeypatch.setattr(store, "HNSW_MAX", limits[1])
    other = replace(settings, index_dir=tmp_path / "approx")
    build_index(other, embedder=fake_embedder)
    approx = Retriever.load(other.index_dir, embedder=fake_embedder)
    assert approx.reader.vector_kind == kind and approx.manifest["vector_index"] == kind
    assert approx.reader.sentence_vectors(np.array([0])).dtype == (np.float16 if kind == "ivf-sq8" else np.float32)
    for question in ["Guided tours start at the gate", "boats on the lake", "roses"]:
        assert _hits(approx, question, k=5) == _hits(exact, question, k=5)
        assert _hits(approx, question, k=3, sources=["sub/*"]) == _hits(exact, question, k=3, sources=["sub/*"])
    a, e = approx.ask("Guided tours start at the gate", k=2), exact.ask("Guided tours start at the gate", k=2)
    assert a.answer == e.answer and a.found == e.found and a.reason == e.reason
    # the "not found" rule counts the passages searched, not the candidates scored
    for sources in (None, ["sub/*"]):
        searched = approx.searcher.score("roses", sources=sources, k=5).searched
        assert searched == int(exact.searcher.score("roses", sources=sources, k=5).allowed.sum()) > 0
    assert [h.dense for h in a.passages] == pytest.approx([h.dense for h in e.passages], abs=2e-3)
    # Evaluation ranks documents from the score parts, which cover only the candidates here.
    from qa.evaluation import doc_ranking

    docs = {p.source: p.source for p in all_passages(exact.reader)}

    def ranking(retriever):
        parts = retriever.searcher.score("boats on the lake", sources=["sub/*"], k=5)
        return doc_ranking(retriever.searcher, parts["fused"], docs, 5, parts.get("candidates"))

    candidates = approx.searcher.score("boats on the lake", sources=["sub/*"], k=5)["candidates"]
    assert 0 < len(candidates) and candidates[0] > 0  # so rows and positions differ
    assert ranking(approx) == ranking(exact) and all(d.startswith("sub/") for d in ranking(exact))


def test_vector_file_reads_rows_and_runs_without_mapping(tmp_path):
    matrix = np.arange(40 * 3, dtype=np.float16).reshape(40, 3)
    np.save(tmp_path / "m.npy", matrix)
    vf = store.VectorFile(tmp_path / "m.npy")
    assert len(vf) == 40 and vf.dtype == np.float16 and vf.shape == (40, 3)
    np.testing.assert_array_equal(vf[7], matrix[7])
    ids = np.array([0, 1, 2, 9, 10, 39])
    np.testing.assert_array_equal(vf[ids], matrix[ids])
    np.testing.assert_array_equal(vf[np.array([5])], matrix[[5]])
    assert vf[np.array([], dtype=np.int64)].shape == (0, 3)
    with open(tmp_path / "m.npy", "r+b") as fh:
        fh.truncate(200)
    with pytest.raises(ValueError, match="truncated"):
        store.VectorFile(tmp_path / "m.npy")


def test_best_sentences_gives_each_passages_best_sentence_first_of_equals():
    from qa.schema import Passage
    from qa.search import Searcher
    from qa.store.base import IndexData
    from qa.store.memory import MemoryReader

    # 4 passages with 2, 1, 3 and 2 sentences; 2-d vectors so cosines are easy to read.
    owners = [0, 0, 1, 2, 2, 2, 3, 3]
    vectors = np.array([[0.1, 0], [0.5, 0], [0.9, 0], [0.3, 0], [0.7, 0], [0.7, 0], [0.2, 0], [0.6, 0]], np.float32)
    passages = [Passage(text="x", source="a.txt", section="", start_line=1, end_line=1, start_char=0, end_char=1)] * 4
    data = IndexData(manifest=None, passages=passages, passage_vectors=np.zeros((4, 2), np.float32),
                     sentence_spans=[(o, 0, 1) for o in owners], sentence_vectors=vectors)
    searcher = Searcher(MemoryReader(data), embedder=None)
    best, cos, ids = searcher.best_sentences(np.array([1.0, 0.0], np.float32), np.array([0, 2, 3]))
    assert best.tolist() == pytest.approx([0.5, 0.7, 0.6])
    assert ids.tolist() == [1, 4, 7]  # passage 2: sentences 4 and 5 tie; the first wins
    assert cos[4] == pytest.approx(0.7) and cos[2] == pytest.approx(0.9)  # sentence 2 read on demand
