"""The "found" decision, the answer sentence, and its rendering (fake embedder, tiny corpus)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from qa.answer import (FoundRule, SentenceChoice, choose_answer, continues, decide, related_score, supported,
                       word_coverage)
from qa.chunking import split_sentences
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
    assert supported("When are the roses watered?", hits, _parts([0.2, 0.55]), params).found
    # below the threshold, but every content word is in the top passage
    assert supported("When are the roses watered?", hits, _parts([0.35]), params).found
    # below the threshold and the passage holds 1 of 3 content words
    assert not supported("When are the tulips planted watered?", hits, _parts([0.35]), params).found
    # too far below for words to matter
    assert not supported("When are the roses watered?", hits, _parts([0.25]), params).found


def test_found_reason_says_why_in_checkable_terms():
    params = FoundRule(threshold=0.5, threshold_words=0.3, coverage=0.5)
    hits = [_hit("The roses are watered at six.")]
    close = supported("When are the roses watered?", hits, _parts([0.2, 0.55]), params)
    assert close.found and close.reason == "a passage is close in meaning to the question (similarity 0.55, at least 0.50)"
    words = supported("When are the roses watered?", hits, _parts([0.35]), params)
    assert words.found and words.reason == (
        "a top passage holds 100% of the question's words, with similarity 0.35 (at least 0.30)"
    )
    far = supported("When are the tulips planted watered?", hits, _parts([0.35]), params)
    assert not far.found and far.reason == "the closest passages share only the word watered with the question"
    assert supported("roses", [], _parts([]), params).reason == "the index holds no passage to search"


def test_supported_ignores_passages_outside_the_source_filter():
    params = FoundRule(threshold=0.5, threshold_words=0.3, coverage=0.5)
    parts = _parts([0.9, 0.1], [False, True])
    assert not supported("zebra?", [_hit("Nothing here.")], parts, params).found


def test_related_count_grows_with_the_passages_searched():
    rule = FoundRule(related_per=50, related_max=10)
    assert [rule.related_count(n) for n in (0, 16, 99, 100, 250, 499, 500, 20_000)] == [1, 1, 1, 2, 5, 9, 10, 10]
    # the mean of the largest ones: one passage per 50 searched (here 2 of 100, then 10 of 1,000)
    assert related_score(np.array([0.1] * 98 + [0.6, 0.4]), 100, rule) == pytest.approx(0.5)
    assert related_score(np.array([0.9] + [0.3] * 9 + [0.0] * 990), 1000, rule) == pytest.approx(0.36)
    assert related_score(np.array([]), 0, rule) == 0.0


def test_one_close_sentence_among_many_passages_is_not_enough():
    """A large corpus where one passage comes close by chance and the rest are far: not found, and
    the reason says so; the same best score in a small corpus (the best alone counts) is found."""
    params = FoundRule(threshold=0.5, threshold_words=0.3, coverage=0.5, related=0.32, related_per=50, related_max=10)
    hits = [_hit("Cold on mountaintops, minimum temperature 6-12oC.")]
    question = "At what temperature does water boil on top of Everest?"
    lone = _parts([0.55] + [0.2] * 999)
    s = supported(question, hits, lone, params)
    assert not s.found
    assert s.reason == ("the closest passages share only the word temperature with the question; few passages are "
                        "near it in meaning (the closest average a similarity of 0.23, below 0.32)")
    assert supported(question, hits, _parts([0.55] + [0.35] * 999), params).found  # on the corpus's subject
    just = supported(question, hits, _parts([0.55] + [0.2944] * 9 + [0.0] * 990), params)  # 0.31996: below 0.32
    assert not just.found and just.reason.endswith("(the closest average a similarity of 0.31, below 0.32)")
    assert supported(question, hits, _parts([0.55] + [0.2] * 15), params).found  # 16 passages: the best alone
    # on an approximate index the candidates are scored, and the whole corpus was searched
    few = _parts([0.55] + [0.2] * 99)
    assert supported(question, hits, few, params).found  # 100 passages: the best 2
    assert not supported(question, hits, replace(few, searched=100_000), params).found  # 100,000: the best 10


@pytest.fixture
def retriever(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    return Retriever.load(settings.index_dir, embedder=fake_embedder)


def test_answer_sentence_is_an_exact_cited_span(retriever, corpus_dir):
    answer = retriever.ask("When are the roses watered every morning?", k=3)
    assert answer.found
    # the sentence with the next one of its paragraph (both within SentenceChoice.join_chars)
    assert answer.answer.text == ("The roses are watered every morning at six. In dry summers the gardeners also "
                                  "water the lavender, which otherwise needs little care.")
    assert (answer.answer.source, answer.answer.start_line, answer.answer.end_line) == ("garden.txt", 7, 7)
    text = (corpus_dir / "garden.txt").read_text()
    assert text[answer.answer.start_char : answer.answer.end_char] == answer.answer.text
    top = answer.passages[0]
    assert (top.sentence_start, top.sentence_end) == (answer.answer.start_char, answer.answer.end_char)


def test_not_found_is_said_plainly_with_closest_passages(retriever):
    answer = retriever.ask("zzz qqq xxx", k=2)
    assert not answer.found
    out = render_text(answer)
    assert out.startswith("Not found: no passage of the corpus clearly answers this question (")
    assert "\nRelated passages (none of them answers it):\n" in out
    assert len(answer.passages) == 2
    doc = json.loads(to_json(answer))
    assert doc["found"] is False and doc["reason"] in out
    assert set(doc["passages"][0]) >= {"dense", "bm25", "dense_rank", "bm25_rank", "score"}


# --- the answer span: a sentence with the neighbours that continue it ---------------------------


def _at(text: str, start: int = 100) -> Hit:
    return Hit(text=text, source="a.txt", section="", start_line=1, end_line=1 + text.count("\n"),
               start_char=start, end_char=start + len(text), rank=1, dense=0.5)


def _scored(hit: Hit, *cosines: float, place: int = 0) -> list[tuple]:
    """The hit's sentences (as `Searcher.hit_sentences` gives them) with the given cosines."""
    spans = split_sentences(hit.text)
    assert len(spans) == len(cosines)
    return [(hit.start_char + a, hit.start_char + b, c, place) for (a, b), c in zip(spans, cosines)]


