"""The milvus backend (Milvus Lite) ranks as the local one with the real model on the default
corpus: the same metrics on the dev questions and our extra questions, the same passages for
each question, every citation an exact span of its file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.common import SHARED
from qa.build import build_index
from qa.evaluation import read_qa, run_qa
from qa.retriever import Retriever

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "corpus"
QUESTIONS = [SHARED / "eval" / "seed_dev.jsonl", ROOT / "bench" / "dev_extra.jsonl"]


@pytest.fixture(scope="module")
def both(default_corpus_index, real_embedder, tmp_path_factory):
    pytest.importorskip("milvus_lite")
    local = Retriever.load(default_corpus_index.index_dir, embedder=real_embedder)
    ms = replace(default_corpus_index, store="milvus", milvus_uri=str(tmp_path_factory.mktemp("milvus") / "qa.db"))
    build_index(ms, real_embedder)
    return local, Retriever.load(settings=ms, embedder=real_embedder)


@pytest.mark.parametrize("path", QUESTIONS, ids=lambda p: p.name)
def test_same_metrics_and_passages(both, path):
    if not path.exists():
        pytest.skip(f"{path} is not there")
    local, milvus = both
    rows = read_qa(path)
    a, b = run_qa(local, rows), run_qa(milvus, rows)
    for key in ("hit@1", "hit@3", "mrr", "answer_sentence", "not_found_unanswerable", "not_found_answerable"):
        assert abs(a["metrics"][key] - b["metrics"][key]) <= 0.005, key
    for row in rows:
        ha, hb = local.search(row["question"], k=5), milvus.search(row["question"], k=5)
        assert [h.citation for h in hb] == [h.citation for h in ha], row["question"]
        assert [h.score for h in hb] == pytest.approx([h.score for h in ha], abs=1e-4)
        for hit in hb:
            text = (CORPUS / hit.source).read_text(encoding="utf-8")
            assert text[hit.start_char : hit.end_char] == hit.text
