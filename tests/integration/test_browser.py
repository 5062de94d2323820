"""The web chat in a real browser: Debian's chromium driven by playwright (never `playwright
install`). Every test records every request the page makes (all must stay on localhost) and saves
a screenshot under tests/artifacts/. Skipped when /usr/bin/chromium or playwright is missing
(.ci/run installs chromium)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from qa.build import build_index
from qa.retriever import Retriever
from qa.config import Settings
from qa.frontends.web import DEFAULT_K

from conftest import FakeEmbedder
from test_web import make_corpus, start

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL = {"127.0.0.1", "localhost"}
HOSTILE_QUESTION = "<img src=x onerror=alert(11)><script>alert(12)</script>[x](javascript:alert(13)) gate code?"

if not CHROMIUM.exists():
    pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The test corpus plus a 300-line document (to see the viewer scroll), FakeEmbedder index."""
    base = tmp_path_factory.mktemp("browser")
    corpus = make_corpus(base)
    lines = [f"Filler line {i} about nothing much." for i in range(1, 301)]
    lines[249] = "The lantern room was painted green by keeper Tomas Berg in 1911."
    (corpus / "long.txt").write_text("Lantern notes\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=base / "index", model=FakeEmbedder.name)
    embedder = FakeEmbedder()
    build_index(settings, embedder=embedder)
    retriever = Retriever.load(settings.index_dir, embedder=embedder)
    demo, url = start(settings, retriever)
    yield url, retriever
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


class Recorder:
    """Every request and dialog of one browser context."""

    def __init__(self, context):
        self.urls: list[str] = []
        self.dialogs: list[str] = []
        context.on("request", lambda request: self.urls.append(request.url))
        context.on("dialog", self._dialog)
        context.on("page", lambda page: page.on("dialog", self._dialog))

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def outside(self) -> list[str]:
        return [u for u in self.urls if urlsplit(u).scheme not in ("data", "blob", "about") and urlsplit(u).hostname not in LOCAL]


def _open(browser, request, url, width=1280, height=900):
    context = browser.new_context(viewport={"width": width, "height": height})
    recorder = Recorder(context)
    page = context.new_page()
    page.on("dialog", recorder._dialog)
    page.goto(url)
    page.locator("#qa-question textarea").wait_for()
    return context, page, recorder


@pytest.fixture
def chat(browser, server, request):
    """A fresh page on the chat: (page, recorder, url). On teardown: a screenshot, and the
    check that no request left localhost and no dialog fired."""
    url = server[0]
    context, page, recorder = _open(browser, request, url)
    yield page, recorder, url
    ARTIFACTS.mkdir(exist_ok=True)
    for i, p in enumerate(context.pages):
        suffix = "" if i == 0 else f"-{i}"
        p.screenshot(path=str(ARTIFACTS / f"{request.node.name}{suffix}.png"), full_page=True)
    context.close()
    assert recorder.urls, "no request recorded"
    assert recorder.outside() == []
    assert recorder.dialogs == []


def ask(page, question: str, replies_before: int | None = None):
    """Type the question, press Enter, wait for the reply; returns the reply locator."""
    if replies_before is None:
        replies_before = page.locator("#qa-chat .qa-reply").count()
    box = page.locator("#qa-question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#qa-chat .qa-reply').length > n", arg=replies_before, timeout=30_000
    )
    return page.locator("#qa-chat .qa-reply").nth(replies_before)


def test_answer_first_then_numbered_citations(chat, server):
    page, _, _ = chat
    reply = ask(page, "When are the roses watered?")
    assert reply.locator(".qa-answer blockquote").inner_text() == (  # with the next sentence of its paragraph
        "The roses are watered every morning at six. In dry summers the gardeners also water the lavender, "
        "which otherwise needs little care.")
    assert reply.locator(".qa-answer .qa-cite a").inner_text() == "garden.txt:L7"
    nums = reply.locator(".qa-card .qa-num").all_inner_texts()
    assert nums == ["[1]", "[2]", "[3]", "[4]", "[5]"]
    first = reply.locator(".qa-card").first
    assert first.locator(".qa-head a").inner_text() == "garden.txt:L7"
    assert first.locator(".qa-section").inner_text() == "Watering"
    assert first.locator("mark").inner_text().startswith("The roses are watered every morning at six. In dry")
    assert reply.locator(".qa-answer").bounding_box()["y"] < first.bounding_box()["y"]  # answer first
    # The question is shown as asked, and the chat scrolled to it.
    assert page.locator("#qa-chat .qa-q").last.inner_text() == "When are the roses watered?"


def test_open_citation_shows_cited_lines_scrolled_into_view(chat, server):
    page, _, url = chat
    reply = ask(page, "Who painted the lantern room green?", 0)
    link = reply.locator(".qa-card .qa-head a").first
    hit = server[1].ask("Who painted the lantern room green?", 5).passages[0]
    assert (hit.source, hit.sentence_start is not None) == ("long.txt", True)
    assert link.inner_text() == f"long.txt:L{hit.start_line}-L{hit.end_line}"
    assert hit.start_line <= 252 <= hit.end_line
    with page.context.expect_page() as popup:
        link.click()
    viewer = popup.value
    viewer.wait_for_load_state()
    assert viewer.url.startswith(url + f"source?file=long.txt&lines={hit.start_line}-{hit.end_line}")
    assert viewer.url.endswith(f"#L{hit.start_line}")
    highlighted = viewer.locator(".line.hl")
    ids = [highlighted.nth(i).get_attribute("id") for i in range(highlighted.count())]
    assert ids == [f"L{n}" for n in range(hit.start_line, hit.end_line + 1)]
    mark = viewer.locator("mark").first  # the answer goes on with the next line's short sentence
    assert mark.inner_text() == "The lantern room was painted green by keeper Tomas Berg in 1911."
    assert viewer.locator("#L252 mark").count() == 1
    sync_api.expect(mark).to_be_in_viewport()
    sync_api.expect(viewer.locator("#L1")).not_to_be_in_viewport()
    # The shareable URL (no fragment) opens the same view, scrolled by the page itself.
    again = viewer.context.new_page()
    again.goto(viewer.url.split("#")[0])
    sync_api.expect(again.locator("mark").first).to_be_in_viewport()
    sync_api.expect(again.locator("#L1")).not_to_be_in_viewport()
    again.close()


def test_not_found_reply(chat):
    page, _, _ = chat
    reply = ask(page, "zyxx qwvv", 0)
    assert reply.locator(".qa-notfound").inner_text().startswith("Not found: no passage of the corpus clearly answers this question (")
    assert reply.locator(".qa-answer").count() == 0
    closest = reply.locator("details.qa-closest")
    assert closest.get_attribute("open") is None
    assert closest.locator("> summary").inner_text() == "Related passages, none of them answers it (5)"
    assert not closest.locator(".qa-card").first.is_visible()  # collapsed
    closest.locator("> summary").click()
    assert closest.locator(".qa-card").first.is_visible()


def test_empty_question_gets_a_polite_reply(chat):
    page, _, _ = chat
    box = page.locator("#qa-question textarea")
    box.fill("   ")
    box.press("Enter")
    notice = page.locator("#qa-chat .qa-notice")
    notice.wait_for()
    # the hint is one of this corpus's own example questions, not the bundled corpus's
    assert notice.inner_text().startswith("Please type a question first, for example: What does it say about ")
    assert "NCRI" not in notice.inner_text()
    assert page.locator("#qa-chat .qa-q").count() == 0
    # The chat still works after it.
    assert ask(page, "When are the roses watered?", 0).locator(".qa-answer blockquote").inner_text().startswith("The roses")


def test_change_top_k(chat):
    page, _, _ = chat
    page.locator("#qa-options").get_by_text("Options").click()
    # The closed accordion mounts the slider only now: wait until it shows its default, as a person
    # would see it, before changing it.
    slider = page.locator("#qa-k input[type=range]")
    sync_api.expect(slider).to_have_value(str(DEFAULT_K))
    number = page.locator("#qa-k input[type=number]")
    number.fill("2")
    number.press("Enter")
    sync_api.expect(slider).to_have_value("2")  # the slider's own value (what the chat sends) took it
    with page.expect_request(lambda r: "/queue/join" in r.url) as sent:
        reply = ask(page, "When are the roses watered?", 0)
    assert json.loads(sent.value.post_data)["data"][2] == 2  # inputs: question, history, k, sources
    assert reply.locator(".qa-card .qa-num").all_inner_texts() == ["[1]", "[2]"]


def test_document_picker_limits_the_sources(chat):
    page, _, _ = chat
    page.locator("#qa-options").get_by_text("Options").click()
    picker = page.locator("#qa-sources input")
    picker.click()
    picker.fill("boats")
    page.get_by_role("option", name="sub/boats.md").click()
    page.keyboard.press("Escape")
    reply = ask(page, "When are the roses watered?", 0)
    cites = reply.locator(".qa-card .qa-head a").all_inner_texts()
    assert cites and all(c.startswith("sub/boats.md:") for c in cites)


def test_keyboard_only(chat):
    page, _, _ = chat
    # The question box has focus on load: type, Enter to send.
    page.wait_for_function("() => document.activeElement && document.activeElement.closest('#qa-question')")
    page.keyboard.type("When are the roses watered?")
    page.keyboard.press("Enter")
    page.wait_for_selector("#qa-chat .qa-reply")
    # Tab through the page from the top until a citation has focus, then open it with Enter.
    page.evaluate("() => document.activeElement.blur()")
    focused = None
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const a = document.activeElement; return a && a.matches('a.qa-link') ? a.innerText : null; }"
        )
        if focused:
            break
    assert focused == "garden.txt:L7"  # the answer's citation comes first
    with page.context.expect_page() as popup:
        page.keyboard.press("Enter")
    viewer = popup.value
    viewer.wait_for_load_state()
    assert viewer.locator(".line.hl").get_attribute("id") == "L7"