def _answer_text(hit: Hit, chosen) -> str:
    h, start, end = chosen
    return hit.text[start - hit.start_char : end - hit.start_char]


@pytest.mark.parametrize("text, expected", [
    ("They built a power plant.", True), ("It respects elections.", True), ("Hence, one can expect it.", True),
    ("“This is why.”", True), ("apt-get install foo", True), ("The camp grew.", False), ("Maryam Rajavi leads.", False),
    ("- item two", False), ("1. Provides detection", False), ("$ sudo reboot", False), ("2050 is far.", False),
    ("By comparison, the project has 608 times as much.", True), ("Generally speaking, any site works.", True),
    ("Generations of users.", False),
])
def test_continues_names_sentences_that_lean_on_the_one_before(text, expected):
    assert continues(text) is expected


def test_answer_window_adds_the_sentences_that_continue_the_chosen_one():
    hit = _at("The camp was built in 1986. There they built it by hand. They added a power plant and parks. "
              "The camp was closed in 2016.")
    sentences = [_scored(hit, 0.2, 0.7, 0.3, 0.1)]
    question = "What did they build in the camp?"
    # the best sentence opens with "There" (continues the one before) and the next opens with "They"
    assert _answer_text(hit, choose_answer(question, [hit], sentences)) == (
        "The camp was built in 1986. There they built it by hand. They added a power plant and parks.")
    assert _answer_text(hit, choose_answer(question, [hit], sentences, SentenceChoice(window=False))) == (
        "There they built it by hand.")
    # the answer is cited as one exact span of the file
    answer = decide(question, [hit], sentences, _parts([0.5]))
    assert answer.answer.text == hit.text[answer.answer.start_char - 100 : answer.answer.end_char - 100]
    assert (answer.passages[0].sentence_start, answer.passages[0].sentence_end) == (
        answer.answer.start_char, answer.answer.end_char)


def test_continues_leaves_the_connective_phrases_out_when_asked():
    assert not continues("By comparison, the project has 608 times as much.", phrases=False)
    assert continues("it is 1 by default.", phrases=False)


