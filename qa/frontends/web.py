"""The web chat: a Gradio app over `qa.retriever`, plus a source viewer served by the same server.

`build_app()` returns the Gradio Blocks without launching it, with the viewer route in its
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
from typing import Callable
from urllib.parse import quote

from ..config import Settings
from ..errors import BadInput, QAError
from ..render import escape, render_html
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

NCRI_EXAMPLES = [
    "Who leads the NCRI?",
    "When was the PMOI founded?",
    "What does the NCRI platform include?",
    "What is the boiling point of mercury?",
]

CSS = """
.qa-answer { border-left: 4px solid #1d4ed8; padding: 0.4rem 0.8rem; margin-bottom: 0.8rem;
  background: #eef2ff; color: #111827; border-radius: 6px; }
.qa-answer blockquote { margin: 0.2rem 0; font-size: 1.05em; font-weight: 600; border: 0; padding: 0; }
.qa-label { font-size: 0.8em; text-transform: uppercase; letter-spacing: 0.05em; color: #374151; }
.qa-cite, .qa-from { font-size: 0.9em; color: #374151; }
.qa-sources-title { font-weight: 600; margin: 0.4rem 0; }
.qa-card { border: 1px solid #d1d5db; border-radius: 6px; padding: 0.5rem 0.7rem; margin: 0.5rem 0;
  background: #ffffff; color: #111827; }
.qa-head { font-size: 0.92em; margin-bottom: 0.3rem; overflow-wrap: anywhere; }
.qa-num { font-weight: 700; }
.qa-section { font-style: italic; }
.qa-score { display: block; font-size: 0.8em; color: #4b5563; }
.qa-text { line-height: 1.45; overflow-wrap: anywhere; }
.qa-text mark, .qa-answer mark { background: #fde047; color: #111827; padding: 0 1px; border-radius: 2px; }
.qa-notfound { font-weight: 600; padding: 0.4rem 0.8rem; border-left: 4px solid #b45309;
  background: #fffbeb; color: #111827; border-radius: 6px; }
.qa-closest summary { cursor: pointer; margin: 0.5rem 0; }
.qa-stale { font-size: 0.85em; font-weight: 600; color: #92400e; background: #fffbeb; padding: 0.1rem 0.3rem; }
.qa-card a, .qa-answer a { color: #1d4ed8; text-decoration: underline; }
.qa-card a:focus, .qa-answer a:focus { outline: 3px solid #f59e0b; outline-offset: 1px; }
#qa-header h1 { margin-bottom: 0; }
#qa-header p { margin-top: 0.2rem; color: #4b5563; }
@media (max-width: 600px) {
  #qa-chat .message-row { padding-left: 4px !important; padding-right: 4px !important; }
  #qa-chat .message { padding-left: 4px !important; padding-right: 4px !important; }
  #qa-header h1 { font-size: 1.5rem; }
  .qa-answer blockquote { font-size: 1em; }
  .qa-card { padding: 0.4rem; }
}
"""


# After a reply: scroll the chat (not the page) so the last question sits at the top, with the
# answer under it (Gradio's autoscroll would show the bottom of the last source card instead).
SCROLL_TO_LAST_QUESTION = """() => {
  let tries = 0;
  const go = () => {
    const qs = document.querySelectorAll('#qa-chat .qa-q');
    const last = qs[qs.length - 1];
    if (!last) { if (tries++ < 20) setTimeout(go, 50); return; }
    let box = last.parentElement;
    while (box && !(box.scrollHeight > box.clientHeight + 1 && /(auto|scroll)/.test(getComputedStyle(box).overflowY))) {
      box = box.parentElement;
    }
    if (box) {
      box.scrollTop += last.getBoundingClientRect().top - box.getBoundingClientRect().top - 12;
    }
  };
  setTimeout(go, 150);
}"""


# Page-level CSS that Gradio would scope under `.contain` (and so never match) if given as `css`.
HEAD = """<style>
@media (max-width: 600px) { .gradio-container .app { padding-left: 8px !important; padding-right: 8px !important; } }
</style>"""


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


def render_source_page(source: str, text: str, lines: tuple[int, int] | None, mark: tuple[int, int] | None,
                       changed: bool, nonce: str, segments: list[tuple[int, int, str]] | None = None) -> str:
    """The viewer page: every line numbered and anchored (#L12), the cited lines highlighted,
    the cited sentence marked; all text escaped. `nonce` lets only our own script run.

    `changed`: the file differs from what was indexed; then `segments` (see `indexed_segments`)
    are shown instead of `text`, with a note, or, without segments, the note says the indexed
    text cannot be shown."""
    out = []
    first, last = lines or (0, -1)
    parts = segments if changed and segments else [(1, 0, text)]
    for i, (first_line, offset, part) in enumerate(parts):
        if i:
            out.append('<div class="line gap"><span class="ln">…</span><span class="tx">(not indexed)</span></div>')
        for number, line in enumerate(part.split("\n"), start=first_line):
            start, end = offset, offset + len(line)
            offset = end + 1
            if mark and mark[0] < end and mark[1] > start:
                a, b = max(mark[0], start) - start, min(mark[1], end) - start
                body = f"{html.escape(line[:a])}<mark>{html.escape(line[a:b])}</mark>{html.escape(line[b:])}"
            else:
                body = html.escape(line)
            cls = "line hl" if first <= number <= last else "line"
            out.append(
                f'<div class="{cls}" id="L{number}"><a class="ln" href="#L{number}" aria-label="line {number}">'
                f"{number}</a><span class=\"tx\">{body or ' '}</span></div>"
            )
    title = html.escape(source)
    cited = (f"line {first}" if first == last else f"lines {first}–{last}") if lines else "whole file"
    note = ""
    if changed:
        shown = (
            "Shown below: the text as it was indexed (its passages), so the citation still points at what was cited."
            if segments
            else "The indexed text cannot be shown (no stored passage of this file): below is the file as it is now, "
            "where the cited lines may have moved."
        )
        note = f'<p class="warn">This file changed since it was indexed; run <code>qa index</code>. {shown}</p>'

    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} · {cited}</title>
<style>
body {{ margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #111827; background: #fff; }}
header {{ position: sticky; top: 0; background: #1e3a8a; color: #fff; padding: 0.6rem 1rem; }}
header h1 {{ font-size: 1.05rem; margin: 0; overflow-wrap: anywhere; }}
header p {{ margin: 0.2rem 0 0; font-size: 0.9rem; }}
.warn {{ background: #fffbeb; border-left: 4px solid #b45309; margin: 0; padding: 0.5rem 1rem; }}
main {{ font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9rem; padding: 0.5rem 0 40vh; }}
.line {{ display: flex; }}
.ln {{ flex: 0 0 3.5em; text-align: right; padding-right: 0.8em; color: #6b7280; text-decoration: none; user-select: none; }}
.tx {{ white-space: pre-wrap; overflow-wrap: anywhere; flex: 1; padding-right: 0.5rem; }}
.hl {{ background: #dbeafe; box-shadow: inset 4px 0 #1d4ed8; }}
.hl .ln {{ color: #1e3a8a; font-weight: 700; }}
mark {{ background: #fde047; color: #111827; }}
.gap .tx {{ color: #6b7280; font-style: italic; }}
:target {{ scroll-margin-top: 5rem; }}
</style></head>
<body><header><h1>{title}</h1><p>{cited} highlighted</p></header>{note}
<main id="text">{''.join(out)}</main>
<script nonce="{nonce}">
var el = document.querySelector(".hl");
if (el && !location.hash) {{ el.scrollIntoView({{block: "center"}}); }}
</script>
</body></html>"""


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


def _viewer_route(settings: Settings, get_retriever: Callable):
    """A Starlette route for GET /source?file=…&lines=a-b&mark=x-y."""
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from ..retriever import read_source

    def page(status: int, message: str, nonce: str = "") -> HTMLResponse:
        return HTMLResponse(
            f"<!doctype html><meta charset='utf-8'><title>qa: {status}</title>"
            f"<p>{html.escape(message)}</p><p><a href='./'>Back to the chat</a></p>",
            status_code=status,
            headers=_viewer_headers(nonce),
        )

    def view(request):
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
            data = path.read_bytes()
            text = read_source(path, requested).text
        except NotInCorpus as exc:
            if segments:  # indexed, then removed from the corpus: show what was indexed
                data, text = b"", ""
            else:
                return page(404, str(exc))
        except BadInput as exc:
            if segments:
                data, text = b"", ""
            else:
                return page(404, str(exc))
        except QAError as exc:
            return page(503, str(exc))
        except OSError:
            return page(404, f"{requested!r} cannot be read.")
        changed = files.get(requested) != hashlib.sha256(data).hexdigest()
        nonce = secrets.token_urlsafe(16)
        body = render_source_page(
            requested,
            text,
            _parse_range(request.query_params.get("lines")),
            _parse_range(request.query_params.get("mark")),
            changed,
            nonce,
            segments,
        )
        return HTMLResponse(body, headers=_viewer_headers(nonce))

    return Route("/source", view, methods=["GET"])


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
    """Example questions: ours for the bundled corpus, else one per section heading."""
    files = manifest.get("files", {})
    if any(name.endswith("pmoi-ncri.txt") for name in files):
        return NCRI_EXAMPLES
    return []


def _section_examples(retriever) -> list[str]:
    return [f"What does it say about {s}?" for s in retriever.sections(3)]


def build_app(settings: Settings, retriever=None):
    """The Gradio Blocks of the chat, not launched.

    Args:
        settings: where the corpus and index are (the viewer reads files from `corpus_dir`).
        retriever: a loaded `Retriever` to use for every question; by default the process-wide
            one of `qa.retriever.default_retriever`, which reloads when the index on disk is replaced.
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
            history.append({
                "role": "assistant",
                "content": '<div class="qa-notice">Please type a question first, for example: '
                "<em>Who leads the NCRI?</em></div>",
            })
            return "", history
        shown = question.strip()
        if len(shown) > SHOWN_QUESTION_CHARS:
            shown = shown[:SHOWN_QUESTION_CHARS] + "…"
        history.append({"role": "user", "content": f'<span class="qa-q">{escape(shown)}</span>'})
        try:
            question, k = check_question(question), check_k(k)
            answer = get_retriever().ask(question, k, sources=list(sources or []) or None)
            reply = render_html(answer, link=source_url)
        except QAError as exc:
            reply = f'<div class="qa-notfound">{escape(str(exc))}</div>'
        history.append({"role": "assistant", "content": f'<div class="qa-reply">{reply}</div>'})
        return "", history

    def refresh_sources():
        try:
            return gr.Dropdown(choices=get_retriever().sources())
        except QAError:
            return gr.Dropdown(choices=[])

    n_files = len(manifest.get("files", {}))
    n_passages = manifest.get("passages", 0)
    with gr.Blocks(title="qa: ask your documents", analytics_enabled=False) as demo:
        gr.Markdown(
            "# Ask your documents\n"
            f"Every answer is a sentence quoted from the corpus ({n_files} file{'s' * (n_files != 1)}, "
            f"{n_passages} passages), with numbered sources; click a citation to see it in its document.",
            elem_id="qa-header",
        )
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
        if examples:
            gr.Examples(examples=[[e] for e in examples], inputs=[box], label="Examples")
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
        demo.load(refresh_sources, None, sources, api_visibility="private", queue=False)
        gr.api(ask, api_name="ask", **shared)

    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    demo.qa_routes = [_viewer_route(settings, get_retriever)]
    return demo
