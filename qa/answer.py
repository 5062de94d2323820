"""ANSWER: deciding, not rendering: the supporting sentence of each passage, the answer sentence,
and the whole "not found" rule (`FoundRule`, `supported`). Rendering is `qa.render`'s.

Pure: handed the ranked hits, each hit's sentences with their cosines, and the score parts.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, replace

import numpy as np

from .lexical import tokenize
from .notfound import Support, coverage, decide_support
from .schema import Answer, Hit, ScoreParts, Span, unit_locator


@dataclass(frozen=True)
class SentenceChoice:
    """How the answer is chosen among the sentences of the `top` passages (fitted on the dev
    splits of the benchmark corpora; bench/quality.md "Answer-sentence choice"): the largest
    sentence cosine, minus `rank_penalty` per rank below the first, plus `word_bonus` × the share
    of the question's words the answer holds. With `window`, a sentence is cited together with the
    sentences next to it that continue it (`continues`: a pronoun, a connective, lower case, or the
    one before ends with a colon), and with the next one whenever both together are at most
    `join_chars` long (0: never) — both within one paragraph; with `across_breaks`, a lead-in
    ending with a colon and a next sentence opening in lower case ("createdb: command not found"
    then "then PostgreSQL was not installed properly.") are joined across a paragraph break too
    (a blank line, a code block); with `phrases`, a sentence opening with a connective phrase
    ("By comparison", "Generally speaking") continues the one before. The citation stays one exact
    span of the passage."""

    top: int = 3
    rank_penalty: float = 0.15
    word_bonus: float = 0.2
    window: bool = True
    join_chars: int = 350
    across_breaks: bool = True
    phrases: bool = True


@dataclass(frozen=True)
class Candidate:
    """A span that could be the answer: a sentence, or with `SentenceChoice.window` a sentence and
    its neighbours that continue it; `cos` and `rank` are the sentence's own."""

    hit: int
    start: int
    end: int
    cos: float
    rank: int
    held: float  # share of the question's words the span holds


# words that open a sentence leaning on the one before it
_CONTINUING = frozenset(
    "it its this these that those they their them he she his her hence thus therefore so such then also "
    "however but and or which otherwise instead here there".split()
)
_FIRST_WORD = re.compile(r"[\"'“‘(]?([^\W\d_]+)")
# phrases that open a sentence answering the one before ("By comparison, the project has 608 times...")
_CONTINUING_PHRASE = re.compile(
    r"(by comparison|generally|as a result|in that case|in this case|for example|in other words|to achieve this|"
    r"as the message|in short|for this reason|because of this)\b", re.I)


def continues(text: str, phrases: bool = True) -> bool:
    """Whether a sentence continues the one before it: it opens with a pronoun or a connective
    ("It", "They", "Hence"...), a connective phrase ("By comparison", "Generally speaking") or a
    lower-case word (not a list item, a number or code); `phrases`: False leaves the phrases out."""
    first = _FIRST_WORD.match(text)
    return bool(first) and (first.group(1)[0].islower() or first.group(1).lower() in _CONTINUING
                            or (phrases and bool(_CONTINUING_PHRASE.match(text))))


def opens_lower(text: str) -> bool:
    """Whether a sentence opens with a lower-case word ("then PostgreSQL was not installed"):
    it goes on with the sentence before it even after a paragraph break."""
    first = _FIRST_WORD.match(text)
    return bool(first) and first.group(1)[0].islower()


def candidates(question: str, hits: list[Hit], sentences: list[list[tuple]],
               choice: SentenceChoice | None = None) -> list[Candidate]:
    """Every sentence of the `choice.top` passages (ranked before merging) as an answer
    candidate, widened to its neighbours as `choice.window` says. `sentences` as for `decide`."""
    choice = choice or SentenceChoice()
    words = set(tokenize(question))
    out: list[Candidate] = []
    for h, (hit, sents) in enumerate(zip(hits, sentences)):
        spans = [(a - hit.start_char, b - hit.start_char) for a, b, *_ in sents]  # in hit.text
        texts = [hit.text[a:b] for a, b in spans]

        def joins(i: int, short: bool = False) -> bool:
            """Sentence i is cited with sentence i - 1: right after it in one paragraph, and it
            continues it, or the one before ends with a colon, or (`short`) both fit in join_chars;
            with `across_breaks`, after a paragraph break when the one before ends with a colon or
            sentence i opens in lower case."""
            gap = hit.text[spans[i - 1][1] : spans[i][0]]
            if gap.strip():
                return False
            lead_in = texts[i - 1].endswith(":")
            if choice.across_breaks and (lead_in or opens_lower(texts[i])):
                return True
            return gap.count("\n") < 2 and (continues(texts[i], choice.phrases) or lead_in
                                              or (short and spans[i][1] - spans[i - 1][0] <= choice.join_chars))

        for i, (a, b, cos, *rest) in enumerate(sents):  # rest: the rank of the passage it came from
            place = rest[0] if rest else h
            if place >= choice.top:
                continue
            first = i - 1 if choice.window and i > 0 and joins(i) else i
            last = i + 1 if choice.window and i + 1 < len(sents) and joins(i + 1, short=True) else i
            start, end = spans[first][0], spans[last][1]
            held = set(tokenize(hit.text[start:end]))
            out.append(Candidate(hit=h, start=start + hit.start_char, end=end + hit.start_char, cos=cos,
                                 rank=place, held=len(words & held) / max(1, len(words))))
    return out


def choice_score(c: Candidate, choice: SentenceChoice) -> float:
    """What `choose_answer` maximises."""
    return c.cos - choice.rank_penalty * c.rank + choice.word_bonus * c.held


