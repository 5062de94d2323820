"""NOT FOUND: whether the corpus supports an answer, and, when it does not, why, in terms a
reader can check against the corpus.

Two signals (calibrated on the dev splits of every benchmark corpus, see bench/quality.md):
- how close the closest passage is: its dense score (`found_threshold`, or the lower
  `threshold_words` when one of the top 3 passages holds `coverage` of the question's words;
  `qa.answer.FoundRule`) and, in a corpus of many passages, how close the closest few are on
  average (`FoundRule.related`: one sentence among tens of thousands may come close by chance) —
  what catches questions about another subject;
- words of the question the corpus never mentions: a word no passage holds, that is not a
  common English word (not a whole word of the model's vocabulary) and not a misspelling of a
  word the corpus holds ("kubeadm", "WireGuard") — what catches questions on the corpus's own
  field that it does not cover. Such a question is answered only when a passage is as close as
  `threshold_missing` — or when it holds SPECIALIST_MIN or more specialist words the corpus does
  mention (not common English words: "amyloid", "fibronectin", "oligomers"), more than those it
  never mentions: it is then about the corpus's own subject, and the unknown word is a detail (a
  drug, gene or compound a scientific claim names), not its subject. A statement (a claim to
  check, "Tirasemtiv targets cardiac muscle.", not a question) is answered from the lower
  `FoundRule.threshold_statement`: the passages are judged on the rest of what it states, and the
  reason still names the word the corpus never mentions. A word the corpus holds only with a number
  appended ("Deltex" beside "Deltex1", a member of a numbered family) is not never mentioned.

The reason names those words ("the corpus never mentions kubeadm or Kubernetes"), or the words the
closest passages share with the question ("the closest passages share only the words cluster and
Debian with the question").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .lexical import _TOKEN, _question_stopwords, _stemmer, bm25_text, tokenize

MIN_WORD = 4  # shorter words are never "distinctive"
# bench/quality.md "Issue 10", not found: specialist words the corpus holds that make a word it never
# mentions a detail (SciFact train claims; the dev splits' not-covered questions hold at most 3 —
# "configure pgBackRest to store backups in an S3 bucket" — claims are now judged as statements)
SPECIALIST_MIN = 4
# a sentence that starts with one of these asks something (a question, even without its "?")
QUESTION_START = frozenset("how what why when where which who whom whose whats hows is are am was were do does did "
                           "can could should would shall will may might must has have had".split())
# question words typed without their apostrophe: never taken for a subject
CONTRACTIONS = frozenset("whats hows wheres whos whens whys dont doesnt didnt cant isnt arent wont shouldnt ive im".split())


@dataclass(frozen=True)
class Support:
    """The "not found" decision: `found` and `reason` (one sentence a reader can check: why the
    passages answer, or why none does) and the words it rests on: `missing` (question words no
    passage holds; when found, those of a statement judged without them) and, when not found,
    `shared` (question words the closest passages hold), both as written in the question."""

    found: bool
    reason: str | None = None
    missing: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()


@lru_cache(maxsize=4)
def common_words(model_path: str | None) -> frozenset[str]:
    """The whole words of a WordPiece vocabulary (vocab.txt in the model's folder): ~20,000
    common English words. Empty when the model has no such file."""
    if not model_path:
        return frozenset()
    vocab = Path(model_path) / "vocab.txt"
    try:
        lines = vocab.read_text(encoding="utf-8").split()
    except OSError:
        return frozenset()
    return frozenset(w for w in lines if w.isalpha() and not w.startswith("##"))


def question_words(question: str) -> list[str]:
    """The question's content words as written (first occurrence of each, stop words dropped)."""
    stop = _question_stopwords()
    seen, out = set(), []
    for w in _TOKEN.findall(question):
        low = w.lower()
        if low in stop or low in seen or not any(c.isalpha() for c in w):
            continue
        seen.add(low)
        out.append(w)
    return out


def missing_words(question: str, vocab, common: frozenset[str]) -> list[str]:
    """Words of `question` that no passage holds (their stem is not in the BM25 vocabulary), that
    are at least MIN_WORD letters and not in `common`; a lower-case word one edit away from an
    indexed stem or a common word is a misspelling, not a subject. `vocab`: the corpus's stems
    (any container). As written in the question."""
    out = []
    for at, w in enumerate(question_words(question)):
        low = w.lower()
        if len(low) < MIN_WORD or low in common or low in CONTRACTIONS or not low.isalpha():
            continue
        stem = _stemmer().stemWord(low)
        if stem in vocab or numbered(low, vocab):
            continue
        named = w != low and not question.lstrip().startswith(w)  # a name: Kubernetes, WireGuard
        if not named and (_near(stem, _deletes(vocab)) or _near(low, _common_deletes(common))):
            continue
        out.append(w)
    return out


def numbered(word: str, vocab) -> bool:
    """Whether the corpus holds `word` (lower case) with one or two digits appended ("deltex1",
    "python3"): a numbered member of the family the word names."""
    digits = "0123456789"
    return any(word + a in vocab or any(word + a + b in vocab for b in digits) for a in digits)


def statement(question: str) -> bool:
    """Whether `question` is a statement (a claim to check) rather than a question: it ends with a
    full stop (closing quotes aside), holds no "?", and does not start with a question word. Pure."""
    text = question.strip().rstrip("\"'”’)] ")
    words = _TOKEN.findall(text)
    return text.endswith(".") and "?" not in text and bool(words) and words[0].lower() not in QUESTION_START


def specialist_words(question: str, vocab, common: frozenset[str]) -> list[str]:
    """Words of `question` the corpus holds (their stem is in `vocab`) that are not common
    English words (`common`): "amyloid", "CCL19", "Debian". As written in the question."""
    stem = _stemmer().stemWord
    return [w for w in question_words(question) if w.lower() not in common and stem(w.lower()) in vocab]


def detail(missing: int, specialist: int, least: int = SPECIALIST_MIN) -> bool:
    """Whether `missing` words the corpus never mentions are a detail of a question holding
    `specialist` words it does: at least `least` of them, and more than the missing ones. Pure."""
    return specialist >= max(least, missing + 1)


def _variants(word: str) -> set[str]:
    """`word` and every string one deletion away from it, the first letter kept (misspellings
    rarely touch it, while "zpool" is not a misspelling of "pool"). Pure."""
    return {word} | {word[:i] + word[i + 1 :] for i in range(1, len(word))}


def _index(words) -> frozenset[str]:
    """Every word of `words` (of MIN_WORD - 1 letters or more) and its one-deletion variants:
    two words are at most one edit apart when their variants meet (symmetric deletion)."""
    out = set()
    for w in words:
        if len(w) >= MIN_WORD - 1 and w.isalpha():
            out |= _variants(w)
    return frozenset(out)


def _near(word: str, index: frozenset[str]) -> bool:
    return bool(_variants(word) & index)


@lru_cache(maxsize=4)
def _common_deletes(common: frozenset[str]) -> frozenset[str]:
    return _index(common)


_VOCAB_INDEX: dict[int, tuple[object, frozenset[str]]] = {}  # id(vocabulary) -> (it, its `_index`)


def _deletes(vocab) -> frozenset[str]:
    """`_index` of a corpus vocabulary (stems), built once per vocabulary object."""
    held = _VOCAB_INDEX.get(id(vocab))
    if held is None or held[0] is not vocab:
        if len(_VOCAB_INDEX) >= 4:
            _VOCAB_INDEX.clear()
        held = _VOCAB_INDEX[id(vocab)] = (vocab, _index(vocab))
    return held[1]


def shared_words(question: str, hits) -> list[str]:
    """The question's content words that the closest passages (section title or text) hold."""
    held = set().union(*(set(tokenize(bm25_text(h))) for h in hits)) if hits else set()
    out = []
    for w in question_words(question):
        stems = tokenize(w, content_only=True)
        if stems and all(s in held for s in stems):
            out.append(w)
    return out


def words_list(words) -> str:
    """"a", "a or b", "a, b or c" (at most 4, then "..."). Pure."""
    words = list(words)
    if len(words) > 4:
        words = words[:4] + ["…"]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def and_list(words) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def coverage(question: str, hits) -> float:
    """The largest share of the question's content words (stemmed) one of `hits` holds in its
    section title or text; 0.0 for a question without such words."""
    words = set(tokenize(question, content_only=True))
    if not words:
        return 0.0
    return max((len(words & set(tokenize(bm25_text(h)))) / len(words) for h in hits), default=0.0)


def decide_support(question: str, hits, best_dense: float, rule, vocabulary=None, model_path: str | None = None,
                   common: frozenset[str] | None = None, related: float | None = None) -> Support:
    """Whether the corpus supports an answer to `question`, given the ranked `hits`, the best
    dense score of any allowed passage, the thresholds of `rule` (`qa.answer.FoundRule`) and the
    corpus's BM25 stems (`vocabulary`; None: no missing-word rule). `common`: the common words
    (default: those of the vocabulary in the model's folder `model_path`, `common_words`).
    `related`: the mean dense score of the closest passages (`qa.answer.related_score`; None: that
    test is off)."""
    if not hits:
        return Support(False, "the index holds no passage to search")
    share = coverage(question, hits[:3])
    close = best_dense >= rule.threshold or (best_dense >= rule.threshold_words and share >= rule.coverage)
    apart = close and related is not None and related < rule.related  # close, but off the corpus's subject
    close = close and not apart
    missing, claim = [], False
    if vocabulary is not None and best_dense < rule.threshold_missing:
        common = common_words(model_path) if common is None else common
        missing = missing_words(question, vocabulary, common)
        if missing and detail(len(missing), len(specialist_words(question, vocabulary, common))):
            missing = []  # the question is about what the corpus covers: the unknown word is a detail
        claim = bool(missing) and best_dense >= rule.threshold_statement and statement(question)
    if close and (claim or not missing):
        if claim:  # a statement (a claim to check): judged on the rest of what it states
            why = (f"a passage is close in meaning to the statement (similarity {best_dense:.2f}, at least "
                   f"{rule.threshold_statement:.2f}), though the corpus never mentions {words_list(missing)}")
        elif best_dense >= rule.threshold:
            why = f"a passage is close in meaning to the question (similarity {best_dense:.2f}, at least {rule.threshold:.2f})"
        else:
            why = (f"a top passage holds {share:.0%} of the question's words, with similarity {best_dense:.2f} "
                   f"(at least {rule.threshold_words:.2f})")
        return Support(True, why, tuple(missing) if claim else ())
    shared = shared_words(question, hits[:3])
    if missing:
        reason = f"the corpus never mentions {words_list(missing)}"
    elif shared:
        reason = f"the closest passages share only the word{'s' if len(shared) > 1 else ''} {and_list(shared)} with the question"
    else:
        reason = "the closest passages share no word with the question, and none is close in meaning"
    if apart and not missing:
        shown = math.floor(related * 100) / 100  # rounded down: never shown equal to the threshold it is below
        reason += (f"; few passages are near it in meaning (the closest average a similarity of {shown:.2f}, "
                   f"below {rule.related:.2f})")
    return Support(False, reason, tuple(missing), tuple(shared))
