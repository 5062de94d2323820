"""PRESENT: the answer sentence, the supporting sentence of each passage, the "not found"
decision, and the one renderer of an `Answer` for the terminal, JSON and HTML.

Corpus text is always quoted as it stands, with its citation; nothing is paraphrased.
"""

from __future__ import annotations

import html
import json
import textwrap
from bisect import bisect_right
from dataclasses import replace

from .integrity import STALE_NOTE  # the HTML card says the same with <code>
from .schema import Answer, Hit, Span, cite, unit_locator
from .search import bm25_text, tokenize

ANSWER_FROM_TOP = 3  # the answer sentence is chosen among the sentences of the top passages
RANK_PENALTY = 0.15  # per rank below the first, taken off a sentence's cosine when choosing
WORD_BONUS = 0.1  # × the share of the question's words the sentence holds, added when choosing


def build_answer(question: str, hits: list[Hit], parts: dict, searcher) -> Answer:
    """Mark each hit's best sentence, pick the answer sentence and decide `found`.

    Args:
        hits: ranked hits from `Searcher.search_with_scores`.
        parts: its score parts (the per-sentence cosines are used here).
        searcher: the `Searcher`, for sentence spans and passages.
    """
    sentence_cos = parts["sentence"]
    spans = searcher.data.sentence_spans
    marked: list[Hit] = []
    words = set(tokenize(question))
    best: tuple[float, int, int] | None = None  # (choice score, hit index, sentence id)
    for h, hit in enumerate(hits):
        row = searcher.row_of(hit)
        ids = searcher.sentences_of(row)
        if not ids:
            marked.append(hit)
            continue
        top = max(ids, key=lambda j: sentence_cos[j])
        _, start, end = spans[top]
        marked.append(replace(hit, sentence_start=start, sentence_end=end))
        if h < ANSWER_FROM_TOP:
            for j in ids:
                _, a, b = spans[j]
                held = len(words & set(tokenize(hit.text[a - hit.start_char : b - hit.start_char])))
                choice = float(sentence_cos[j]) - RANK_PENALTY * h + WORD_BONUS * held / max(1, len(words))
                if best is None or choice > best[0]:
                    best = (choice, h, j)
    found = bool(hits) and _supported(question, hits, parts, searcher.params)
    answer = None
    if best is not None:
        _, start, end = spans[best[2]]
        # the answer's passage highlights the answer sentence itself
        hit = marked[best[1]] = replace(marked[best[1]], sentence_start=start, sentence_end=end)
        text = hit.text[start - hit.start_char : end - hit.start_char]
        first = hit.start_line + hit.text.count("\n", 0, start - hit.start_char)
        page, locator = hit.page, hit.locator
        units = searcher.data.manifest.get("units", {}).get(hit.source)
        if units and hit.locator:  # the sentence's own page or paragraphs, not the passage's
            locator = unit_locator(units["unit"], units["starts"], start, end)
            if page is not None:
                page = bisect_right(units["starts"], start)
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
    return Answer(question=question, passages=marked, answer=answer, found=found)


def word_coverage(question: str, hits: list[Hit]) -> float:
    """The largest share of the question's content words (stemmed, no stop words) that one of
    `hits` holds in its section title or text; 0.0 for a question without such words."""
    words = set(tokenize(question, content_only=True))
    if not words:
        return 0.0
    return max((len(words & set(tokenize(bm25_text(h)))) / len(words) for h in hits), default=0.0)


def _supported(question: str, hits: list[Hit], parts: dict, params) -> bool:
    """Whether the corpus supports an answer: the best dense score of any allowed passage
    clears `found_threshold`, or clears the lower `found_threshold_words` while one of
    the top 3 passages holds at least `found_coverage` of the question's words (calibrated on
    dev questions and SQuAD questions asked of the default corpus; see bench/quality.md)."""
    dense = parts.get("question_dense", parts["dense"])[parts["allowed"]]
    best = float(dense.max()) if len(dense) else 0.0
    if best >= params.found_threshold:
        return True
    return best >= params.found_threshold_words and word_coverage(question, hits[:3]) >= params.found_coverage


# --- rendering -----------------------------------------------------------------------------


def to_json(answer: Answer) -> str:
    """The `qa ask --json` document: one JSON object."""
    return json.dumps(answer.to_dict(), ensure_ascii=False, indent=2)


def _score_line(hit: Hit) -> str:
    parts = [f"score {hit.score:.4f}"]
    if hit.dense is not None:
        parts.append(f"dense {hit.dense:.3f}" + (f" (#{hit.dense_rank})" if hit.dense_rank else ""))
    if hit.bm25 is not None:
        parts.append(f"bm25 {hit.bm25:.2f}" + (f" (#{hit.bm25_rank})" if hit.bm25_rank else ""))
    return ", ".join(parts)


def citation(hit_or_span) -> str:
    """`source:Lstart-Lend` (or `source:Ln` for one line; `source p.N` for a PDF page)."""
    return cite(hit_or_span)


