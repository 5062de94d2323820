"""Metrics on hand-computed cases, the BEIR and QA readers, the embedding cache, and `qa eval`
end to end on tiny datasets with the fake embedder."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qa.frontends.cli import main
from qa.errors import BadInput
from qa.evaluation import (
    CachedEmbedder,
    beir_metrics,
    evaluate,
    hit_at_k,
    load_beir,
    ndcg_at_k,
    read_qa,
    recall_at_k,
    reciprocal_rank,
)


def test_hit_at_k():
    assert hit_at_k(["a", "b", "c"], {"c"}, 3) == 1.0
    assert hit_at_k(["a", "b", "c"], {"c"}, 2) == 0.0
    assert hit_at_k([], {"c"}, 5) == 0.0


def test_reciprocal_rank_within_cutoff():
    assert reciprocal_rank(["a", "b", "c"], {"b", "c"}) == 0.5
    assert reciprocal_rank(["a", "b", "c"], {"c"}, k=2) == 0.0
    assert reciprocal_rank(["x"], set()) == 0.0


def test_recall_at_k():
    assert recall_at_k(["a", "b", "c", "d"], {"b", "d", "z"}, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "b", "c", "d"], {"b", "d", "z"}, 4) == pytest.approx(2 / 3)
    assert recall_at_k(["a"], set(), 10) == 0.0


def test_ndcg_binary_gains():
    # relevant at ranks 2 and 3: DCG = 1/log2(3) + 1/log2(4) = 0.63093 + 0.5;
    # ideal at ranks 1 and 2: IDCG = 1 + 0.63093  ->  1.13093 / 1.63093 = 0.693426
    assert ndcg_at_k(["a", "b", "c"], {"b": 1, "c": 1}) == pytest.approx(0.6934264036, abs=1e-9)
    assert ndcg_at_k(["b", "c", "a"], {"b": 1, "c": 1}) == pytest.approx(1.0)
    assert ndcg_at_k(["a", "b"], {"z": 1}) == 0.0


def test_ndcg_graded_gains_and_cutoff():
    # gains b=2, c=1; ranking a, b: DCG = 2/log2(3) = 1.26186; IDCG = 2 + 1/log2(3) = 2.63093
    assert ndcg_at_k(["a", "b"], {"b": 2, "c": 1}) == pytest.approx(0.4796249331, abs=1e-9)
    # the relevant id is at rank 3, beyond k=2
    assert ndcg_at_k(["a", "b", "c"], {"c": 1}, k=2) == 0.0


def test_beir_metrics_average_over_queries_with_qrels():
    runs = {"q1": ["d1", "d2"], "q2": ["d3", "d4"]}
    qrels = {"q1": {"d1": 1}, "q2": {"d4": 1}, "q3": {"d9": 1}}
    m = beir_metrics(runs, qrels, ks=(1, 2))
    assert m["queries"] == 3
    assert m["mrr@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@2"] == pytest.approx(2 / 3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 0) / 3)


@pytest.fixture
def beir_dir(tmp_path):
    root = tmp_path / "tiny-beir"
    (root / "qrels").mkdir(parents=True)
    docs = [
        {"_id": "d1", "title": "Tomatoes", "text": "Tomatoes need full sun and regular watering in summer."},
        {"_id": "d2", "title": "Sailing", "text": "A sloop has one mast and a mainsail with a jib."},
        {"_id": "d3", "title": "Bread", "text": "Sourdough bread rises with a starter of wild yeast."},
    ]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [{"_id": "1", "text": "how much sun do tomatoes need"}, {"_id": "2", "text": "sloop mast jib"},
               {"_id": "3", "text": "wild yeast starter"}]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\t1\n")
    (root / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n3\td3\t1\n")
    return root


def test_load_beir_reads_split(beir_dir):
    data = load_beir(beir_dir, "test")
    assert data.corpus["d2"] == {"title": "Sailing", "text": "A sloop has one mast and a mainsail with a jib."}
    assert data.qrels == {"1": {"d1": 1.0}, "2": {"d2": 1.0}}
    assert load_beir(beir_dir, "dev").qrels == {"3": {"d3": 1.0}}
    with pytest.raises(BadInput, match="qrels/train.tsv"):
        load_beir(beir_dir, "train")


def test_evaluate_beir_folder(beir_dir, fake_embedder, tmp_path):
    result = evaluate(beir_dir, split="test", embedder=fake_embedder, cache_dir=tmp_path / "cache")
    assert result["kind"] == "beir"
    assert result["metrics"]["queries"] == 2
    assert result["metrics"]["ndcg@10"] == 1.0
    assert result["metrics"]["recall@100"] == 1.0


def test_cached_embedder_computes_each_text_once(fake_embedder, tmp_path):
    cached = CachedEmbedder(fake_embedder, tmp_path)
    first = cached.encode_documents(["one text", "two text"])
    again = CachedEmbedder(fake_embedder, tmp_path).encode_documents(["two text", "one text", "three"])
    assert fake_embedder.embedded == ["one text", "two text", "three"]
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[2], fake_embedder.encode_queries(["three"])[0])


def test_evaluate_qa_file(corpus_dir, settings, fake_embedder, tmp_path):
    rows = [
        {"id": "a", "question": "When are the roses watered?", "evidence": "roses are  WATERED every morning"},
        {"id": "b", "question": "Which silver cup does the winner keep?", "evidence": "keeps a silver cup"},
        {"id": "c", "question": "zzz qqq xxx", "evidence": None},
    ]
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = evaluate(path, settings=settings, embedder=fake_embedder, cache_dir=tmp_path / "cache")
    assert result["kind"] == "qa"
    m = result["metrics"]
    assert (m["questions"], m["answerable"], m["unanswerable"]) == (3, 2, 1)
    assert [(r["id"], r["rank"]) for r in result["records"]] == [("a", 1), ("b", 1), ("c", None)]
    assert m["hit@1"] == 1.0 and m["mrr"] == 1.0
    assert result["records"][0]["top"] == "garden.txt:L7"
    assert m["not_found_unanswerable"] == 1.0


def test_qa_file_without_evidence_is_bad_input(tmp_path, settings, fake_embedder):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "x"}) + "\n")
    with pytest.raises(BadInput, match="evidence"):
        evaluate(path, settings=settings, embedder=fake_embedder, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("content, message", [
    ("# a Markdown file\n", "bad.jsonl, line 1: not JSON"),
    ('{"question": "x", "evidence": null}\n[1, 2]\n', "bad.jsonl, line 2: expected a JSON object, not list"),
    ('{"question": 7, "evidence": null}\n', "needs \"question\" \\(text\\)"),
])
def test_qa_file_that_is_not_qa_jsonl_is_bad_input(tmp_path, content, message, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadInput, match=message):
        read_qa(path)
    assert main(["eval", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"qa: {path}") and "Traceback" not in err


def test_binary_or_broken_beir_files_are_bad_input(beir_dir):
    (beir_dir / "queries.jsonl").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(BadInput, match="cannot read it as UTF-8 JSON lines"):
        load_beir(beir_dir, "test")
    (beir_dir / "queries.jsonl").write_text('{"text": "no id"}\n', encoding="utf-8")
    with pytest.raises(BadInput, match="queries.jsonl: a line has no '_id'"):
        load_beir(beir_dir, "test")


def test_cli_eval_missing_dataset(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
