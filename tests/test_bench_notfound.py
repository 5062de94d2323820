"""bench.quality.notfound_calibrate replays `qa.notfound.decide_support` on saved features: the
replay with today's `FoundRule` decides as `qa.answer.supported` does, and --loco chooses on the
other splits only."""

import json

import numpy as np

from bench.quality.notfound_calibrate import found, main
from qa.answer import FoundRule, related_score, supported
from qa.lexical import build_bm25
from qa.notfound import coverage, missing_words, specialist_words
from qa.schema import Hit, ScoreParts

TEXT = "Water boils at a lower temperature on mountaintops."
HITS = [Hit(text=TEXT, source="a.txt", section="", start_line=1, end_line=1, start_char=0, end_char=len(TEXT))]
QUESTION = "At what temperature does water boil on mountaintops?"


def _features(question: str, dense: np.ndarray, vocab) -> dict:
    """What bench.quality.table saves per question."""
    return {"best": float(dense.max()), "coverage": coverage(question, HITS[:3]),
            "related": related_score(dense, len(dense)), "missing": missing_words(question, vocab, frozenset()),
            "specialist": len(specialist_words(question, vocab, frozenset()))}


def test_replay_decides_as_the_rule():
    rule = FoundRule()
    vocab = build_bm25(HITS).vocab_dict
    cases = [[0.55] + [0.2] * 999,  # one close passage among 1,000: off the corpus's subject
             [0.55] + [0.35] * 999,
             [0.55] + [0.2] * 15,  # a small corpus: the best alone counts
             [0.30] * 16]
    for scores in cases:
        dense = np.array(scores, dtype=np.float32)
        parts = ScoreParts(query=None, dense=dense, question_dense=dense, bm25=None, sentence=None, fused=None,
                           dense_rank=None, bm25_rank=None, allowed=np.ones(len(dense), dtype=bool))
        want = supported(QUESTION, HITS, parts, rule, vocab).found
        got = found(_features(QUESTION, dense, vocab), rule.threshold, rule.threshold_words, rule.coverage,
                    rule.threshold_missing, 3, rule.related)
        assert got == want
    assert [found(_features(QUESTION, np.array(s, dtype=np.float32), vocab), 0.37, 0.33, 0.5, 0.6, 3, 0.32)
            for s in cases] == [False, True, True, False]


def _records(answerable_related: float, off_related: float) -> list[dict]:
    def rec(kind, related):
        return {"kind": kind, "features": {"best": 0.6, "coverage": 1.0, "related": related, "missing": [], "specialist": 0}}
    return [rec("answerable", answerable_related)] * 50 + [rec("off-topic", off_related)] * 5


def test_loco_chooses_on_the_other_splits(tmp_path, capsys):
    run = {"a/dev": {"split": "dev", "records": _records(0.40, 0.25)},
           "b/dev": {"split": "dev", "records": _records(0.40, 0.30)},
           "c/dev": {"split": "dev", "records": _records(0.31, 0.20)}}  # here a related test flags answerable ones
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    assert main(["--runs", str(path), "--grid", "0.37:0.33:0.5:0.6:3:0,0.26,0.32", "--loco"]) == 0
    out = capsys.readouterr().out.split("leave-one-corpus-out")[1]
    chosen = {line.split(":")[0]: line for line in out.strip().splitlines()[1:]}
    # with c left out, a and b choose the strictest test (0.32), which flags all of c's answerable questions
    assert "R=0.32" in chosen["c/dev"] and "ans 50/50" in chosen["c/dev"]
    # with a or b left out, c's answerable questions allow 0.26 at most: a's off-topic flagged, b's not
    assert "R=0.26" in chosen["a/dev"] and "off 5/5" in chosen["a/dev"]
    assert "R=0.26" in chosen["b/dev"] and "off 0/5" in chosen["b/dev"]


def test_replay_judges_a_statement_as_the_rule():
    """A statement naming a word the corpus never mentions: the replay with `threshold_statement`
    decides as `supported`, and with 1 (off) as a question would be."""
    rule = FoundRule()
    vocab = build_bm25(HITS).vocab_dict
    claim = "Tirasemtiv boils water."
    for best, want in ((0.45, True), (0.39, False)):
        dense = np.array([best] + [0.35] * 999, dtype=np.float32)
        parts = ScoreParts(query=None, dense=dense, question_dense=dense, bm25=None, sentence=None, fused=None,
                           dense_rank=None, bm25_rank=None, allowed=np.ones(len(dense), dtype=bool))
        features = {**_features(claim, dense, vocab), "question": claim}
        assert features["missing"] == ["Tirasemtiv"]
        assert supported(claim, HITS, parts, rule, vocab).found == want
        assert found(features, rule.threshold, rule.threshold_words, rule.coverage, rule.threshold_missing, 4,
                     rule.related, rule.threshold_statement) == want
        assert not found(features, rule.threshold, rule.threshold_words, rule.coverage, rule.threshold_missing, 4,
                         rule.related, 1.0)
