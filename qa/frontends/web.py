"""The web chat: a Gradio app over `qa.retriever`, plus a source viewer served by the same server.

`build_app()` returns the Gradio Blocks without launching it, with the viewer and library routes in its
`qa_routes`; `server.create_app()` mounts it (with `theme()`, `CSS` and `HEAD`) beside the REST
API and MCP. The app exposes one public API endpoint, `ask` (question, k), that returns exactly
the dict `qa ask --json` prints.

Safety: every piece of corpus text and every question is HTML-escaped before it reaches a page
(`render.escape`); the viewer only shows files of the index's corpus (no `..`, no absolute path,
no symlink leading out); the page loads nothing from outside localhost (system fonts, no CDN,
analytics off); no share links; `auth` protects the UI, the API and the viewer.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import secrets
from pathlib import PurePosixPath
from typing import Callable
from urllib.parse import quote

from ..config import Settings
from ..errors import BadInput, QAError
from ..render import escape, render_html
from ..schema import unit_locator
from .service import NotInCorpus, resolve_source  # noqa: F401  (re-exported)
from ..security import clean_text

log = logging.getLogger(__name__)

DEFAULT_K = 5
MAX_UI_K = 20
# The model is CPU-bound and shared (loaded once per process). With 50 clients on 2 cores, 4
# questions at a time gave the best p50 and p95 (1, 2 and 8 measured too: bench/LOAD.md); the
# rest wait in Gradio's queue, large enough that none of 50+ concurrent clients is turned away.
CONCURRENCY = 4
QUEUE_SIZE = 512
SHOWN_QUESTION_CHARS = 2000
# Gradio keeps a SessionState (a copy of every component's config, tens of KB) per session, and
# every API call is a new session: at its default of 10,000 sessions a server's RSS grew 40% in
# a 10-minute soak (bench/soak.py). The chat keeps no server-side state (no gr.State), so a few
# hundred recent sessions are plenty.
STATE_SESSIONS = 256

def _asset(name: str) -> str:
    """A file of the page (CSS, script, HTML) from the package's `static/` folder."""
    from importlib.resources import files

    return (files("qa") / "static" / name).read_text(encoding="utf-8")


NCRI_EXAMPLES = [
    "Who leads the NCRI?",
    "When was the PMOI founded?",
    "What does the NCRI platform include?",
    "What is the boiling point of mercury?",
]

CSS = _asset("chat.css")


# After a reply: scroll the chat (not the page) so the last question sits at the top, with the
# answer under it (Gradio's autoscroll would show the bottom of the last source card instead).
SCROLL_TO_LAST_QUESTION = _asset("scroll.js")


# Page-level CSS that Gradio would scope under `.contain` (and so never match) if given as `css`.
HEAD = _asset("head.html") + "<script>\n" + _asset("copy.js") + "</script>\n"


