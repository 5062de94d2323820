"""Quality regression on the development questions with the real model (issue 2's bar)."""

import json
from pathlib import Path

import pytest

from qa.api import Retriever

DEV = Path(__file__).resolve().parents[2] / "shared" / "eval" / "seed_dev.jsonl"


def _dev_rows():
    if not DEV.exists():
        pytest.skip(f"{DEV} not found (the shared folder sits beside the repository)")
    return [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.model
def test_dev_hit_at_3(default_corpus_index, real_embedder):
    retriever = Retriever.load(default_corpus_index.index_dir, embedder=real_embedder)
    rows = [r for r in _dev_rows() if r["evidence"]]
    misses = []
    for row in rows:
        top3 = retriever.search(row["question"], k=3)
        if not any(row["evidence"] in hit.text for hit in top3):
            misses.append(row["question"])
    assert len(misses) / len(rows) <= 0.2, misses


@pytest.mark.model
def test_who_leads_the_ncri_cites_the_president_elect(default_corpus_index, real_embedder):
    retriever = Retriever.load(default_corpus_index.index_dir, embedder=real_embedder)
    hits = retriever.search("Who leads the NCRI?", k=3)
    rajavi = [h for h in hits if "The president-elect of the NCRI is Mrs. Maryam Rajavi." in h.text]
    assert rajavi and rajavi[0].section == "President-elect of the NCRI" and rajavi[0].start_line == 16