def test_hostile_question_and_corpus_text_stay_text(chat):
    page, recorder, url = chat
    ask(page, HOSTILE_QUESTION, 0)
    assert page.locator("#qa-chat .qa-q").last.inner_text() == HOSTILE_QUESTION
    reply = ask(page, "gate code script alert picture markdown link", 1)
    text = reply.inner_text()
    assert "<script>alert(1)</script>" in text
    assert '<img src=x onerror="alert(2)">' in text
    assert "[click me](javascript:alert(3))" in text
    chat_box = page.locator("#qa-chat")
    assert chat_box.locator("script").count() == 0
    assert chat_box.locator("img[src=x], img[onerror]").count() == 0
    assert chat_box.locator("a[href^='javascript']").count() == 0
    # The viewer shows the hostile file as text too.
    viewer = page.context.new_page()
    viewer.goto(url + "source?file=hostile.md&lines=3-5")
    assert "<script>alert(1)</script>" in viewer.locator("#L3").inner_text()
    assert viewer.locator("main script, main img, main a[href^='javascript']").count() == 0
    page.wait_for_timeout(300)  # give any injected handler the chance to fire
    assert recorder.dialogs == []


def test_history_kept_and_phone_width_readable(browser, server, request):
    url = server[0]
    context, page, recorder = _open(browser, request, url, width=390, height=844)
    try:
        ask(page, "When are the roses watered?", 0)
        ask(page, "Who painted the lantern room green?", 1)
        assert page.locator("#qa-chat .qa-q").all_inner_texts() == [
            "When are the roses watered?",
            "Who painted the lantern room green?",
        ]
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        last = page.locator("#qa-chat .qa-reply").last
        sync_api.expect(last.locator(".qa-answer")).to_be_in_viewport()  # waits for the scroll to the reply to land
        assert last.locator(".qa-answer").bounding_box()["y"] < last.locator(".qa-card").first.bounding_box()["y"]
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
        context.close()
    assert recorder.outside() == [] and recorder.dialogs == []


