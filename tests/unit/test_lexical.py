"""The one tokenizer and BM25 (qa.lexical)."""

from __future__ import annotations

import numpy as np
import pytest

from qa import lexical
from qa.lexical import bm25_idf, bm25_scores, bm25_text, build_bm25, tokenize, tokenize_many, words
from qa.schema import Passage


def test_tokenize_stems_and_drops_stop_words():
    assert tokenize("The residents of the camps, in the attacks") == ["resid", "camp", "attack"]
    assert tokenize("a 7 b") == ["7"]
    assert tokenize("Who were the residents?", content_only=True) == ["resid"]


def test_tokenize_many_matches_tokenize():
    texts = ["The residents of the camps", "attacks in 1988"]
    assert tokenize_many(texts) == [set(tokenize(t)) for t in texts]
    texts += ["The camp's residents: a camp of 12 families", "", "I a 7 of The the"]
    assert tokenize_many(texts) == [set(tokenize(t)) for t in texts]
    among = {"camp", "resid", "7", "attack", "albania"}
    assert tokenize_many(texts, among) == [set(tokenize(t)) & among for t in texts]
    assert tokenize_many(texts, among)[2] == {"camp", "resid"} and tokenize_many(texts, set()) == [set()] * 5


def test_words_are_the_regex_words_of_the_lower_cased_text():
    import random

    rng = random.Random(7)
    alphabet = "abXY_09 .,;:-'\"\n\t\x0b\x1c\x1f()[]\u00e9\u0130\u212a\u00df\u03a3\ufb01\u00bd\u00b2\u0660"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    texts += [chr(c) + "a" + chr(c) + " x" for c in range(0, 0x2000, 3)]  # every kind of character, ASCII or not
    for text in texts:
        assert words(text) == lexical._TOKEN.findall(text.lower()), repr(text)


def test_tokenize_many_remembers_stems_and_forgets_them_whole(monkeypatch):
    import random

    rng = random.Random(3)
    vocab = "camps camp residents resided attack attacking attacks 1988 i a the of Ünïcode naïve running ran".split()
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 12))) for _ in range(200)]
    among = {"camp", "resid", "attack", "run", "1988", "naïv"}
    monkeypatch.setattr(lexical, "_STEMS_MAX", 8)  # the memo is replaced many times on the way
    for start in range(0, 200, 5):
        chunk = texts[start : start + 5]
        assert tokenize_many(chunk) == [set(tokenize(t)) for t in chunk]
        assert tokenize_many(chunk, among) == [set(tokenize(t)) & among for t in chunk]


def test_bm25_idf_of_question_words():
    import bm25s

    bm25 = bm25s.BM25(method="lucene")
    bm25.index([["camp", "ashraf"], ["camp"], ["iraq"]], show_progress=False)
    idf = bm25_idf(bm25, {"camp", "ashraf", "albania"})
    # N = 3; camp in 2 passages: log(1 + 1.5/2.5); ashraf in 1: log(1 + 2.5/1.5); unknown counts as in 1
    assert idf == pytest.approx({"camp": np.log(1.6), "ashraf": np.log(8 / 3), "albania": np.log(8 / 3)})


def _passage(text, section=""):
    return Passage(text=text, source="a.txt", section=section, start_line=1, end_line=1, start_char=0,
                   end_char=len(text))


def test_bm25_indexes_section_and_text_and_scores_tokens():
    passages = [_passage("Roses are watered at six.", "Garden"), _passage("Boats sail at dawn.")]
    assert bm25_text(passages[0]) == "Garden\nRoses are watered at six."
    bm25 = build_bm25(passages)
    scores = bm25_scores(bm25, tokenize("garden roses"))
    assert scores[0] > 0 and scores[1] == 0
    assert bm25_scores(bm25, tokenize("zebra")).tolist() == [0.0, 0.0]  # no indexed word


