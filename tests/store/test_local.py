"""The local backend's own promises beyond the contract: a streamed build whose size was not
announced still gets the vector tier and sentence precision of its final size."""

from __future__ import annotations

import numpy as np

from qa.lexical import tokenize

from backends import make_data  # tests/store/backends.py


def test_an_unannounced_streamed_build_converts_sentence_vectors_to_its_final_tier(tmp_path, monkeypatch):
    from qa.store.local import LocalStore, generations, vectors

    monkeypatch.setattr(vectors, "EXACT_MAX", 4)  # 40 passages: the IVF tier, float16 sentences
    monkeypatch.setattr(vectors, "HNSW_MAX", 8)
    data = make_data(n_files=4, per_file=10, seed=5)
    store = LocalStore(tmp_path / "index")
    sentence_rows = [s[0] for s in data.sentence_spans]
    with store.lock():
        writer = store.writer(data.passage_vectors.shape[1])  # count not announced: float32 at first
        for a in range(0, len(data.passages), 7):
            b = min(len(data.passages), a + 7)
            first, last = np.searchsorted(sentence_rows, a), np.searchsorted(sentence_rows, b)
            spans = [(r - a, s, e) for r, s, e in data.sentence_spans[first:last]]
            writer.add(data.passages[a:b], data.passage_vectors[a:b], spans, data.sentence_vectors[first:last])
        gen = writer.finish(data.manifest)
    assert sorted(p.name for p in gen.iterdir() if "convert" in p.name) == []
    stored = np.load(gen / generations.SENTENCE_VECTORS)
    assert stored.dtype == np.float16 and stored.shape == data.sentence_vectors.shape
    np.testing.assert_allclose(stored.astype(np.float32), data.sentence_vectors, atol=1e-3)
    reader = store.open()
    assert reader.vector_kind == "ivf-sq8" and len(reader) == len(data.passages)
    ids = np.arange(len(data.sentence_spans))
    np.testing.assert_allclose(reader.sentence_vectors(ids), data.sentence_vectors, atol=1e-3)
    assert reader.passages([0, 39]) == [data.passages[0], data.passages[39]]
    assert reader.bm25_search(tokenize("roses"), 3)[0].size > 0