def theme():
    """Gradio's Soft theme with system fonts only: the stock themes load Google Fonts."""
    import gradio as gr

    return gr.themes.Soft(
        primary_hue="blue",
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


# --- citations and the source viewer --------------------------------------------------------


def source_url(item) -> str:
    """The viewer URL of a Hit or Span: the file, its cited lines and its marked sentence.
    Relative, so it works under any root path; the fragment scrolls to the first cited line."""
    url = f"source?file={quote(item.source, safe='/')}&lines={item.start_line}-{item.end_line}"
    start = getattr(item, "sentence_start", None)
    end = getattr(item, "sentence_end", None)
    if start is None and not hasattr(item, "sentence_start"):  # a Span: its own chars are the mark
        start, end = item.start_char, item.end_char
    if start is not None and end is not None:
        url += f"&mark={start}-{end}"
    locator = getattr(item, "locator", "") or ""
    if locator.startswith("¶"):  # a DOCX citation: the viewer shows paragraphs
        return url + f"#P{locator[1:].split('-')[0]}"
    return url + f"#L{item.start_line}"


def _parse_range(value: str | None) -> tuple[int, int] | None:
    """'a-b' (or 'a') as a pair of ints, None when absent or malformed."""
    if not value:
        return None
    a, _, b = value.partition("-")
    try:
        start = int(a)
        end = int(b) if b else start
    except ValueError:
        return None
    return (start, end) if 0 <= start <= end else None


def indexed_segments(passages) -> list[tuple[int, int, str]]:
    """The text of a file as it was indexed, from its stored passages: (first line, start char,
    text) of each run of overlapping or touching passages, in file order."""
    segments: list[list] = []
    for p in sorted(passages, key=lambda p: p.start_char):
        if segments and p.start_char <= segments[-1][1] + len(segments[-1][2]):
            line, start, text = segments[-1]
            segments[-1][2] = text + p.text[start + len(text) - p.start_char :]
        else:
            segments.append([p.start_line, p.start_char, p.text])
    return [tuple(s) for s in segments]


def _marked(text: str, start: int, mark: tuple[int, int] | None) -> str:
    """`text` (which starts at offset `start` of the document) escaped, the part inside `mark`
    wrapped in <mark>."""
    end = start + len(text)
    if mark and mark[0] < end and mark[1] > start:
        a, b = max(mark[0], start) - start, min(mark[1], end) - start
        return f"{html.escape(text[:a])}<mark>{html.escape(text[a:b])}</mark>{html.escape(text[b:])}"
    return html.escape(text)


def render_source_page(source: str, text: str, lines: tuple[int, int] | None, mark: tuple[int, int] | None,
                       changed: bool, nonce: str, units: tuple[int, ...] | list[int] = (), unit: str = "",
                       segments: list[tuple[int, int, str]] | None = None) -> str:
    """The viewer page, all text escaped; `nonce` lets only our own script run.

    Plain text, Markdown and HTML: every line numbered and anchored (#L12), the cited lines
    highlighted. DOCX (`unit` "paragraph", `units` their start offsets): every paragraph numbered
    ¶N and anchored (#P7), the cited paragraphs highlighted. PDF (`unit` "page"): lines, with a
    break and the page number where each page begins (#page-2). The cited sentence is marked.

    `changed`: the file differs from what was indexed; then `segments` (see `indexed_segments`)
    are shown as numbered lines instead of `text`, with a note, or, without segments, the note
    says the indexed text cannot be shown.
    """
    if changed and segments:
        text, units, unit = "", (), ""
    line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    first, last = lines or (0, -1)
    cited = (f"line {first}" if first == last else f"lines {first}–{last}") if lines else "whole file"
    span = None
    if lines and 1 <= first <= len(line_starts):
        end_line = min(last, len(line_starts))
        span = (line_starts[first - 1], line_starts[end_line] - 1 if end_line < len(line_starts) else len(text))
        if units:
            cited = unit_locator(unit, list(units), span[0], max(span[0] + 1, span[1]))
    out = []
    if unit == "paragraph" and units:
        bounds = list(units) + [len(text) + 2]
        for n in range(len(units)):
            start, end = bounds[n], bounds[n + 1] - 2
            hl = span is not None and start <= span[1] and end >= span[0]
            body = _marked(text[start:end], start, mark)
            out.append(
                f'<div class="para{" hl" if hl else ""}" id="P{n + 1}"><a class="ln" href="#P{n + 1}" '
                f'aria-label="paragraph {n + 1}">¶{n + 1}</a><span class="tx">{body or " "}</span></div>'
            )
        kind = "paragraphs"
    elif changed and segments:
        for i, (first_line, offset, part) in enumerate(segments):
            if i:
                out.append('<div class="line gap"><span class="ln">…</span><span class="tx">(not indexed)</span></div>')
            for number, line in enumerate(part.split("\n"), start=first_line):
                cls = "line hl" if first <= number <= last else "line"
                out.append(
                    f'<div class="{cls}" id="L{number}"><a class="ln" href="#L{number}" aria-label="line {number}">'
                    f'{number}</a><span class="tx">{_marked(line, offset, mark) or " "}</span></div>'
                )
                offset += len(line) + 1
        kind = "lines"
    else:
        pages = {start: n + 1 for n, start in enumerate(units)} if unit == "page" else {}
        for number, start in enumerate(line_starts, start=1):
            line = text[start : line_starts[number] - 1] if number < len(line_starts) else text[start:]
            if start in pages:
                out.append(f'<div class="page-break" id="page-{pages[start]}">Page {pages[start]}</div>')
            cls = "line hl" if first <= number <= last else "line"
            out.append(
                f'<div class="{cls}" id="L{number}"><a class="ln" href="#L{number}" aria-label="line {number}">'
                f'{number}</a><span class="tx">{_marked(line, start, mark) or " "}</span></div>'
            )
        kind = "lines"
    note = ""
    if changed:
        shown = (
            "Shown below: the text as it was indexed (its passages), so the citation still points at what was cited."
            if segments
            else "The indexed text cannot be shown (no stored passage of this file): below is the file as it is now, "
            "where the cited lines may have moved."
        )
        note = f'<p class="warn">This file changed since it was indexed; run <code>qa index</code>. {shown}</p>'

    from string import Template

    return Template(_asset("viewer.html")).substitute(
        title=html.escape(source), cited=html.escape(cited), note=note, body="".join(out), kind=kind,
        nonce=nonce, css=_asset("viewer.css"),
        download=html.escape(f"source/raw?file={quote(source, safe='/')}", quote=True),
    )


def _authorised(request) -> bool:
    """Gradio's own login check, for a route Gradio does not guard itself."""
    app = request.app
    if getattr(app, "auth", None) is None and getattr(app, "auth_dependency", None) is None:
        return True
    cookie_id = getattr(app, "cookie_id", "")
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
        f"access-token-unsecure-{cookie_id}"
    )
    return app.tokens.get(token) is not None