def test_bm25_builder_in_blocks_scores_exactly_as_build_bm25():
    from pathlib import Path

    from qa.chunking import chunk_document
    from qa.documents import load_corpus
    from qa.lexical import BM25Builder

    root = Path(__file__).resolve().parents[2]
    passages = [p for folder in (root / "corpus", root / "tests" / "data")
                for d in load_corpus(folder).documents for p in chunk_document(d)]
    passages.append(_passage("", "Heading"))  # a passage whose text has no token
    builder = BM25Builder()
    for start in range(0, len(passages), 7):
        builder.add(passages[start : start + 7])
    built, reference = builder.build(), build_bm25(passages)
    for question in ("Who leads the NCRI?", "roses garden watered", "camp Ashraf residents 2003", "zebra"):
        tokens = tokenize(question)
        assert bm25_scores(built, tokens).tolist() == bm25_scores(reference, tokens).tolist()
    words = {"ncri", "rose", "albania"}
    assert bm25_idf(built, words) == bm25_idf(reference, words)


@pytest.mark.parametrize("mmap", [False, True])
def test_bm25_arrays_read_and_write_the_bm25s_folder_format(tmp_path, mmap):
    """What the builder saves, bm25s reads; what bm25s saves, `BM25Arrays` reads: same scores."""
    import bm25s

    from qa.lexical import BM25Arrays, BM25Builder

    passages = [_passage(t) for t in ("Roses are watered at dawn.", "Boats cross the lake at dawn.",
                                           "Bees keep the roses.", "")]
    builder = BM25Builder()
    builder.add(passages)
    builder.build().save(tmp_path / "ours")
    build_bm25(passages).save(str(tmp_path / "theirs"), show_progress=False)
    ours = BM25Arrays.load(tmp_path / "ours", mmap=mmap)
    read_by_bm25s = bm25s.BM25.load(str(tmp_path / "ours"), mmap=mmap)
    theirs = BM25Arrays.load(tmp_path / "theirs", mmap=mmap)
    assert isinstance(ours.scores["data"], np.memmap) == mmap
    for question in ("roses at dawn", "boats lake", "bees roses roses", "zebra"):
        tokens = tokenize(question)
        expected = bm25_scores(build_bm25(passages), tokens).tolist()
        assert any(expected) or question == "zebra"
        for index in (ours, read_by_bm25s, theirs):
            assert bm25_scores(index, tokens).tolist() == expected
            assert bm25_scores(index, tokens, np.array([2, 0])).tolist() == [expected[2], expected[0]]
    assert bm25_idf(ours, {"rose", "zebra"}) == bm25_idf(theirs, {"rose", "zebra"})


@pytest.mark.parametrize("shuffle", [False, True])
def test_bm25_of_chosen_rows_equals_the_whole_corpus_scores(shuffle):
    """Scores of chosen rows (repeated, absent from postings, unsorted) are the whole-corpus ones,
    whether the posting lists are ascending (binary search) or not (the general path)."""
    from qa.lexical import BM25Arrays

    rng = np.random.default_rng(7)
    words = ["rose", "dawn", "boat", "lake", "bee", "garden", "water", "stone"]
    passages = [_passage(" ".join(rng.choice(words, size=int(rng.integers(1, 9))))) for _ in range(60)]
    bm25 = build_bm25(passages)
    scores = {k: np.array(bm25.scores[k]) for k in ("data", "indices", "indptr")}
    if shuffle:  # the same postings, each list in another order
        for i in range(len(scores["indptr"]) - 1):
            lo, hi = scores["indptr"][i], scores["indptr"][i + 1]
            order = lo + rng.permutation(hi - lo)
            scores["data"][lo:hi], scores["indices"][lo:hi] = scores["data"][order], scores["indices"][order]
    scores["num_docs"] = bm25.scores["num_docs"]
    index = BM25Arrays(scores, dict(bm25.vocab_dict), bm25.k1, bm25.b)
    rows = np.array([59, 3, 3, 0, 17, 42, 8, 59])
    for question in ("roses at dawn", "boat lake lake", "garden water stone bee", "zebra"):
        tokens = tokenize(question)
        expected = bm25_scores(bm25, tokens)
        assert bm25_scores(index, tokens, rows).tolist() == expected[rows].tolist()
