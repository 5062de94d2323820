"""Retrieval quality with the real model on the default corpus: the shared dev questions and our
own extra questions (bench/dev_extra.jsonl). Thresholds sit a little below what bench/quality.md
measures, so a regression fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.common import SHARED
from qa.retriever import Retriever
from qa.evaluation import read_qa, run_qa

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
SEED_DEV = SHARED / "eval" / "seed_dev.jsonl"  # ../shared beside the clone (or its worktree folder)
EXTRA = ROOT / "bench" / "dev_extra.jsonl"


@pytest.fixture(scope="module")
def retriever(default_corpus_index, real_embedder):
    return Retriever.load(default_corpus_index.index_dir, embedder=real_embedder)


@pytest.mark.skipif(not SEED_DEV.exists(), reason="shared/eval/seed_dev.jsonl is not beside the repository")
def test_seed_dev_questions(retriever):
    result = run_qa(retriever, read_qa(SEED_DEV))
    m = result["metrics"]
    missed = [(r["id"], r["rank"]) for r in result["records"] if r["answerable"] and r["rank"] != 1]
    assert m["hit@1"] >= 0.9, missed
    assert m["hit@3"] >= 0.9, missed
    assert m["not_found_answerable"] == 0.0
    # "What is the population of Tehran?" still passes for answerable: Tehran is in the corpus and
    # its best passage is as close (cosine 0.56) as many true answers (see bench/quality.md).
    wrongly_found = [r["id"] for r in result["records"] if not r["answerable"] and r["found"]]
    assert set(wrongly_found) <= {"u01"}, wrongly_found


def test_extra_dev_questions(retriever):
    result = run_qa(retriever, read_qa(EXTRA))
    m = result["metrics"]
    missed = [(r["id"], r["rank"]) for r in result["records"] if r["answerable"] and r["rank"] != 1]
    assert m["hit@1"] >= 0.9, missed
    assert m["hit@3"] >= 0.96, missed
    # the answer (a sentence with the sentences continuing it) holds the evidence: 0.74 with one
    # sentence, 0.80 with the window (bench/quality.md "Answer-sentence choice")
    assert m["answer_sentence"] >= 0.78
    assert m["not_found_unanswerable"] >= 0.9
    assert m["not_found_answerable"] <= 0.02


def test_who_leads_the_ncri_cites_the_president_elect(retriever):
    hits = retriever.search("Who leads the NCRI?", k=3)
    first = hits[0]
    assert "The president-elect of the NCRI is Mrs. Maryam Rajavi." in first.text
    assert (first.section, first.start_line, first.end_line) == ("President-elect of the NCRI", 16, 16)


def test_when_question_prefers_the_passage_with_the_year(retriever):
    # re-scoring: the best sentence of the right passage holds a year ("In 1986 the PMOI went to Iraq")
    first = retriever.search("When did the group move to Iraq?", k=1)[0]
    assert "In 1986 the PMOI went to Iraq" in first.text
    assert (first.section, first.start_line) == ("Camp Ashraf", 35)


def test_answer_sentence_holds_the_answer(retriever):
    answer = retriever.ask("Which Albanian prime minister first agreed to host them?")
    assert answer.found
    assert "Prime Minister Sali Berisha" in answer.answer.text
    assert answer.passages[0].section == "Relocation outside Iraq"
