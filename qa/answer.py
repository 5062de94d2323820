"""ANSWER: deciding, not rendering: the supporting sentence of each passage, the answer sentence,
and the whole "not found" rule (`FoundRule`, `supported`). Rendering is `qa.render`'s.

Pure: handed the ranked hits, each hit's sentences with their cosines, and the score parts.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace

from .lexical import bm25_text, tokenize
from .schema import Answer, Hit, ScoreParts, Span, unit_locator

ANSWER_FROM_TOP = 3  # the answer sentence is chosen among the sentences of the top passages
RANK_PENALTY = 0.15  # per rank below the first, taken off a sentence's cosine when choosing
WORD_BONUS = 0.1  # × the share of the question's words the sentence holds, added when choosing


@dataclass(frozen=True)
class FoundRule:
    """When the corpus supports an answer (calibrated on dev questions and SQuAD questions asked
    of the default corpus; bench/quality.md "Not found"): the best dense score of the top
    passages at or above `threshold`, or at or above `threshold_words` while one of the top 3
    passages holds at least `coverage` of the question's content words."""

    threshold: float = 0.37
    threshold_words: float = 0.30
    coverage: float = 0.5


def decide(question: str, hits: list[Hit], sentences: list[list[tuple[int, int, float]]], parts: ScoreParts,
           units: dict[str, dict] | None = None, rule: FoundRule = FoundRule()) -> Answer:
    """Mark each hit's best sentence, pick the answer sentence and decide `found`.

    Args:
        hits: ranked hits (`Searcher.search_with_scores`).
        sentences: per hit, its sentences as (start_char, end_char, cosine with the question).
        parts: the score parts (`question_dense` and `allowed` decide `found`).
        units: page / paragraph starts by source (`Manifest.units`), to cite the answer
            sentence by its own page or paragraphs.
    """
    units = units or {}
    marked: list[Hit] = []
    words = set(tokenize(question))
    best: tuple[float, int, int, int] | None = None  # (choice score, hit index, start, end)
    for h, (hit, sents) in enumerate(zip(hits, sentences)):
        if not sents:
            marked.append(hit)
            continue
        start, end, _ = max(sents, key=lambda s: s[2])
        marked.append(replace(hit, sentence_start=start, sentence_end=end))
        if h < ANSWER_FROM_TOP:
            for a, b, cos in sents:
                held = len(words & set(tokenize(hit.text[a - hit.start_char : b - hit.start_char])))
                choice = cos - RANK_PENALTY * h + WORD_BONUS * held / max(1, len(words))
                if best is None or choice > best[0]:
                    best = (choice, h, a, b)
    found, reason = found_reason(question, hits, parts, rule)
    answer = None
    if best is not None:
        _, h, start, end = best
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
    return Answer(question=question, passages=marked, answer=answer, found=found, reason=reason)


def word_coverage(question: str, hits: list[Hit]) -> float:
    """The largest share of the question's content words (stemmed, no stop words) that one of
    `hits` holds in its section title or text; 0.0 for a question without such words."""
    words = set(tokenize(question, content_only=True))
    if not words:
        return 0.0
    return max((len(words & set(tokenize(bm25_text(h)))) / len(words) for h in hits), default=0.0)


def supported(question: str, hits: list[Hit], parts: ScoreParts, rule: FoundRule = FoundRule()) -> bool:
    """Whether the corpus supports an answer: the best dense score of any allowed passage
    clears `rule.threshold`, or clears the lower `rule.threshold_words` while one of the top 3
    passages holds at least `rule.coverage` of the question's words."""
    return found_reason(question, hits, parts, rule)[0]


def found_reason(question: str, hits: list[Hit], parts: ScoreParts, rule: FoundRule = FoundRule()) -> tuple[bool, str]:
    """`supported`, and why, in terms a reader can check (the `reason` of an Answer)."""
    if not hits:
        return False, "no passage to search"
    dense = parts.question_dense[parts.allowed]
    best = float(dense.max()) if len(dense) else 0.0
    if best >= rule.threshold:
        return True, f"a passage is close in meaning to the question (similarity {best:.2f}, at least {rule.threshold:.2f})"
    coverage = word_coverage(question, hits[:3])
    if best >= rule.threshold_words and coverage >= rule.coverage:
        return True, (
            f"a top passage holds {coverage:.0%} of the question's words, with similarity {best:.2f} "
            f"(at least {rule.threshold_words:.2f})"
        )
    return False, (
        f"no passage is close in meaning (best similarity {best:.2f}, below {rule.threshold:.2f}) "
        f"and no top passage holds {rule.coverage:.0%} of the question's words ({coverage:.0%} at most)"
    )
