"""ANSWER: deciding, not rendering: the supporting sentence of each passage, the answer sentence,
and the whole "not found" rule (`FoundRule`, `supported`). Rendering is `qa.render`'s.

Pure: handed the ranked hits, each hit's sentences with their cosines, and the score parts.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass, replace

from .lexical import tokenize
from .notfound import Support, coverage, decide_support
from .schema import Answer, Hit, ScoreParts, Span, unit_locator



@dataclass(frozen=True)
class SentenceChoice:
    """How the answer sentence is chosen among the sentences of the `top` shown passages (fitted
    on the dev splits of the benchmark corpora; bench/quality.md "Answer-sentence choice"). A
    sentence scores its cosine with the question, minus `rank_penalty` per rank below the first,
    plus `word_bonus` × the share of the question's words it holds, plus `new_bonus` × the share
    of `new_cap` content words it adds to the question's, plus `type_bonus` when it holds what
    the question asks for (a name for who, a date for when, a number for how many).
    `window`: a sentence is cited with the next one when that one continues it (starts with a
    pronoun, a connective or a lower-case word)."""

    top: int = 3
    rank_penalty: float = 0.15
    word_bonus: float = 0.1
    new_bonus: float = 0.0
    new_cap: int = 6
    type_bonus: float = 0.0
    focus_bonus: float = 0.0
    window: int = 0  # 1: with the next sentence when it continues this one; 2: also the one before; 3: 2 + the next always
    setup_words: int = -1  # with a window: a sentence adding at most this many words to the question's takes the next one
    join_chars: int = 0  # with a window: the next sentence is joined when both together are at most this long
    by_shown_rank: bool = False  # rank = the hit's shown rank, not its passage's rank before merging


@dataclass(frozen=True)
class Candidate:
    """A sentence (or a sentence and the one continuing it) that could answer."""

    hit: int
    start: int
    end: int
    cos: float
    rank: int
    held: float  # share of the question's words it holds
    new: float  # content words it adds to the question's, as a share of `new_cap`
    typed: bool  # holds what the question asks for
    focus: float  # share of the question's words it holds, each weighted by how few candidates hold it


_CONTINUING = frozenset(
    "it its this these that those they their them he she his her hence thus therefore so such then also "
    "however but and or which otherwise instead here there".split()
)
_WHO = re.compile(r"^\s*(who|whom|whose)\b|\bwhich (person|people|leader|man|woman|organi[sz]ation|group|company|countr)", re.I)
_WHEN = re.compile(r"\b(when|what year|which year|what date|since when)\b", re.I)
_COUNT = re.compile(r"\b(how (many|much|long|old|far|large|big|often)|what (percentage|number|share|size))\b", re.I)
_WHERE = re.compile(r"^\s*where\b|\b(which|what) (countr|cit|place|town|region)", re.I)
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)s?\b|\b(January|February|March|April|May|June|July|August|"
                   r"September|October|November|December|century)\b")
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|hundreds?|"
                     r"thousands?|millions?|billions?|dozens?|half|percent)\b", re.I)
_NAME = re.compile(r"\b[A-Z][\w’'-]+(?:\s+(?:[A-Z][\w’'-]+|al-\w+|van|von|de|bin))+")


def asks_for(question: str) -> frozenset[str]:
    """What the question asks for: "who" (a name), "when" (a date), "count" (a number),
    "where" (a place name); empty for any other question."""
    kinds = {k for k, rx in (("who", _WHO), ("when", _WHEN), ("count", _COUNT), ("where", _WHERE))
             if rx.search(question)}
    return frozenset(kinds)


def holds_kind(text: str, kinds: frozenset[str], question: str) -> bool:
    """Whether `text` holds one of `kinds`: a name (capitalised words in a row, not all the
    question's) for who / where, a year or month for when, a number for count."""
    if "when" in kinds and _YEAR.search(text):
        return True
    if "count" in kinds and _NUMBER.search(text):
        return True
    if kinds & {"who", "where"}:
        asked = {w.lower() for w in re.findall(r"\w+", question)}
        return any(any(w.lower() not in asked for w in re.findall(r"\w+", m.group())) for m in _NAME.finditer(text))
    return False


def continues(text: str) -> bool:
    """Whether a sentence continues the one before it (a pronoun, a connective, lower case)."""
    first = re.match(r"[\"'“‘(]?([^\W\d_]+)", text)
    return bool(first) and (first.group(1)[0].islower() or first.group(1).lower() in _CONTINUING)


def candidates(question: str, hits: list[Hit], sentences: list[list[tuple]],
               choice: SentenceChoice | None = None) -> list[Candidate]:
    """Every sentence of the `choice.top` shown passages (with `choice.window`, joined to the
    sentences next to it that continue it), with what the choice scores."""
    choice = choice or SentenceChoice()
    words = set(tokenize(question))
    content = set(tokenize(question, content_only=True)) | words
    kinds = asks_for(question)
    raw = []  # (hit, start, end, cos, rank, text)
    for h, (hit, sents) in enumerate(zip(hits, sentences)):
        if h >= choice.top:
            break
        spans = [(a, b, cos, h if choice.by_shown_rank or not rest else rest[0]) for a, b, cos, *rest in sents]
        texts = [hit.text[a - hit.start_char : b - hit.start_char] for a, b, _, _ in spans]

        def joined(i: int, always: bool = False) -> bool:
            """Sentence i continues sentence i - 1, right after it in one paragraph."""
            gap = hit.text[spans[i - 1][1] - hit.start_char : spans[i][0] - hit.start_char]
            return (i > 0 and not gap.strip() and gap.count("\n") < 2
                    and (always or texts[i - 1].endswith(":") or continues(texts[i])))

        for i, (a, b, cos, place) in enumerate(spans):
            if not choice.by_shown_rank and place >= choice.top:
                continue
            first, last = i, i
            if choice.window >= 2 and joined(i):
                first = i - 1
            setup = choice.setup_words >= 0 and len(set(tokenize(texts[i], content_only=True)) - content) <= choice.setup_words
            short = i + 1 < len(spans) and spans[i + 1][1] - a <= choice.join_chars
            if choice.window >= 1 and i + 1 < len(spans) and joined(i + 1, always=choice.window >= 3 or setup or short):
                last = i + 1
            start, end = spans[first][0], spans[last][1]
            raw.append((h, start, end, cos, place, hit.text[start - hit.start_char : end - hit.start_char]))
    held = [set(tokenize(t)) for *_, t in raw]
    # the question's words weighted by how few candidates hold them (a word every sentence holds
    # names the topic, one sentence's word names what is asked about)
    counts = {w: sum(w in x for x in held) for w in words}
    weight = {w: math.log(1 + len(raw) / n) for w, n in counts.items() if n}
    total = sum(weight.values())
    out = []
    for (h, start, end, cos, place, text), have in zip(raw, held):
        out.append(Candidate(
            hit=h, start=start, end=end, cos=cos, rank=place,
            held=len(words & have) / max(1, len(words)),
            new=min(choice.new_cap, len(set(tokenize(text, content_only=True)) - content)) / max(1, choice.new_cap),
            typed=bool(kinds) and holds_kind(text, kinds, question),
            focus=sum(v for w, v in weight.items() if w in have) / total if total else 0.0,
        ))
    return out


def choice_score(c: Candidate, choice: SentenceChoice) -> float:
    return (c.cos - choice.rank_penalty * c.rank + choice.word_bonus * c.held + choice.new_bonus * c.new
            + choice.type_bonus * c.typed + choice.focus_bonus * c.focus)


def choose_answer(question: str, hits: list[Hit], sentences: list[list[tuple]],
                  choice: SentenceChoice | None = None) -> tuple[int, int, int] | None:
    """The answer sentence as (hit index, start_char, end_char), or None when no top passage has
    a sentence. `sentences` as for `decide`."""
    choice = choice or SentenceChoice()
    best = max(candidates(question, hits, sentences, choice), key=lambda c: choice_score(c, choice), default=None)
    return (best.hit, best.start, best.end) if best else None


@dataclass(frozen=True)
class FoundRule:
    """When the corpus supports an answer (calibrated on the dev splits of the benchmark corpora;
    bench/quality.md "Issue 10"): the best dense score of the top passages at or above
    `threshold`, or at or above `threshold_words` while one of the top 3 passages holds at least
    `coverage` of the question's content words — and, when the question names something the
    corpus never mentions (`qa.notfound`), at or above `threshold_missing`."""

    threshold: float = 0.37
    threshold_words: float = 0.33
    coverage: float = 0.5
    threshold_missing: float = 0.60  # a question word the corpus never mentions: found only from here


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
    best dense score of any allowed passage, the words of the top passages and the corpus's words."""
    dense = parts.question_dense[parts.allowed]
    best = float(dense.max()) if len(dense) else 0.0
    return decide_support(question, hits, best, rule, vocabulary, model_path)