def _viewer_route(settings: Settings, get_retriever: Callable) -> list:
    """Starlette routes for GET /source?file=…&lines=a-b&mark=x-y (the viewer) and
    GET /source/raw?file=… (the original file)."""
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    from ..retriever import read_source

    def page(status: int, message: str, nonce: str = "") -> HTMLResponse:
        return HTMLResponse(
            f"<!doctype html><meta charset='utf-8'><title>qa: {status}</title>"
            f"<p>{html.escape(message)}</p><p><a href='./'>Back to the chat</a></p>",
            status_code=status,
            headers=_viewer_headers(nonce),
        )

    def load(request):
        """(name, index's files, path, bytes, indexed segments) of the requested corpus file
        (path None and no bytes: indexed, then removed), or the error page."""
        if not _authorised(request):
            return page(401, "Log in first: open the chat page and sign in.")
        requested = request.query_params.get("file", "")
        segments = None
        try:
            retriever = get_retriever()
            files = retriever.manifest.get("files", {})
            if requested in files:
                segments = indexed_segments(retriever.passages_of(requested))
            path = resolve_source(settings.corpus_dir, files, requested)
            return requested, files, path, path.read_bytes(), segments
        except BadInput as exc:  # NotInCorpus too
            if segments:  # indexed, then removed from the corpus: show what was indexed
                return requested, files, None, b"", segments
            return page(404, str(exc))
        except QAError as exc:
            return page(503, str(exc))
        except OSError:
            return page(404, f"{requested!r} cannot be read.")

    def view(request):
        loaded = load(request)
        if isinstance(loaded, HTMLResponse):
            return loaded
        requested, files, path, data, segments = loaded
        document = None
        if path is not None:
            try:
                document = read_source(path, requested)
            except BadInput as exc:
                if not segments:
                    return page(404, str(exc))
        if document is None:  # the file is gone or unreadable: its indexed passages are shown
            from ..schema import Document

            document = Document(source=requested, text="")
        changed = files.get(requested) != hashlib.sha256(data).hexdigest()
        nonce = secrets.token_urlsafe(16)
        body = render_source_page(
            requested,
            document.text,
            _parse_range(request.query_params.get("lines")),
            _parse_range(request.query_params.get("mark")),
            changed,
            nonce,
            units=document.units or (),
            unit=document.unit or "",
            segments=segments,
        )
        return HTMLResponse(body, headers=_viewer_headers(nonce))

    def raw(request):
        """The original file, as a download."""
        loaded = load(request)
        if isinstance(loaded, HTMLResponse):
            return loaded
        requested, _, path, data, _ = loaded
        if path is None:
            return page(404, f"{requested!r} is not in the corpus any more.")
        name = PurePosixPath(requested).name
        return Response(data, media_type="application/octet-stream", headers={
            **_viewer_headers(""),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
        })

    return [Route("/source", view, methods=["GET"]), Route("/source/raw", raw, methods=["GET"])]