def test_answer_window_stops_at_paragraphs_list_items_and_new_subjects():
    hit = _at("Set the pin priority first.\n\nIt is 1 by default.\n- they are listed here.\nThe next part is about mirrors.")
    sentences = [_scored(hit, 0.9, 0.2, 0.2, 0.1)]
    assert _answer_text(hit, choose_answer("pin priority", [hit], sentences)) == "Set the pin priority first."
    # a sentence ending with a colon is followed by what it announces
    hit = _at("Mount the image in two steps:\n- Load nbd with modprobe.\n- Run qemu-nbd.")
    assert _answer_text(hit, choose_answer("mount an image", [hit], [_scored(hit, 0.8, 0.1, 0.1)])) == (
        "Mount the image in two steps:\n- Load nbd with modprobe.")


def test_answer_window_joins_the_next_sentence_of_the_paragraph_up_to_join_chars():
    hit = _at("The roses are watered at six. Rain water is kept in tanks.\n\nThe tanks are copper.")
    sentences = [_scored(hit, 0.8, 0.1, 0.1)]
    # by default (join_chars 350) the next sentence of the paragraph comes with it, never the next paragraph
    assert _answer_text(hit, choose_answer("roses watered", [hit], sentences)) == (
        "The roses are watered at six. Rain water is kept in tanks.")
    for narrow in (SentenceChoice(join_chars=0), SentenceChoice(join_chars=40)):
        assert _answer_text(hit, choose_answer("roses watered", [hit], sentences, narrow)) == (
            "The roses are watered at six.")


def test_answer_window_crosses_a_paragraph_break_after_a_lead_in_or_before_lower_case():
    # a message quoted after a colon, and the explanation after it opening in lower case
    hit = _at("If you see a message similar to:\n\ncreatedb: command not found\n\n"
              "then PostgreSQL was not installed properly.  Either it was not installed at all.")
    sentences = [_scored(hit, 0.1, 0.9, 0.3, 0.2)]
    assert _answer_text(hit, choose_answer("createdb command not found", [hit], sentences)) == (
        "If you see a message similar to:\n\ncreatedb: command not found\n\nthen PostgreSQL was not installed properly.")
    apart = SentenceChoice(across_breaks=False)
    assert _answer_text(hit, choose_answer("createdb command not found", [hit], sentences, apart)) == (
        "createdb: command not found")
    # a capitalised sentence after a blank line starts something new
    hit = _at("Run the following commands before closing:\n\nPRAGMA optimize;\n\nThe constant can be adjusted.")
    sentences = [_scored(hit, 0.9, 0.1, 0.1)]
    assert _answer_text(hit, choose_answer("what to run before closing", [hit], sentences)) == (
        "Run the following commands before closing:\n\nPRAGMA optimize;")


def test_answer_window_takes_the_sentence_opening_with_a_connective_phrase():
    hit = _at("The library has 151 KSLOC of C code.  By comparison, the project has 608 times as much test code.")
    sentences = [_scored(hit, 0.9, 0.4)]
    short = SentenceChoice(join_chars=0)
    assert _answer_text(hit, choose_answer("how much test code", [hit], sentences, short)) == hit.text
    assert _answer_text(hit, choose_answer("how much test code", [hit], sentences, replace(short, phrases=False))) == (
        "The library has 151 KSLOC of C code.")


def test_answer_is_chosen_among_the_top_passages_with_a_rank_penalty():
    first, second, fourth = _at("Roses need water.", 0), _at("Roses are watered at six.", 50), _at("Roses at six sharp.", 90)
    sentences = [_scored(first, 0.50), _scored(second, 0.70, place=1), _scored(fourth, 0.95, place=3)]
    # both hold every question word: 0.70 - 0.15 > 0.50, and the fourth passage is never chosen from
    assert choose_answer("When are roses watered?", [first, second, fourth], sentences)[0] == 1
    assert choose_answer("When are roses watered?", [first, second, fourth], sentences,
                         SentenceChoice(rank_penalty=0.25))[0] == 0


def test_ask_cites_the_answer_with_the_sentence_continuing_it(retriever, corpus_dir):
    answer = retriever.ask("Which tree did she choose?", k=3)
    text = (corpus_dir / "garden.txt").read_text()
    assert answer.answer.text == ("The garden behind the library was planted in 1921 by Dr. Helen Ward. "
                                  "She chose roses, lavender and a single walnut tree.")
    assert text[answer.answer.start_char : answer.answer.end_char] == answer.answer.text
    assert (answer.answer.start_line, answer.answer.end_line) == (3, 3)