def render_text(answer: Answer, color: bool = False, width: int = 100) -> str:
    """The terminal form: the answer sentence with its citation, then the numbered passages,
    each with citation, section and score parts, its supporting sentence emphasised."""
    bold = ("\033[1m", "\033[0m") if color else ("", "")
    mark = ("\033[1;4m", "\033[0m") if color else ("", "")
    out = []
    if not answer.passages:
        return "No passages: the index is empty.\n"
    if answer.found and answer.answer:
        out.append(f"{bold[0]}Answer{bold[1]} ({citation(answer.answer)}):")
        out.append(textwrap.indent(textwrap.fill(answer.answer.text, width - 2), "  "))
        out.append("")
        out.append("Passages:")
    else:
        out.append("Not found: no passage of the corpus clearly answers this question.")
        out.append("Closest passages:")
    if answer.source_changed:
        changed = sorted({h.source for h in answer.passages if h.source_changed}
                         | ({answer.answer.source} if answer.answer and answer.answer.source_changed else set()))
        out.insert(0, f"Note: {', '.join(changed)}: {STALE_NOTE}.\n")
    for hit in answer.passages:
        section = f" — {hit.section}" if hit.section else ""
        out.append(f"\n[{hit.rank}] {bold[0]}{citation(hit)}{bold[1]}{section}  ({_score_line(hit)})")
        if hit.source_changed:
            out.append(f"    ({STALE_NOTE}; the text below is what was indexed)")
        text = hit.text
        if color and hit.sentence_start is not None:
            a, b = hit.sentence_start - hit.start_char, hit.sentence_end - hit.start_char
            text = text[:a] + mark[0] + text[a:b] + mark[1] + text[b:]
        for para in text.split("\n"):
            if para.strip():
                out.append(textwrap.indent(textwrap.fill(para, width - 4), "    "))
    return "\n".join(out) + "\n"


_MARKDOWN_SPECIALS = str.maketrans({c: f"&#{ord(c)};" for c in "\\`*_{}[]()#+-.!|~<>&\"'"})


def escape(text: str) -> str:
    """Text made inert for an HTML-and-Markdown renderer: every character that either language
    treats specially becomes a numeric entity, so corpus text shows exactly as written."""
    return text.translate(_MARKDOWN_SPECIALS).replace("\n", "<br>")


def render_html(answer: Answer, link: callable = None) -> str:
    """The web chat's reply: the answer sentence with its citation first, then the numbered
    source cards (citation, section, score parts, text with the supporting sentence marked).
    Not found: says so, with the closest passages collapsed. `link(hit_or_span)` may return a
    URL for a citation (the source viewer). Every piece of corpus text is escaped."""
    out = []
    if not answer.passages:
        return '<div class="qa-notfound">No passages: the index is empty.</div>'
    cards = "".join(_card(h, link) for h in answer.passages)
    if answer.found and answer.answer:
        span = answer.answer
        rank = next(
            (h.rank for h in answer.passages
             if h.source == span.source and h.start_char <= span.start_char and span.end_char <= h.end_char),
            None,
        )
        source = f' <span class="qa-from">(source [{rank}])</span>' if rank else ""
        out.append(
            '<div class="qa-answer"><div class="qa-label">Answer</div>'
            f"<blockquote>{escape(span.text)}</blockquote>"
            f'<div class="qa-cite">{_cite(span, link)}{source}</div></div>'
        )
        out.append(f'<div class="qa-sources"><div class="qa-sources-title">Sources</div>{cards}</div>')
    else:
        out.append(
            '<div class="qa-notfound">Not found: no passage of the corpus clearly answers this question.</div>'
        )
        out.append(
            f'<details class="qa-closest"><summary>Closest passages ({len(answer.passages)})</summary>{cards}</details>'
        )
    return "".join(out)


def _cite(item, link) -> str:
    """The citation of a Hit or Span, as a link when `link` gives a URL."""
    cite = escape(citation(item))
    url = link(item) if link else None
    if url:
        cite = f'<a class="qa-link" href="{html.escape(url, quote=True)}" target="_blank" rel="noopener">{cite}</a>'
    return cite


def _card(hit: Hit, link) -> str:
    text = hit.text
    if hit.sentence_start is not None:
        a, b = hit.sentence_start - hit.start_char, hit.sentence_end - hit.start_char
        body = f"{escape(text[:a])}<mark>{escape(text[a:b])}</mark>{escape(text[b:])}"
    else:
        body = escape(text)
    section = f' · <span class="qa-section">{escape(hit.section)}</span>' if hit.section else ""
    if hit.source_changed:
        section += '<div class="qa-stale">This file changed since it was indexed; run <code>qa index</code>.</div>'
    return (
        f'<div class="qa-card"><div class="qa-head"><span class="qa-num">[{hit.rank}]</span> '
        f"{_cite(hit, link)}{section}"
        f' <span class="qa-score">{escape(_score_line(hit))}</span></div>'
        f'<div class="qa-text">{body}</div></div>'
    )
