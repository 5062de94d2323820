"""Large inputs (issue 15): builds resume after an interruption from what was already embedded,
the embedding cache is shared by index folders, and a long build is announced with an estimate."""

from __future__ import annotations

import numpy as np
import pytest

import qa.build
from qa.build import build_index
from qa.retriever import Retriever
from qa.config import Settings
from qa.embedding.cache import EmbeddingCache, estimate_seconds, say_duration

from conftest import FakeEmbedder


class CachingFake(FakeEmbedder):
    """A FakeEmbedder that uses the persistent cache, and can be made to stop (like Ctrl-C)
    after `stop_after` batches."""

    persistent_cache = True
    name = "caching-fake"

    def __init__(self, stop_after: int | None = None):
        super().__init__()
        self.stop_after = stop_after

    def encode_documents(self, texts, batch_size=32, show_progress=False):
        if self.stop_after is not None and len(self.batches) >= self.stop_after:
            raise KeyboardInterrupt
        return super().encode_documents(texts, batch_size, show_progress)


@pytest.fixture
def big(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for f in range(4):
        sentences = [f"Item {f}-{i} of the ledger records {i * 7 + f} crates of apples at dock {i % 9}." for i in range(60)]
        (corpus / f"ledger{f}.txt").write_text("\n\n".join(" ".join(sentences[j : j + 5]) for j in range(0, 60, 5)))
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=CachingFake.name, cache_dir=tmp_path / "cache")


def test_an_interrupted_build_resumes_from_what_was_embedded(big, tmp_path):
    stopped = CachingFake(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        build_index(big, embedder=stopped)
    assert not (big.index_dir / "CURRENT").exists()  # nothing half-written
    first = [t for b in stopped.batches for t in b]
    assert len(first) == 2 * qa.build.ENCODE_BLOCK
    resumed = CachingFake()
    report = build_index(big, embedder=resumed)
    again = resumed.embedded
    assert not set(first) & set(again)  # nothing embedded twice
    assert len(first) + len(again) == report.embedded  # every text of the build, once
    # the same vectors as a build that was never interrupted
    plain = Settings(corpus_dir=big.corpus_dir, index_dir=tmp_path / "plain", model=CachingFake.name,
                     cache_dir=tmp_path / "other-cache")
    build_index(plain, embedder=CachingFake())
    a = Retriever.load(big.index_dir, embedder=CachingFake()).reader
    b = Retriever.load(plain.index_dir, embedder=CachingFake()).reader
    assert len(a) == len(b)
    assert np.array_equal(a.passage_vectors(None), b.passage_vectors(None))
    assert np.array_equal(a.sentence_vectors(None), b.sentence_vectors(None))


def test_the_cache_is_shared_by_index_folders(big, tmp_path):
    build_index(big, embedder=CachingFake())
    second = Settings(corpus_dir=big.corpus_dir, index_dir=tmp_path / "second", model=CachingFake.name,
                      cache_dir=big.cache_dir)
    embedder = CachingFake()
    report = build_index(second, embedder=embedder)
    assert embedder.embedded == [] and report.passages > 0
    assert [p.name for p in (big.cache_dir / "embeddings").iterdir() if p.suffix == ".sqlite"] == ["caching-fake-64.sqlite"]


def test_a_long_build_is_announced_with_its_estimate(big, monkeypatch):
    monkeypatch.setattr(qa.build, "LONG_BUILD_SECONDS", 0)
    said = []
    build_index(big, embedder=CachingFake(), say=said.append)
    assert len(said) == 1
    assert said[0].startswith("This build embeds ") and " texts: about " in said[0]
    assert "Ctrl-C stops it; the next `qa index` resumes from what was embedded." in said[0]


def test_short_builds_say_nothing(big):
    said = []
    build_index(big, embedder=CachingFake(), say=said.append)
    assert said == []


def test_cache_round_trip_and_pure_helpers(tmp_path):
    cache = EmbeddingCache(tmp_path, "m", 3)
    cache.put(["a", "b"], np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    vectors, missing = cache.get(["b", "c", "a"])
    assert missing == [1] and vectors[0].tolist() == [0, 1, 0] and vectors[2].tolist() == [1, 0, 0]
    assert EmbeddingCache(tmp_path, "other", 3).get(["a"])[1] == [0]  # keyed by model
    assert estimate_seconds(100, 2.0, 1_000_100) == pytest.approx(20_000.0)
    assert say_duration(23_400) == "6 h 30 min" and say_duration(720) == "12 min" and say_duration(45) == "45 s"


def test_full_rebuild_reuses_no_cached_vector(big):
    build_index(big, embedder=CachingFake())
    embedder = CachingFake()
    report = build_index(big, embedder=embedder, full=True)
    assert len(embedder.embedded) == report.embedded > 0  # `--full`: everything embedded again
