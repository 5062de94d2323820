"""The "found" decision, the answer sentence, and its rendering (fake embedder, tiny corpus)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qa.answer import FoundRule, found_reason, supported, word_coverage
from qa.render import render_text, to_json
from qa.build import build_index
from qa.retriever import Retriever
from qa.schema import Hit, ScoreParts


def _hit(text: str, section: str = "", dense: float = 0.5) -> Hit:
    return Hit(text=text, source="a.txt", section=section, start_line=1, end_line=1, start_char=0,
               end_char=len(text), rank=1, dense=dense)


def test_word_coverage_counts_content_words_of_the_best_passage():
    hits = [_hit("The roses are watered at six."), _hit("Copper tanks collect rain water.", section="Watering")]
    # content words of the question: rose, water, tank -> passage 1 holds rose, water; passage 2 water, tank
    assert word_coverage("What waters the roses and the tanks?", hits) == pytest.approx(2 / 3)
    assert word_coverage("Who is it?", hits) == 0.0  # no content word at all


def _parts(dense, allowed=None):
    dense = np.asarray(dense, dtype=np.float32)
    allowed = np.ones(len(dense), dtype=bool) if allowed is None else np.asarray(allowed)
    return ScoreParts(query=None, dense=dense, question_dense=dense, bm25=None, sentence=None, fused=None,
                      dense_rank=None, bm25_rank=None, allowed=allowed)


def test_supported_by_dense_threshold_or_words():
    params = FoundRule(threshold=0.5, threshold_words=0.3, coverage=0.5)
    hits = [_hit("The roses are watered at six.")]
    assert supported("When are the roses watered?", hits, _parts([0.2, 0.55]), params)
    # below the threshold, but every content word is in the top passage
    assert supported("When are the roses watered?", hits, _parts([0.35]), params)
    # below the threshold and the passage holds 1 of 3 content words
    assert not supported("When are the tulips planted watered?", hits, _parts([0.35]), params)
    # too far below for words to matter
    assert not supported("When are the roses watered?", hits, _parts([0.25]), params)


def test_found_reason_says_why_in_checkable_terms():
    params = FoundRule(threshold=0.5, threshold_words=0.3, coverage=0.5)
    hits = [_hit("The roses are watered at six.")]
    assert found_reason("When are the roses watered?", hits, _parts([0.2, 0.55]), params) == (
        True, "a passage is close in meaning to the question (similarity 0.55, at least 0.50)"
    )
    assert found_reason("When are the roses watered?", hits, _parts([0.35]), params) == (
        True, "a top passage holds 100% of the question's words, with similarity 0.35 (at least 0.30)"
    )
    assert found_reason("When are the tulips planted watered?", hits, _parts([0.35]), params) == (
        False,
        "no passage is close in meaning (best similarity 0.35, below 0.50) "
        "and no top passage holds 50% of the question's words (33% at most)",
    )
    assert found_reason("roses", [], _parts([]), params) == (False, "no passage to search")


def test_supported_ignores_passages_outside_the_source_filter():
    params = FoundRule(threshold=0.5, threshold_words=0.3, coverage=0.5)
    parts = _parts([0.9, 0.1], [False, True])
    assert not supported("zebra?", [_hit("Nothing here.")], parts, params)


@pytest.fixture
def retriever(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    return Retriever.load(settings.index_dir, embedder=fake_embedder)


def test_answer_sentence_is_an_exact_cited_span(retriever, corpus_dir):
    answer = retriever.ask("When are the roses watered every morning?", k=3)
    assert answer.found
    assert answer.answer.text == "The roses are watered every morning at six."
    assert (answer.answer.source, answer.answer.start_line, answer.answer.end_line) == ("garden.txt", 7, 7)
    text = (corpus_dir / "garden.txt").read_text()
    assert text[answer.answer.start_char : answer.answer.end_char] == answer.answer.text
    top = answer.passages[0]
    assert (top.sentence_start, top.sentence_end) == (answer.answer.start_char, answer.answer.end_char)


def test_not_found_is_said_plainly_with_closest_passages(retriever):
    answer = retriever.ask("zzz qqq xxx", k=2)
    assert not answer.found
    out = render_text(answer)
    assert out.startswith("Not found: no passage of the corpus clearly answers this question.\nClosest passages:")
    assert len(answer.passages) == 2
    doc = json.loads(to_json(answer))
    assert doc["found"] is False
    assert set(doc["passages"][0]) >= {"dense", "bm25", "dense_rank", "bm25_rank", "score"}