def _viewer_headers(nonce: str) -> dict:
    """A strict CSP: no script but ours, nothing loaded from anywhere."""
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return {
        "Content-Security-Policy": f"default-src 'none'; style-src 'unsafe-inline'; script-src {script}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


# --- the chat -------------------------------------------------------------------------------


def _examples(manifest: dict) -> list[str]:
    """Example questions: ours for the bundled corpus, else none (see `_section_examples`)."""
    files = manifest.get("files", {})
    if any(name.endswith("pmoi-ncri.txt") for name in files):
        return NCRI_EXAMPLES
    return []


EXAMPLE_MAX_WORDS = 6


def _section_examples(retriever, count: int = 3) -> list[str]:
    """Questions made from the corpus's own section titles: short ones (a long title reads badly
    as a question and is cut off on the page), the last part of a nested title (not the
    document's title above it), each file in turn so that one document does not take them all."""
    per_file: dict[str, list[str]] = {}
    for p in (p for source in retriever.sources() for p in retriever.passages_of(source)):
        title = (p.section or "").split(" › ")[-1].strip().rstrip(":")
        if not title:
            continue
        titles = per_file.setdefault(p.source, [])
        if title in titles or len(title.split()) > EXAMPLE_MAX_WORDS:
            continue
        titles.append(title)
    out: list[str] = []
    while any(per_file.values()) and len(out) < count:
        for titles in per_file.values():
            if titles and len(out) < count:
                title = titles.pop(0)
                if title not in out:
                    out.append(title)
    return [f"What does it say about {t[0].lower() + t[1:] if t[1:2].islower() else t}?" for t in out]


def _empty_question_reply(examples: list[str]) -> str:
    hint = f", for example: <em>{escape(examples[0])}</em>" if examples else "."
    return f'<div class="qa-notice">Please type a question first{hint}</div>'


def build_app(settings: Settings, retriever=None, live=None, allow_upload: bool = False):
    """The Gradio Blocks of the chat, not launched.

    Args:
        settings: where the corpus and index are (the viewer reads files from `corpus_dir`).
        retriever: a loaded `Retriever` to use for every question; by default the process-wide
            one of `qa.retriever.default_retriever`, which reloads when the index on disk is replaced.
        live: a started `live.LiveIndex` keeping the index current: the page then shows its
            state (refreshed every few seconds) and a re-index button.
        allow_upload: the document library (/library) takes uploads into the corpus.
    Returns:
        A `gr.Blocks` whose `qa_routes` attribute holds the viewer route (for `server.create_app`).
    """
    import gradio as gr

    from ..retriever import check_k, check_question, default_retriever

    if retriever is not None:
        get_retriever = lambda: retriever  # noqa: E731
    else:
        get_retriever = lambda: default_retriever(settings, build_if_missing=False)  # noqa: E731
    try:
        current = get_retriever()
        manifest = current.manifest  # (a live retriever loads here)
        examples = _examples(manifest) or _section_examples(current)
    except QAError as exc:  # a damaged index: serve anyway, each question shows why (and the fix)
        log.warning("%s", exc)
        current, manifest, examples = None, {}, []

    def ask(question: str, k: int = DEFAULT_K) -> dict:
        """Answer `question` with the `k` best passages of the corpus: the same JSON object as
        `qa ask --json` (question, found, answer, passages with citations and score parts)."""
        try:
            question, k = check_question(question), check_k(k)  # input first, then the index
            return get_retriever().ask(question, k).to_dict()
        except QAError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    def respond(message, history, k, sources):
        history = list(history or [])
        question = clean_text(message) if isinstance(message, str) else ""
        if not question.strip():
            history.append({"role": "assistant", "content": _empty_question_reply(examples)})
            return "", history
        shown = question.strip()
        if len(shown) > SHOWN_QUESTION_CHARS:
            shown = shown[:SHOWN_QUESTION_CHARS] + "…"
        history.append({"role": "user", "content": f'<span class="qa-q">{escape(shown)}</span>'})
        try:
            scope = list(sources or []) or None
            question, k = check_question(question), check_k(k)
            answer = get_retriever().ask(question, k, sources=scope)
            reply = render_html(answer, link=source_url, scope=scope)
        except QAError as exc:
            reply = f'<div class="qa-notfound">{escape(str(exc))}</div>'
        history.append({"role": "assistant", "content": f'<div class="qa-reply">{reply}</div>'})
        return "", history

    def refresh_sources():
        try:
            return gr.Dropdown(choices=get_retriever().sources())
        except QAError:
            return gr.Dropdown(choices=[])

    def index_status() -> str:
        """The index line: the live state when watching, else the loaded index's counts."""
        from .live import status_html

        if live is not None:
            return status_html(live.status())
        try:
            m = get_retriever().manifest
        except QAError as exc:  # a damaged index: the line says so (each question does too)
            return status_html({
                "state": "unusable", "done": 0, "total": 0, "changes": {}, "built_at": "", "files": 0,
                "passages": 0, "skipped": [], "error": str(exc),
            })
        return status_html({
            "state": "up to date", "done": 0, "total": 0, "changes": {}, "built_at": m.get("built_at", ""),
            "files": len(m.get("files", {})), "passages": int(m.get("passages", 0)),
            "skipped": m.get("skipped", []), "error": "",
        })

    def reindex() -> str:
        if live is not None:
            live.request()
        return index_status()

    with gr.Blocks(title="qa: ask your documents", analytics_enabled=False) as demo:
        gr.Markdown(
            "# Ask your documents\n"
            "Every answer is a sentence quoted from your documents, with numbered sources; "
            "click a citation to see it in its document. [Documents](library)",
            elem_id="qa-header",
        )
        with gr.Row(elem_id="qa-status-row", equal_height=True):
            status = gr.HTML(index_status(), elem_id="qa-status-box", padding=False)
            if live is not None:
                reindex_button = gr.Button("Re-index now", size="sm", variant="secondary",
                                           elem_id="qa-reindex", scale=0, min_width=120)
        chatbot = gr.Chatbot(
            label="Chat",
            show_label=False,
            autoscroll=False,
            elem_id="qa-chat",
            height="62vh",
            min_height=320,
            latex_delimiters=[],
            buttons=[],
            feedback_options=None,
            sanitize_html=True,
            layout="panel",
            placeholder="Ask a question below. The answer comes first, its sources under it.",
        )
        with gr.Row(equal_height=True):
            box = gr.Textbox(
                show_label=False,
                placeholder="Ask a question… (Enter to send)",
                elem_id="qa-question",
                scale=6,
                lines=1,
                max_lines=4,
                autofocus=True,
            )
            send = gr.Button("Ask", variant="primary", elem_id="qa-send", scale=1, min_width=80)
        example_buttons = []
        if examples:
            with gr.Row(elem_id="qa-examples"):
                gr.Markdown("Try:", elem_classes=["qa-try"])
                for example in examples:
                    example_buttons.append((example, gr.Button(example, size="sm", variant="secondary",
                                                               elem_classes=["qa-example"])))
        with gr.Row(elem_id="qa-tools"):
            export = gr.Button("Export chat as Markdown", size="sm", variant="secondary", elem_id="qa-export",
                               scale=0, min_width=200)
        with gr.Accordion("Options", open=False, elem_id="qa-options"):
            with gr.Row():
                k = gr.Slider(1, MAX_UI_K, value=DEFAULT_K, step=1, label="Sources to show (top-k)", elem_id="qa-k")
                sources = gr.Dropdown(
                    choices=current.sources() if current else [],  # files with passages: what `sources=` can match
                    value=[],
                    multiselect=True,
                    label="Only these documents (empty: all)",
                    elem_id="qa-sources",
                )

        shared = dict(concurrency_id="model", concurrency_limit=CONCURRENCY)
        for event in (box.submit, send.click):
            event(respond, [box, chatbot, k, sources], [box, chatbot], api_visibility="private", **shared).then(
                None, None, None, js=SCROLL_TO_LAST_QUESTION, api_visibility="private"
            )
        for example, button in example_buttons:  # a click asks the question at once
            button.click(lambda h, kk, ss, e=example: respond(e, h, kk, ss), [chatbot, k, sources], [box, chatbot],
                         api_visibility="private", **shared).then(
                None, None, None, js=SCROLL_TO_LAST_QUESTION, api_visibility="private"
            )
        export.click(None, None, None, js="() => { window.qaExport(); }", api_visibility="private")
        demo.load(refresh_sources, None, sources, api_visibility="private", queue=False)
        if live is not None:
            timer = gr.Timer(2.0)
            timer.tick(index_status, None, status, api_visibility="private", queue=False)
            reindex_button.click(reindex, None, status, api_visibility="private", queue=False)
        gr.api(ask, api_name="ask", **shared)

    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    from .library import library_routes

    demo.qa_routes = _viewer_route(settings, get_retriever) + library_routes(
        settings.corpus_dir,
        get_manifest=lambda: get_retriever().manifest,
        get_passages=lambda: {s: len(get_retriever().passages_of(s)) for s in get_retriever().sources()},
        authorised=_authorised,
        page_parts={"asset": _asset, "headers": _viewer_headers, "resolve": resolve_source},
        on_change=live.request if live is not None else (lambda: None),
        allow_upload=allow_upload,
    )
    return demo