def choose_answer(question: str, hits: list[Hit], sentences: list[list[tuple]],
                  choice: SentenceChoice | None = None) -> tuple[int, int, int] | None:
    """The answer as (hit index, start_char, end_char), or None when no top passage has a
    sentence. `sentences` as for `decide`."""
    choice = choice or SentenceChoice()
    best = max(candidates(question, hits, sentences, choice), key=lambda c: choice_score(c, choice), default=None)
    return (best.hit, best.start, best.end) if best else None


@dataclass(frozen=True)
class FoundRule:
    """When the corpus supports an answer (calibrated on the dev splits of the benchmark corpora;
    bench/quality.md "Issue 10"): the best dense score of the top passages at or above
    `threshold`, or at or above `threshold_words` while one of the top 3 passages holds at least
    `coverage` of the question's content words — and, when the question names something the
    corpus never mentions (`qa.notfound`), at or above `threshold_missing` (`threshold_statement`
    for a statement, a claim to check rather than a question). In a corpus of many
    passages, the question must also be on the corpus's subject: the mean dense score of its
    `related_count` closest passages at or above `related` (one sentence that comes close by
    chance among tens of thousands, "minimum temperature 6-12oC" for a question about water
    boiling on Everest, is not enough)."""

    threshold: float = 0.37
    threshold_words: float = 0.33
    coverage: float = 0.5
    threshold_missing: float = 0.60  # a question word the corpus never mentions: found only from here
    threshold_statement: float = 0.40  # ... in a statement (a claim to check, `qa.notfound.statement`): from here
    related: float = 0.32  # the mean dense score of the closest passages (`related_count`), at least
    related_per: int = 50  # one closest passage counted per this many passages searched ...
    related_max: int = 10  # ... at most this many (below 2 × related_per passages: the best one alone)

    def related_count(self, searched: int) -> int:
        """How many of the closest passages `related` averages over, in a search of `searched`
        passages: one per `related_per`, between 1 and `related_max`. Pure."""
        return max(1, min(self.related_max, searched // max(1, self.related_per)))


def decide(question: str, hits: list[Hit], sentences: list[list[tuple]], parts: ScoreParts,
           units: dict[str, dict] | None = None, rule: FoundRule = FoundRule(), vocabulary=None,
           model_path: str | None = None, choice: SentenceChoice | None = None) -> Answer:
    """Mark each hit's best sentence, pick the answer sentence and decide `found` (and why not).

    Args:
        hits: ranked hits (`Searcher.search_with_scores`).
        sentences: per hit, its sentences as (start_char, end_char, cosine with the question[,
            rank before merging of the passage it came from]).
        parts: the score parts (`question_dense` and `allowed` decide `found`).
        units: page / paragraph starts by source (`Manifest.units`), to cite the answer
            sentence by its own page or paragraphs.
        vocabulary: the corpus's BM25 stems (`IndexReader.vocabulary()`), for the words it never
            mentions; None: that rule is off. model_path: the model's folder (its vocabulary gives
            the common English words). choice: how the answer sentence is chosen.
    """
    units = units or {}
    marked: list[Hit] = []
    for hit, sents in zip(hits, sentences):
        if sents:
            start, end = max(sents, key=lambda s: s[2])[:2]
            hit = replace(hit, sentence_start=start, sentence_end=end)
        marked.append(hit)
    best = choose_answer(question, hits, sentences, choice)
    support = supported(question, hits, parts, rule, vocabulary, model_path)
    answer = None
    if best is not None:
        h, start, end = best
        # the answer's passage highlights the answer sentence itself
        hit = marked[h] = replace(marked[h], sentence_start=start, sentence_end=end)
        text = hit.text[start - hit.start_char : end - hit.start_char]
        first = hit.start_line + hit.text.count("\n", 0, start - hit.start_char)
        page, locator = hit.page, hit.locator
        unit = units.get(hit.source)
        if unit and hit.locator:  # the sentence's own page or paragraphs, not the passage's
            locator = unit_locator(unit["unit"], unit["starts"], start, end)
            if page is not None:
                page = bisect_right(unit["starts"], start)
        answer = Span(
            text=text,
            source=hit.source,
            start_line=first,
            end_line=first + text.count("\n"),
            start_char=start,
            end_char=end,
            page=page,
            locator=locator,
        )
    return Answer(question=question, passages=marked, answer=answer, found=support.found,
                  reason=support.reason or "")


def word_coverage(question: str, hits: list[Hit]) -> float:
    """The largest share of the question's content words (stemmed, no stop words) that one of
    `hits` holds in its section title or text; 0.0 for a question without such words."""
    return coverage(question, hits)


def supported(question: str, hits: list[Hit], parts: ScoreParts, rule: FoundRule = FoundRule(),
              vocabulary=None, model_path: str | None = None) -> Support:
    """Whether the corpus supports an answer, and why not (`qa.notfound.decide_support`), from the
    best dense score of any allowed passage, the mean of the closest ones (`related_score`), the
    words of the top passages and the corpus's words."""
    dense = parts.question_dense[parts.allowed]
    best = float(dense.max()) if len(dense) else 0.0
    return decide_support(question, hits, best, rule, vocabulary, model_path,
                          related=related_score(dense, parts.searched or len(dense), rule))


def related_score(dense: np.ndarray, searched: int, rule: FoundRule = FoundRule()) -> float:
    """The mean of the `rule.related_count(searched)` largest of `dense` (the dense scores of the
    passages searched, or of the candidates of an approximate index); 0.0 when there are none."""
    if not len(dense):
        return 0.0
    k = min(len(dense), rule.related_count(searched))
    return float(np.mean(np.partition(np.asarray(dense, dtype=np.float64), len(dense) - k)[len(dense) - k :]))
