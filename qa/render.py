"""RENDER: the one renderer of an `Answer` for the terminal, JSON and HTML (CLI and web share it).

Corpus text is always quoted as it stands, with its citation; nothing is paraphrased. Displayed
text flows: the source's own line breaks inside a paragraph become spaces (`reflow`).
"""

from __future__ import annotations

import html
import json
import re
import textwrap

from .schema import Answer, Hit, cite


STALE_NOTE = "this file changed since it was indexed; run `qa index`"
"""What a citation of a file whose bytes differ from the indexed ones says (`source_changed`)."""


def to_json(answer: Answer) -> str:
    """The `qa ask --json` document: one JSON object."""
    return json.dumps(answer.to_dict(), ensure_ascii=False)


def _score_line(hit: Hit) -> str:
    parts = [f"score {hit.score:.4f}"]
    if hit.dense is not None:
        parts.append(f"dense {hit.dense:.3f}" + (f" (#{hit.dense_rank})" if hit.dense_rank else ""))
    if hit.bm25 is not None:
        parts.append(f"bm25 {hit.bm25:.2f}" + (f" (#{hit.bm25_rank})" if hit.bm25_rank else ""))
    return ", ".join(parts)


# A single line break inside a paragraph (the source's own wrapping) is shown as a space; a blank
# line, or a break before a list item, stays a break. Same length, so offsets still hold.
_SOFT_BREAK = re.compile(r"(?<![\n])[ \t]*\n(?![ \t]*(?:\n|[-*•+] |\d{1,3}[.)] ))")


def reflow(text: str) -> str:
    """`text` with the source's soft line breaks turned into spaces (length unchanged), so that
    a terminal or a phone wraps it to its own width instead of keeping the file's ragged lines."""
    return _SOFT_BREAK.sub(lambda m: " " * len(m.group(0)), text)


def not_found_line(answer: Answer, scope: list[str] | None = None, all_hint: str = "") -> str:
    """"Not found: no passage of the corpus clearly answers this question (<reason>)."; with
    `scope` (the files or patterns searched) it says that only they were searched, and
    `all_hint` how to search everything."""
    why = f" ({answer.reason})" if answer.reason else ""
    if not scope:
        return f"Not found: no passage of the corpus clearly answers this question{why}."
    named = ", ".join(scope[:5]) + (f" and {len(scope) - 5} more" if len(scope) > 5 else "")
    what = "the chosen document" if len(scope) == 1 else f"the {len(scope)} chosen documents"
    return f"Not found in {what} ({named}): no passage there clearly answers this question{why}." + (
        f" {all_hint}" if all_hint else ""
    )


def citation(hit_or_span) -> str:
    """`source:Lstart-Lend` (or `source:Ln` for one line; `source p.N` for a PDF page)."""
    return cite(hit_or_span)


def render_text(answer: Answer, color: bool = False, width: int = 100, scores: bool = False,
                scope: list[str] | None = None) -> str:
    """The terminal form: the answer sentence with its citation, then the numbered passages,
    each with citation and section (and its score parts with `scores`), its supporting sentence
    emphasised; text re-wrapped to `width`. `scope`: the source patterns searched, if not all."""
    bold = ("\033[1m", "\033[0m") if color else ("", "")
    mark = ("\033[1;4m", "\033[0m") if color else ("", "")
    out = []
    if not answer.passages:
        return "No passages: the index is empty.\n"
    if answer.found and answer.answer:
        out.append(f"{bold[0]}Answer{bold[1]} ({citation(answer.answer)}):")
        out.append(textwrap.indent(textwrap.fill(" ".join(answer.answer.text.split()), width - 2), "  "))
        out.append("")
        out.append("Passages:")
    else:
        out.append(not_found_line(answer, scope, "Leave out --source to search every file."))
        out.append("Related passages (none of them answers it):")
    if answer.source_changed:
        changed = sorted({h.source for h in answer.passages if h.source_changed}
                         | ({answer.answer.source} if answer.answer and answer.answer.source_changed else set()))
        out.insert(0, f"Note: {', '.join(changed)}: {STALE_NOTE}.\n")
    for hit in answer.passages:
        section = f" — {hit.section}" if hit.section else ""
        why = f"  ({_score_line(hit)})" if scores else ""
        out.append(f"\n[{hit.rank}] {bold[0]}{citation(hit)}{bold[1]}{section}{why}")
        if hit.source_changed:
            out.append(f"    ({STALE_NOTE}; the text below is what was indexed)")
        text = reflow(hit.text)
        if color and hit.sentence_start is not None:
            a, b = hit.sentence_start - hit.start_char, hit.sentence_end - hit.start_char
            text = text[:a] + mark[0] + text[a:b] + mark[1] + text[b:]
        for para in text.split("\n"):
            if para.strip():
                out.append(textwrap.indent(textwrap.fill(" ".join(para.split()), width - 4), "    "))
    return "\n".join(out) + "\n"


_MARKDOWN_SPECIALS = str.maketrans({c: f"&#{ord(c)};" for c in "\\`*_{}[]()#+-.!|~<>&\"'"})


def escape(text: str) -> str:
    """Text made inert for an HTML-and-Markdown renderer: every character that either language
    treats specially becomes a numeric entity, so corpus text shows exactly as written."""
    return text.translate(_MARKDOWN_SPECIALS).replace("\n", "<br>")


def escape_flowing(text: str) -> str:
    """`escape` for displayed corpus text: the source's soft line breaks become spaces first."""
    return escape(reflow(text))


def render_html(answer: Answer, link: callable = None, scope: list[str] | None = None) -> str:
    """The web chat's reply: the answer sentence with its citation first, then the numbered
    source cards (citation, section, score parts, text with the supporting sentence marked).
    Not found: says so, with the closest passages collapsed. `link(hit_or_span)` may return a
    URL for a citation (the source viewer). `scope`: the files searched, if not all. Every piece
    of corpus text is escaped; score parts are folded under "why this passage"."""
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
            f"<blockquote>{escape_flowing(span.text)}</blockquote>"
            f'<div class="qa-cite">{_cite(span, link)}{source}</div></div>'
        )
        out.append(f'<div class="qa-sources"><div class="qa-sources-title">Sources</div>{cards}</div>')
    else:
        hint = "Clear “Only these documents” under Options to search them all."
        out.append(f'<div class="qa-notfound">{escape(not_found_line(answer, scope, hint))}</div>')
        out.append(
            f'<details class="qa-closest"><summary>Related passages, none of them answers it '
            f"({len(answer.passages)})</summary>{cards}</details>"
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
        body = f"{escape_flowing(text[:a])}<mark>{escape_flowing(text[a:b])}</mark>{escape_flowing(text[b:])}"
    else:
        body = escape_flowing(text)
    section = f' · <span class="qa-section">{escape(hit.section)}</span>' if hit.section else ""
    if hit.source_changed:
        section += '<div class="qa-stale">This file changed since it was indexed; run <code>qa index</code>.</div>'
    return (
        f'<div class="qa-card"><div class="qa-head"><span class="qa-num">[{hit.rank}]</span> '
        f"{_cite(hit, link)}{section}</div>"
        f'<div class="qa-text">{body}</div>'
        f'<details class="qa-why"><summary>why this passage</summary>'
        f'<span class="qa-score">{escape(_score_line(hit))}</span></details></div>'
    )
