"""The "not found" decision and its reason (qa.notfound): pure parts, the fake embedder's corpus."""

from __future__ import annotations

from dataclasses import replace

from qa.answer import FoundRule
from qa.lexical import build_bm25
from qa.notfound import (and_list, decide_support, detail, missing_words, numbered, question_words, shared_words,
                         specialist_words, statement, words_list)
from qa.schema import Hit

PARAMS = FoundRule(threshold=0.5, threshold_words=0.3, coverage=0.5, threshold_missing=0.6)
COMMON = frozenset({"cluster", "install", "garden", "water", "roses", "daily", "football"})


def _hit(text: str, section: str = "") -> Hit:
    return Hit(text=text, source="a.txt", section=section, start_line=1, end_line=1, start_char=0, end_char=len(text))


HITS = [
    _hit("The roses are watered every morning at six.", "Watering"),
    _hit("A Debian cluster is installed with apt and configured by hand.", "Clusters"),
]
BM25 = build_bm25(HITS).vocab_dict  # the corpus's stems


def test_question_words_keep_the_question_spelling_and_drop_stop_words():
    assert question_words("How do I install Kubernetes on a Debian cluster?") == ["install", "Kubernetes", "Debian", "cluster"]


def test_missing_words_are_rare_words_no_passage_holds_and_not_typos():
    # "Kubernetes" and "kubeadm": in no passage and not common; "install": held; "watred": a typo of "water"
    assert missing_words("Install Kubernetes with kubeadm, watred daily", BM25, COMMON) == ["Kubernetes", "kubeadm"]
    # a common word the corpus lacks is not evidence (paraphrases use them)
    assert missing_words("How do I install a garden?", BM25, COMMON) == []


def test_a_never_mentioned_word_makes_a_close_passage_not_enough_and_is_named():
    s = decide_support("How do I install Kubernetes on a Debian cluster?", HITS, 0.55, PARAMS, BM25, common=COMMON)
    assert not s.found and s.missing == ("Kubernetes",)
    assert s.reason == "the corpus never mentions Kubernetes"
    assert s.shared == ("install", "Debian", "cluster")
    # ... unless a passage is very close
    assert decide_support("How do I install Kubernetes on a Debian cluster?", HITS, 0.65, PARAMS, BM25, common=COMMON).found


def test_a_far_question_names_the_few_words_the_closest_passages_share():
    s = decide_support("Which cluster won the football cup?", HITS, 0.2, PARAMS, BM25, common=COMMON)
    assert not s.found and s.reason == "the closest passages share only the word cluster with the question"
    s = decide_support("zzz qqq", HITS, 0.2, PARAMS, BM25, common=COMMON)
    assert s.reason.startswith("the closest passages share no word with the question")


def test_found_says_why():
    s = decide_support("When are the roses watered?", HITS, 0.7, PARAMS, BM25, common=COMMON)
    assert s.found and s.reason.startswith("a passage is close in meaning to the question (similarity 0.70, at least")
    assert not s.missing and not s.shared


def test_word_lists_read_as_english():
    assert words_list(["a"]) == "a" and words_list(["a", "b"]) == "a or b"
    assert words_list(list("abcdef")) == "a, b, c, d or …"
    assert and_list(["a", "b", "c"]) == "a, b and c"
    assert shared_words("roses and clusters", HITS) == ["roses", "clusters"]


def test_an_unknown_name_in_a_question_about_the_corpus_subject_is_a_detail():
    # four specialist words the corpus holds, one (a drug name) it never mentions
    hits = [_hit("Amyloid oligomers bind fibronectin in the hippocampus of mice.", "Results")]
    vocab = build_bm25(hits).vocab_dict
    common = COMMON | {"increases", "expression", "mice"}
    asked = "Does Tirasemtiv increase expression of fibronectin with amyloid oligomers in the hippocampus of mice"
    assert missing_words(asked, vocab, common) == ["Tirasemtiv"]
    assert specialist_words(asked, vocab, common) == ["fibronectin", "amyloid", "oligomers", "hippocampus"]
    assert decide_support(asked, hits, 0.5, PARAMS, vocab, common=common).found
    # three are not enough (SPECIALIST_MIN = 4: "configure pgBackRest to store backups in an S3 bucket")
    fewer = "Does Tirasemtiv increase expression of fibronectin with amyloid oligomers in mice"
    assert not decide_support(fewer, hits, 0.5, PARAMS, vocab, common=common).found
    # a how-to question names its subject: one specialist word (Debian) does not make it a detail
    s = decide_support("How do I install Kubernetes on a Debian cluster?", HITS, 0.55, PARAMS, BM25, common=COMMON)
    assert not s.found and s.missing == ("Kubernetes",)


def test_missing_words_are_a_detail_only_below_more_specialist_words():
    assert detail(1, 4) and detail(3, 4) and not detail(1, 3) and not detail(4, 4) and not detail(1, 0)
    assert detail(1, 2, least=2) and not detail(0 + 2, 2, least=2)


def test_a_statement_is_judged_on_the_rest_of_what_it_states():
    # a claim to check names a drug the corpus never mentions; the rest of it is close to a passage
    hits = [_hit("A fast skeletal troponin activator does not bind cardiac muscle.", "Results")]
    vocab = build_bm25(hits).vocab_dict
    claim = "Tirasemtiv targets cardiac muscle."
    assert statement(claim) and statement('Mice can be made with "artificial spermatids."')
    assert not statement("How do I install Kubernetes on Debian.") and not statement("Is it true that X.")
    assert not statement("Install Proxmox VE on Debian") and not statement("Kubernetes on Debian?")
    rule = replace(PARAMS, threshold=0.37, threshold_statement=0.45)
    common = COMMON | {"targets"}
    s = decide_support(claim, hits, 0.48, rule, vocab, common=common)
    assert s.found and s.missing == ("Tirasemtiv",)
    assert s.reason == ("a passage is close in meaning to the statement (similarity 0.48, at least 0.45), "
                        "though the corpus never mentions Tirasemtiv")
    # below threshold_statement, or asked as a question: the never-mentioned word decides, as before
    assert decide_support(claim, hits, 0.44, rule, vocab, common=common).reason == "the corpus never mentions Tirasemtiv"
    assert not decide_support("Does Tirasemtiv target cardiac muscle?", hits, 0.48, rule, vocab, common=common).found
    # a statement far from every passage is not found, whatever it names
    assert not decide_support(claim, hits, 0.30, rule, vocab, common=common).found


def test_a_word_the_corpus_holds_with_a_number_is_mentioned():
    hits = [_hit("Deltex1 binds eIF3f and Notch.", "Results")]
    vocab = build_bm25(hits).vocab_dict
    assert numbered("deltex", vocab) and not numbered("delta", vocab)
    assert missing_words("Deltex binds eIF3f", vocab, COMMON) == []
    assert missing_words("Deltexin binds eIF3f", vocab, COMMON) == ["Deltexin"]
