"""The benchmark code runs, at tiny sizes (the benchmarks themselves are `make bench`, not tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.common import SCIFACT
from bench.speed import report, scale, warm
from qa.store.local import vectors as store

ROOT = Path(__file__).resolve().parents[2]
needs_scifact = pytest.mark.skipif(
    not (SCIFACT / "corpus.jsonl.gz").exists() or not (SCIFACT / "queries.jsonl").exists(),
    reason=f"needs the SciFact BEIR folder at {SCIFACT} (a shared/ folder beside the clone, or QA_SCIFACT)",
)


def test_synthetic_corpus_is_deterministic_and_its_sentences_are_exact_spans():
    a, b = scale.Synthetic(50, seed=3), scale.Synthetic(50, seed=3)
    assert a.texts(0, 50) == b.texts(0, 50)
    np.testing.assert_array_equal(a.passage_vectors(10, 20), b.passage_vectors(10, 20))
    sentences = a.texts(0, 5)
    assert [len(s) for s in sentences] == a.n_sentences[:5].tolist()
    assert all(s[-1] == "." and 8 <= len(s.split()) <= 16 for ss in sentences for s in ss)
    np.testing.assert_allclose(np.linalg.norm(a.passage_vectors(0, 50), axis=1), 1.0, rtol=1e-5)


def test_scale_build_and_query_at_a_tiny_size(tmp_path):
    built = scale.build(300, tmp_path / "index")
    assert (built["passages"], built["vector_index"]) == (300, "flat")
    measured = scale.query(tmp_path / "index", repeats=1)
    assert measured["recall_at_10"] == 1.0  # an exact index finds the exact top 10
    assert measured["vector_search"]["n"] == scale.QUERIES
    assert measured["retriever_search_without_encoding"]["n"] == scale.QUERIES
    assert 1.0 <= measured["vector_fraction_of_flat_float32"] < 1.01
    from qa.store.local.generations import load_index

    reader = load_index(tmp_path / "index")
    p = reader.passages([7])[0]
    starts, counts = reader.sentence_range([7])
    spans = reader.sentence_spans(range(int(starts[0]), int(starts[0] + counts[0])))
    assert spans and all(row == 7 and p.text[start:end].endswith(".") for row, start, end in spans)


def test_scale_ivf_tier_at_a_tiny_size(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "EXACT_MAX", 0)
    monkeypatch.setattr(store, "HNSW_MAX", 0)
    built = scale.build(2000, tmp_path / "index")
    assert built["vector_index"] == "ivf-sq8"
    measured = scale.query(tmp_path / "index", repeats=1)
    # 2,000 passages over 1,000 topics have little structure for IVF to use: a loose bound.
    assert 0.5 <= measured["recall_at_10"] <= 1.0
    assert measured["vector_fraction_of_flat_float32"] < 0.4  # 8-bit codes + ids + direct map


@needs_scifact
def test_warm_query_bench_and_report_at_a_tiny_size(tmp_path, fake_embedder):
    out = tmp_path / "results"
    result = warm.run(docs=12, queries=4, work=tmp_path / "work", out_dir=out, embedder=fake_embedder,
                      compare_exact=True)
    assert result["vector_index"] == "flat" and result["passages"] >= 12
    assert result["search"]["n"] == result["encode"]["n"] == 4
    saved = json.loads((out / "warm_query.json").read_text())
    assert saved["machine"]["cores"] >= 1 and saved["targets"][0]["limit"] == 1.5
    text = report.render(out)
    verdict = "PASS" if saved["targets"][0]["pass"] else "FAIL"
    assert f"| warm query: Retriever.search p50 / encode p50 | {report._fmt(saved['targets'][0]['value'])} | <= 1.5 | {verdict} |" in text
    assert "## warm_query" in text and "cores" in text


@pytest.mark.model
def test_cold_start_bench_at_a_tiny_size(tmp_path):
    from bench.speed import cold

    result = cold.run(repeats=1, corpus=ROOT / "corpus", work=tmp_path / "cold", out_dir=tmp_path / "results")
    assert "Maryam Rajavi" in result["answer_line"]  # the answer sentence to "Who leads the NCRI?"
    assert result["qa_ask_imports"] == []
    assert (tmp_path / "results" / "cold_start.json").exists()


@pytest.mark.model
@needs_scifact
def test_build_bench_at_a_tiny_size(tmp_path):
    from bench.speed import build

    result = build.run(docs=3, work=tmp_path / "build", out_dir=tmp_path / "results", first_build=False,
                       repeats=1)
    assert result["passages"] >= 3 and result["texts_embedded"] == result["passages"] + result["sentences"]
    assert result["qa_index"]["peak_rss_mb"] > 0 and result["bare_encode"]["seconds"] > 0


def test_milvus_bench_at_a_tiny_size(tmp_path):
    pytest.importorskip("milvus_lite")
    from bench.speed import milvus

    out = tmp_path / "milvus.json"
    assert milvus.main(["--passages", "300", "--work", str(tmp_path / "work"), "--out", str(out)]) == 0
    r = json.loads(out.read_text(encoding="utf-8"))
    assert r["benchmark"] == "milvus" and r["passages"] == 300 and set(r["backends"]) == {"local", "milvus-lite"}
    assert r["backends"]["local"]["no filter"]["recall_at_10"] == 1.0  # flat: exact
    assert r["backends"]["milvus-lite"]["vector_index"] == "milvus-hnsw"
    assert r["filter_passages"] == 10 * r["filter_sources"] > 0
    assert any(line.startswith("  | milvus-lite (`milvus-hnsw`)") for line in report._details("milvus", r))


def test_milvus_parity_bench_at_a_tiny_size(tmp_path, monkeypatch):
    """Both stores over a four-document BEIR folder and two QA questions (hashed embedder, no
    model); its temporary indexes (a Milvus Lite file included) are gone afterwards."""
    pytest.importorskip("milvus_lite")
    import tempfile

    from bench.quality import milvus_parity

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    beir = tmp_path / "tiny-beir"
    (beir / "qrels").mkdir(parents=True)
    docs = {"d1": ("Roses", "Roses are watered every morning at six. They bloom in June."),
            "d2": ("Boats", "Boats sail into the wind by tacking. The keel keeps them upright."),
            "d3": ("Bees", "Bees make honey from nectar in summer. A hive holds one queen."),
            "d4": ("Soil", "Garden soil needs compost every spring. Clay soil drains slowly.")}
    (beir / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n"
                                               for i, (t, x) in docs.items()), encoding="utf-8")
    queries = {"q1": "when are roses watered", "q2": "how do boats sail into wind", "q3": "who lives in a hive"}
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()),
                                        encoding="utf-8")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n",
                                             encoding="utf-8")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for title, text in docs.values():
        (corpus / f"{title.lower()}.txt").write_text(f"{title}\n\n{text}\n", encoding="utf-8")
    qa = tmp_path / "dev.jsonl"
    qa.write_text(json.dumps({"id": "a", "question": "when are roses watered", "evidence": "every morning at six"})
                  + "\n" + json.dumps({"id": "b", "question": "what do bees make", "evidence": "honey"}) + "\n",
                  encoding="utf-8")
    out = tmp_path / "parity.json"
    assert milvus_parity.main(["--embedder", "hashed", "--beir", str(beir), "--questions", str(qa), "--corpus",
                               str(corpus), "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    assert list(scratch.iterdir()) == []
    r = json.loads(out.read_text(encoding="utf-8"))
    assert r["benchmark"] == "milvus_parity" and r["texts_encoded"] > 0
    for kind in ("qa", "beir"):
        assert r[kind]["local"]["metrics"] == r[kind]["milvus"]["metrics"] and r[kind]["largest_difference"] == 0
        assert r[kind]["milvus"]["citations_checked"] > 0 and r[kind]["milvus"]["citations_wrong"] == 0
    assert r["qa"]["local"]["metrics"]["questions"] == 2 and r["beir"]["local"]["metrics"]["queries"] == 3
    assert [t["pass"] for t in r["targets"]] == [True, True, True]
    details = report._details("milvus_parity", r)
    assert any(line.startswith("- tiny-beir test: largest difference 0.0000") for line in details)