def test_every_request_stays_on_localhost(chat):
    page, recorder, url = chat
    ask(page, "When are the roses watered?", 0)
    page.goto(url + "source?file=garden.txt&lines=7")
    hosts = {urlsplit(u).hostname for u in recorder.urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts == {"127.0.0.1"}
    assert any(re.search(r"/gradio_api/queue/join", u) for u in recorder.urls)  # the chat really ran


@pytest.mark.model
def test_real_model_who_leads_the_ncri_in_the_browser(browser, request, default_corpus_index, real_embedder):
    """The done criterion of the product: in the browser, "Who leads the NCRI?" shows the right
    passage first with its lines cited, and the citation opens them in the viewer."""
    retriever = Retriever.load(default_corpus_index.index_dir, embedder=real_embedder)
    demo, url = start(default_corpus_index, retriever)
    context, page, recorder = _open(browser, request, url)
    try:
        reply = ask(page, "Who leads the NCRI?")
        assert reply.locator(".qa-answer blockquote").inner_text().startswith(
            "The president-elect of the NCRI is Mrs. Maryam Rajavi. Two of her sisters")
        first = reply.locator(".qa-card").first
        assert first.locator(".qa-num").inner_text() == "[1]"
        assert first.locator(".qa-head a").inner_text() == "iranian-resistance-pmoi-ncri.txt:L16"
        assert first.locator(".qa-section").inner_text() == "President-elect of the NCRI"
        with context.expect_page() as opened:
            first.locator(".qa-head a").click()
        viewer = opened.value
        viewer.wait_for_load_state()
        assert "The president-elect of the NCRI is Mrs. Maryam Rajavi." in viewer.locator("#L16.hl").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        viewer.screenshot(path=str(ARTIFACTS / f"{request.node.name}-viewer.png"))
        assert recorder.outside() == [] and recorder.dialogs == []
    finally:
        context.close()
        demo.close()


# --- issue 15: examples, index state, copy, export, why this passage, library, phone ----------


def test_clicking_an_example_asks_it(chat):
    page, _, _ = chat
    example = page.locator("#qa-examples button.qa-example").first
    question = example.inner_text()
    assert question.startswith("What does it say about ") and len(question) < 60
    example.click()
    page.wait_for_selector("#qa-chat .qa-reply")
    assert page.locator("#qa-chat .qa-q").last.inner_text() == question


def test_index_state_line_shows_counts(chat, server):
    page, _, _ = chat
    status = page.locator("#qa-status-box .qa-status")
    n = len(server[1].manifest["files"])
    assert status.inner_text().startswith(f"Index up to date · {n} files, {server[1].manifest['passages']} passages")
    assert "last build" in status.inner_text()


def test_copy_buttons_and_why_this_passage(chat):
    page, _, url = chat
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    reply = ask(page, "When are the roses watered?", 0)
    why = reply.locator(".qa-card").first.locator("details.qa-why")
    assert not why.locator(".qa-score").is_visible()  # folded
    why.locator("summary").click()
    assert why.locator(".qa-score").inner_text().startswith("score ")
    reply.locator(".qa-answer button.qa-copy", has_text="Copy as Markdown").click()
    copied = page.evaluate("() => window.qaLastCopied")
    assert copied.startswith("> The roses are watered every morning at six. In dry summers the gardeners also water the "
                             "lavender, which otherwise needs little care.\n>\n> — [garden.txt:L7](" + url
                             + "source?file=garden.txt")
    reply.locator(".qa-card").nth(1).locator("button.qa-copy", has_text="Copy").first.click()
    plain = page.evaluate("() => window.qaLastCopied")
    assert plain.startswith("“") and plain.endswith(")") and "\n" not in plain


def test_export_conversation_as_markdown(chat):
    page, _, _ = chat
    ask(page, "When are the roses watered?", 0)
    ask(page, "zyxx qwvv", 1)
    with page.expect_download() as download:
        page.locator("#qa-export").click()
    path = download.value.path()
    text = Path(path).read_text()
    assert download.value.suggested_filename == "conversation.md"
    assert text.startswith("# Conversation\n\n## When are the roses watered?\n\n**Answer**\n\n> The roses are watered")
    assert "[garden.txt:L7](" in text and "## zyxx qwvv" in text and "*Not found" in text


def test_library_page_by_keyboard(browser, server, request):
    url = server[0]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    recorder = Recorder(context)
    page = context.new_page()
    try:
        page.goto(url + "library")
        assert page.locator("h1").inner_text() == "Documents"
        assert page.locator("table tbody tr").count() == len(server[1].manifest["files"])
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.getAttribute('href')") == "source?file=garden.txt":
                break
        page.keyboard.press("Enter")
        page.wait_for_url("**/source?file=garden.txt")
        assert page.locator("#back").get_attribute("href") == "./"
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        context.close()
    assert recorder.outside() == [] and recorder.dialogs == []


def test_phone_chat_uses_the_whole_screen(browser, server, request):
    url = server[0]
    context, page, recorder = _open(browser, request, url, width=390, height=844)
    try:
        box = page.locator("#qa-chat").bounding_box()
        assert box["width"] >= 390 - 2 * 16 and box["height"] >= 844 * 0.6
        # the question box is on the first screen too (the state line is kept short: no build time)
        assert page.locator("#qa-question").bounding_box()["y"] + page.locator("#qa-question").bounding_box()["height"] <= 844
        assert not page.locator(".qa-status-built").is_visible()
        assert page.locator("#qa-header a[href='library']").is_visible()  # the documents stay one tap away
        reply = ask(page, "Where are the boats moored in winter?", 0)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        lines = reply.locator(".qa-card .qa-text").first.inner_text()
        assert "<br>" not in lines
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
        context.close()
    assert recorder.outside() == [] and recorder.dialogs == []


def test_dark_theme_follows_the_system(browser, server, request):
    url = server[0]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    recorder = Recorder(context)
    page = context.new_page()
    try:
        page.goto(url)
        page.locator("#qa-question textarea").wait_for()
        reply = ask(page, "When are the roses watered?", 0)
        colour = reply.locator(".qa-answer .qa-cite").evaluate("e => getComputedStyle(e).color")
        background = reply.locator(".qa-card").first.evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour == "rgb(209, 213, 219)" and background == "rgb(17, 24, 39)"
        viewer = context.new_page()
        viewer.goto(url + "source?file=garden.txt&lines=7")
        assert viewer.evaluate("() => getComputedStyle(document.body).backgroundColor") == "rgb(17, 24, 39)"
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
        context.close()
    assert recorder.outside() == [] and recorder.dialogs == []


def test_api_docs_page_renders_offline_and_can_call_the_api(browser, server, request):
    """/api/v1/docs: Swagger UI from our own assets, every route listed, "Try it out" on search
    answers with the record; no request leaves localhost."""
    url = server[0]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    recorder = Recorder(context)
    page = context.new_page()
    try:
        page.goto(url + "api/v1/docs")
        page.locator(".swagger-ui .info .title").wait_for()
        for path in ("/api/v1/search", "/api/v1/sources", "/api/v1/status", "/api/v1/source"):
            assert page.locator(f".opblock-summary-path[data-path='{path}']").count() == 1, path
        page.locator("#operations-default-search_api_v1_search_post .opblock-summary").click()
        page.locator(".try-out__btn").click()
        page.locator(".body-param__text").fill('{"question": "When are the roses watered?", "k": 1}')
        page.locator(".execute").click()
        body = page.locator(".responses-wrapper .live-responses-table .response .microlight").first
        body.wait_for()
        assert '"start_line": 7' in body.inner_text() and "The roses are watered every morning at six." in body.inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    finally:
        context.close()
    assert any(u.endswith("/api/v1/search") for u in recorder.urls)
    assert recorder.outside() == [] and recorder.dialogs == []


@pytest.fixture
def live_server(settings, monkeypatch):
    """tests/data indexed with the FakeEmbedder and served with a watching `LiveIndex`, as
    `qa serve --allow-upload` does: (url, settings)."""
    from qa.frontends import server as qserver
    from qa.frontends.live import LiveIndex

    from conftest import patch_embedder

    embedder = FakeEmbedder()
    patch_embedder(monkeypatch, embedder)
    build_index(settings, embedder=embedder)
    live = LiveIndex(settings, embedder=embedder, interval=0.05, debounce=0.1).start()
    running = qserver.start(qserver.create_app(settings, live=live, allow_upload=True))
    yield running.url, settings
    live.stop()
    running.close()


def _open_picker(page):
    """Open the document picker's list (a click on the box only opens it when it has no focus)."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.locator("#qa-sources input").click()
    page.get_by_role("option").first.wait_for()


def _close_picker(page):
    page.keyboard.press("Escape")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")


def _picker_state(page) -> tuple[list[str], list[str]]:
    """(choices, chosen) of the document picker, read by opening it."""
    _open_picker(page)
    choices = page.get_by_role("option").evaluate_all("options => options.map(o => o.getAttribute('aria-label'))")
    _close_picker(page)
    chosen = page.locator("#qa-sources .token").all_inner_texts()
    return [c.strip() for c in choices], [c.strip() for c in chosen]


def test_picker_and_examples_follow_the_live_index_without_reload(browser, live_server, request):
    """A file added, then one renamed, in the corpus while the page is open: the status line,
    the document picker and the example questions follow; a chosen file stays chosen while it
    is indexed."""
    url, settings = live_server
    context, page, recorder = _open(browser, request, url)
    status = page.locator("#qa-status-box .qa-status")
    try:
        page.locator("#qa-options").get_by_text("Options").click()
        assert _picker_state(page)[0] == ["garden.txt", "sub/boats.md"]
        examples = page.locator("#qa-examples button.qa-example:visible")
        before = examples.all_inner_texts()
        assert before and not any("ferry" in e.lower() for e in before)
        _open_picker(page)
        page.get_by_role("option", name="garden.txt").click()
        _close_picker(page)
        page_id = page.evaluate("() => (window.qaPageId = Math.random())")

        (settings.corpus_dir / "ferry.md").write_text(
            "# Ferry timetable\n\nThe ferry to the island leaves from pier nine at half past seven.\n", encoding="utf-8")
        sync_api.expect(status).to_contain_text("3 files", timeout=20_000)
        sync_api.expect(examples.first).to_have_text("What does it say about ferry timetable?")
        assert _picker_state(page) == (["ferry.md", "garden.txt", "sub/boats.md"], ["garden.txt"])
        # the new example asks itself, within the chosen file (so: not found there)
        examples.first.click()
        page.wait_for_selector("#qa-chat .qa-reply")
        assert page.locator("#qa-chat .qa-q").last.inner_text() == "What does it say about ferry timetable?"

        (settings.corpus_dir / "garden.txt").rename(settings.corpus_dir / "orchard.txt")
        sync_api.expect(status).to_contain_text("Index up to date", timeout=20_000)
        page.wait_for_function("() => !document.querySelector('#qa-sources .token')", timeout=20_000)
        assert _picker_state(page) == (["ferry.md", "orchard.txt", "sub/boats.md"], [])
        assert page.evaluate("() => window.qaPageId") == page_id  # the same page: never reloaded
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        context.close()
    assert recorder.outside() == [] and recorder.dialogs == []


DROP = """([name, text]) => {
    const data = new DataTransfer();
    data.items.add(new File([text], name, {type: "text/plain"}));
    return data;
}"""


def test_files_dropped_on_the_library_are_indexed_and_reach_the_open_chat(browser, live_server, request):
    """Drag and drop onto the library's upload box: the file is saved and indexed, the chat open
    in another tab offers it in its picker without a reload; a drop the server refuses (an
    expired form) says why, as a refusal."""
    url, settings = live_server
    context, chat, recorder = _open(browser, request, url)
    library = context.new_page()
    try:
        library.goto(url + "library")
        dropped = library.evaluate_handle(DROP, ["Ferry Times.txt", "The ferry leaves from pier nine at seven.\n"])
        library.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
        library.wait_for_url("**/library?said=*")
        message = library.locator("p.msg")
        assert message.inner_text() == "Uploaded Ferry Times.txt: indexing now." and "bad" not in message.get_attribute("class")
        assert (settings.corpus_dir / "Ferry Times.txt").read_text() == "The ferry leaves from pier nine at seven.\n"
        # the list follows by itself once the file is indexed
        sync_api.expect(library.locator("table tbody")).to_contain_text("Ferry Times.txt", timeout=20_000)
        assert library.locator("main[data-pending]").count() == 0
        sync_api.expect(chat.locator("#qa-status-box .qa-status")).to_contain_text("3 files", timeout=20_000)
        chat.locator("#qa-options").get_by_text("Options").click()
        assert _picker_state(chat)[0] == ["Ferry Times.txt", "garden.txt", "sub/boats.md"]

        library.goto(url + "library")
        library.locator("#upload [name=token]").evaluate("e => { e.value = 'expired'; }")
        dropped = library.evaluate_handle(DROP, ["late.txt", "Too late.\n"])
        library.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
        library.wait_for_url("**/library?said=*bad=1")
        assert library.locator("p.msg.bad").inner_text() == "This form has expired: reload the documents page and try again."
        assert not (settings.corpus_dir / "late.txt").exists()
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        library.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        context.close()
    assert recorder.outside() == [] and recorder.dialogs == []


def test_library_at_phone_width_wraps_only_file_names(browser, live_server, request):
    """At 390 px with a long file name: no sideways scrolling, the name wraps, and no other
    cell breaks inside a word ("Passa-ges", "Dele-te")."""
    url, settings = live_server
    (settings.corpus_dir / "volunteer-handbook-of-the-harbour-street-community-garden.txt").write_text(
        "Volunteers meet at the shed on Saturdays.\n", encoding="utf-8")
    context = browser.new_context(viewport={"width": 390, "height": 844})
    recorder = Recorder(context)
    page = context.new_page()
    try:
        page.goto(url + "library")
        sync_api.expect(page.locator("table tbody")).to_contain_text("volunteer-handbook", timeout=20_000)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        lines = ("e => { const r = document.createRange(); r.selectNodeContents(e);"
                 " return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }")  # lines of text
        assert page.locator("tbody td:first-child a", has_text="volunteer-handbook").evaluate(lines) > 1
        for cell in page.locator("thead th, tbody td:not(:first-child)").all():
            assert cell.evaluate(lines) <= 1, cell.inner_text()
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        context.close()
    assert recorder.outside() == [] and recorder.dialogs == []
