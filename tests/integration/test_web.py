"""The web front end: a real server on a free localhost port, queried with gradio_client and
plain HTTP. FakeEmbedder index for most tests; the real model once (marked `model`)."""

from __future__ import annotations

import json
import random
import re
import shutil
import socket
from pathlib import Path

import httpx
import pytest

from qa.frontends import server as qserver
from qa.frontends import web
from qa.render import render_html, to_json
from qa.build import build_index
from qa.retriever import Retriever
from qa.config import MAX_BODY_BYTES, Settings
from qa.errors import QAError

from conftest import DATA, FakeEmbedder, patch_embedder

HOSTILE = (
    "# Hostile notes\n"
    "\n"
    "The gate code is <script>alert(1)</script> and nothing else.\n"
    'The picture <img src=x onerror="alert(2)"> never loads.\n'
    "A markdown link [click me](javascript:alert(3)) stays text.\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(settings: Settings, retriever=None, auth: str | None = None, api_token: str | None = None, **options):
    """The whole `qa serve` app (chat, REST API, MCP) on a free 127.0.0.1 port: (running, url).
    `options` go to `server.create_app` (e.g. login_backoff)."""
    running = qserver.start(qserver.create_app(settings, retriever, auth=auth, api_token=api_token, **options))
    return running, running.url


def make_corpus(base: Path) -> Path:
    """tests/data plus a hostile document, a symlink leading out of the corpus and a file the
    index does not know (.hidden)."""
    corpus = base / "corpus"
    shutil.copytree(DATA, corpus)
    (corpus / "hostile.md").write_text(HOSTILE, encoding="utf-8")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("Top secret words that must never be served.\n", encoding="utf-8")
    (corpus / "escape.txt").symlink_to(outside / "secret.txt")
    (corpus / ".hidden.txt").write_text("Hidden file, not indexed.\n", encoding="utf-8")
    return corpus


def fake_index(base: Path) -> tuple[Settings, Retriever]:
    """make_corpus(base) indexed with the FakeEmbedder: its settings and a loaded retriever."""
    settings = Settings(corpus_dir=make_corpus(base), index_dir=base / "index", model=FakeEmbedder.name)
    embedder = FakeEmbedder()
    build_index(settings, embedder=embedder)
    return settings, Retriever.load(settings.index_dir, embedder=embedder)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A FakeEmbedder index of make_corpus(), served on a free port: (url, retriever, settings)."""
    settings, retriever = fake_index(tmp_path_factory.mktemp("web"))
    running, url = start(settings, retriever)
    yield url, retriever, settings
    running.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False)


# --- the `ask` API endpoint ------------------------------------------------------------------


def test_ask_endpoint_returns_the_cli_json(server, client):
    url, retriever, settings = server
    result = client.predict("When are the roses watered?", 3, api_name="/ask")
    # Exactly the object `qa ask --json` prints (cli.cmd_ask prints to_json(answer)).
    assert result == json.loads(to_json(retriever.ask("When are the roses watered?", 3)))
    assert result["found"] is True
    assert result["answer"] == {
        "text": ("The roses are watered every morning at six. In dry summers the gardeners also water the "
                 "lavender, which otherwise needs little care."),  # with the next sentence of the paragraph
        "source": "garden.txt",
        "start_line": 7,
        "end_line": 7,
        "start_char": 196,
        "end_char": 328,
        "page": None,
        "locator": "",
        "source_changed": False,
    }
    assert result["source_changed"] is False
    top = result["passages"][0]
    assert [p["rank"] for p in result["passages"]] == [1, 2, 3]
    assert (top["source"], top["section"], top["start_line"], top["end_line"]) == ("garden.txt", "Watering", 7, 7)
    text = (settings.corpus_dir / "garden.txt").read_text(encoding="utf-8")
    assert top["text"] == text[top["start_char"] : top["end_char"]]
    assert (top["sentence_start"], top["sentence_end"]) == (196, 328)  # the answer's span


def test_only_ask_is_public(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert list(api["named_endpoints"]) == ["/ask"]
    assert [p["parameter_name"] for p in api["named_endpoints"]["/ask"]["parameters"]] == ["question", "k"]


@pytest.mark.parametrize(
    "question, k, message",
    [
        ("", 5, "The question is empty"),
        ("   \n\t ", 5, "The question is empty"),
        (None, 5, "The question is empty"),
        ("roses", -1, "k must be a whole number from 1 to 100, not -1."),
        ("roses", 0, "k must be a whole number from 1 to 100, not 0."),
        ("roses", 10**9, "k must be a whole number from 1 to 100, not 1000000000."),
        ("roses", 2.5, "k must be a whole number from 1 to 100, not 2.5."),
        ("roses", "many", "k must be a whole number from 1 to 100, not 'many'."),
    ],
)
def test_bad_input_is_a_clear_error(client, question, k, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        client.predict(question, k, api_name="/ask")
    assert str(info.value).startswith(message)


def _fuzz_cases(n: int):
    """The bad-input generator of bench/speed/load.py (one copy, shared with the 1,000-case run)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_load", Path(__file__).resolve().parents[2] / "bench" / "speed" / "load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fuzz_cases(n)


def expected_reply(retriever, question, k):
    """What the endpoint must answer: the Answer dict, or the start of the error message."""
    from qa.errors import QAError

    try:
        return "answer", retriever.ask(question, k).to_dict()
    except QAError as exc:
        return "error", str(exc)


def test_fuzz_every_reply_is_an_answer_or_a_clear_error(server, client):
    from gradio_client.exceptions import AppError

    url, retriever, _ = server
    kinds = {"answer": 0, "error": 0}
    for question, k in _fuzz_cases(300):
        if len(json.dumps(question).encode()) > MAX_BODY_BYTES:  # refused with HTTP 413 before the app
            with pytest.raises(httpx.HTTPStatusError, match="413"):
                client.predict(question, k, api_name="/ask")
            kinds["error"] += 1
            continue
        kind, expected = expected_reply(retriever, question, k)
        kinds[kind] += 1
        if kind == "answer":
            assert client.predict(question, k, api_name="/ask") == expected, (question[:40], k)
        else:
            with pytest.raises(AppError) as info:
                client.predict(question, k, api_name="/ask")
            assert str(info.value) == expected
    assert kinds["answer"] > 100 and kinds["error"] > 50  # both paths were exercised
    # The server is still alive and answers correctly.
    assert client.predict("When are the roses watered?", 1, api_name="/ask")["passages"][0]["section"] == "Watering"


# --- the source viewer -----------------------------------------------------------------------


def test_viewer_highlights_the_cited_lines(server):
    url, retriever, _ = server
    hit = retriever.ask("When are the roses watered?", 1).passages[0]
    link = web.source_url(hit)
    assert link == "source?file=garden.txt&lines=7-7&mark=196-328#L7"
    response = httpx.get(url + link.split("#")[0])
    assert response.status_code == 200
    page = response.text
    highlighted = re.findall(r'<div class="line hl" id="L(\d+)">', page)
    assert highlighted == ["7"]
    assert ("<mark>The roses are watered every morning at six. In dry summers the gardeners also water the "
            "lavender, which otherwise needs little care.</mark>") in page
    assert 'id="L1"' in page and 'id="L11"' in page  # the whole file, every line anchored
    assert "default-src 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    "requested",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "sub/../garden.txt",
        "./garden.txt",
        "sub//boats.md",
        "..\\garden.txt",
        "escape.txt",  # a symlink leading out of the corpus
        ".hidden.txt",  # in the folder, not in the index
        "missing.txt",
        "",
        "garden.txt\x00.md",
    ],
)
def test_viewer_refuses_anything_but_corpus_files(server, requested):
    url, _, _ = server
    response = httpx.get(url + "source", params={"file": requested})
    assert response.status_code == 404
    assert "is not a file of the corpus" in response.text
    assert "root:" not in response.text and "Top secret" not in response.text and "Hidden file" not in response.text


def test_viewer_refuses_raw_traversal_urls(server):
    url, _, _ = server
    for raw in ("source?file=..%2F..%2Fetc%2Fpasswd", "source?file=%2Fetc%2Fpasswd", "source?file=sub%2F..%2F..%2F..%2Fetc%2Fpasswd"):
        response = httpx.get(url + raw)
        assert response.status_code == 404, raw
        assert "root:" not in response.text


def test_resolve_source_pure_rules(tmp_path):
    corpus = make_corpus(tmp_path)
    files = {"garden.txt": "", "sub/boats.md": "", "escape.txt": ""}
    assert web.resolve_source(corpus, files, "sub/boats.md") == (corpus / "sub" / "boats.md").resolve()
    for bad in ("escape.txt", "hostile.md", "../corpus/garden.txt", str(corpus / "garden.txt")):
        with pytest.raises(web.NotInCorpus):
            web.resolve_source(corpus, files, bad)


def test_hostile_corpus_text_is_escaped_in_viewer(server):
    url, _, _ = server
    page = httpx.get(url + "source", params={"file": "hostile.md", "lines": "3-5"}).text
    body = page.split("<main", 1)[1]
    assert "<script>alert" not in body and "<img" not in body and "<a href=\"javascript" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in body
    assert "[click me](javascript:alert(3))" in body


# --- the chat reply (HTML) -------------------------------------------------------------------


def test_reply_html_answer_first_then_numbered_linked_sources(server):
    _, retriever, _ = server
    answer = retriever.ask("When are the roses watered?", 3)
    reply = render_html(answer, link=web.source_url)
    assert reply.index('class="qa-answer"') < reply.index('class="qa-sources"')
    assert "<blockquote>The roses are watered every morning at six&#46; In dry summers" in reply
    assert re.findall(r'<span class="qa-num">\[(\d)\]</span>', reply) == ["1", "2", "3"]
    links = re.findall(r'<a class="qa-link" href="([^"]+)"', reply)
    assert links[0] == "source?file=garden.txt&amp;lines=7-7&amp;mark=196-328#L7"  # the answer's citation
    assert len(links) == 4  # the answer plus one per source
    assert "<mark>The roses are watered every morning at six&#46; In dry summers" in reply


def test_reply_html_not_found_collapses_the_closest_passages(server):
    _, retriever, _ = server
    answer = retriever.ask("zyxx qwvv", 2)
    assert answer.found is False
    reply = render_html(answer, link=web.source_url)
    assert reply.startswith('<div class="qa-notfound">Not found: no passage of the corpus clearly answers')
    assert '<details class="qa-closest"><summary>Related passages, none of them answers it (2)</summary>' in reply
    assert 'class="qa-answer"' not in reply


def test_reply_html_escapes_hostile_corpus_text(server):
    _, retriever, _ = server
    answer = retriever.ask("gate code script alert picture markdown link", 5, sources=["hostile.md"])
    reply = render_html(answer, link=web.source_url)
    assert answer.passages[0].source == "hostile.md"
    assert "<script" not in reply and "<img" not in reply and 'href="javascript' not in reply
    assert "&#60;script&#62;alert&#40;1&#41;&#60;/script&#62;" in reply
    assert "&#91;click me&#93;&#40;javascript:alert&#40;3&#41;&#41;" in reply


def test_source_filter_through_the_app(server):
    _, retriever, _ = server
    answer = retriever.ask("roses boats", 5, sources=["sub/boats.md"])
    assert {p.source for p in answer.passages} == {"sub/boats.md"}


# --- auth, hosts, reload ---------------------------------------------------------------------


def test_auth_protects_api_ui_and_viewer(server):
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    _, retriever, settings = server
    running, url = start(settings, retriever, auth="ann:s3cret")
    try:
        assert httpx.get(url + "source", params={"file": "garden.txt"}).status_code == 401
        assert httpx.get(url + "config").status_code == 401
        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            Client(url, verbose=False)
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("ann", "wrong"), verbose=False)
        authed = Client(url, auth=("ann", "s3cret"), verbose=False)
        assert authed.predict("When are the roses watered?", 1, api_name="/ask")["answer"]["start_line"] == 7
        with httpx.Client() as http:
            assert http.post(url + "login", data={"username": "ann", "password": "s3cret"}).status_code == 200
            response = http.get(url + "source", params={"file": "garden.txt", "lines": "7"})
            assert response.status_code == 200 and '<div class="line hl" id="L7">' in response.text
    finally:
        running.close()


def test_parse_auth():
    assert qserver.parse_auth("ann:pa:ss") == ("ann", "pa:ss")
    assert qserver.parse_auth(None) is None
    for bad in ("ann", ":pw", "ann:"):
        with pytest.raises(ValueError, match="USER:PASSWORD"):
            qserver.parse_auth(bad)


def test_serve_warns_for_other_hosts(monkeypatch, settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    patch_embedder(monkeypatch, fake_embedder)
    bound, ran = [], []
    monkeypatch.setattr(qserver, "bind", lambda host, port: bound.append((host, port)) or "socket")
    monkeypatch.setattr(qserver, "_uvicorn", lambda app: type("Stub", (), {"run": lambda self, sockets: ran.append(sockets)})())
    said = []
    qserver.serve(settings, host="0.0.0.0", port=8123, auth=None, say=said.append)
    assert said[0].startswith("Warning: serving on 0.0.0.0, reachable from other machines; anyone")
    answered = said[0].split("Host names answered: ")[1]
    assert all(name in answered for name in ("127.0.0.1", "::1", "localhost")) and "--allowed-hosts NAME" in answered
    assert said[1].startswith("qa: web chat on http://127.0.0.1:8123")
    assert said[2] == "    REST API http://127.0.0.1:8123/api/v1 (docs http://127.0.0.1:8123/api/v1/docs), MCP http://127.0.0.1:8123/mcp, documents http://127.0.0.1:8123/library"
    assert bound == [("0.0.0.0", 8123)] and ran == [["socket"]]
    said.clear()
    qserver.serve(settings, host="127.0.0.1", port=8123, auth="a:b", api_token="t0k", say=said.append)
    assert said[0] == "qa: web chat on http://127.0.0.1:8123 (login required)  (Ctrl+C to stop)"
    said.clear()
    qserver.serve(settings, host="127.0.0.1", port=8123, api_token="t0k", say=said.append)
    assert said[0] == "Note: QA_API_TOKEN protects /api/v1 and /mcp; the chat has no login without --auth."


def test_serve_says_when_the_port_is_taken(settings, fake_embedder):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(QAError, match=rf"Port {port} on 127.0.0.1 is in use \(another server\?\): choose another, "
                                          rf"e\.g\. `qa serve --port {port + 1}` or `make run PORT={port + 1}`\."):
            qserver.serve(settings, host="127.0.0.1", port=port)


def test_cli_serve_rejects_malformed_auth(monkeypatch, settings, fake_embedder, capsys):
    from qa.frontends.cli import main

    build_index(settings, embedder=fake_embedder)
    monkeypatch.setenv("QA_AUTH", "no-colon")
    code = main(["serve", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", FakeEmbedder.name])
    assert code == 2
    assert "must look like USER:PASSWORD" in capsys.readouterr().err


def test_running_server_picks_up_a_rebuilt_index(monkeypatch, settings, fake_embedder):
    from gradio_client import Client

    patch_embedder(monkeypatch, fake_embedder)
    build_index(settings, embedder=fake_embedder)
    running, url = start(settings)  # no retriever: api.default_retriever, reloaded on a new index
    try:
        client = Client(url, verbose=False)
        first = client.predict("lighthouse keeper Agnes", 1, api_name="/ask")
        assert first["passages"][0]["source"] != "keeper.txt"
        (settings.corpus_dir / "keeper.txt").write_text(
            "Keepers\n\nThe lighthouse keeper is Agnes Holm. She has kept the light since 1990.\n", encoding="utf-8"
        )
        build_index(settings, embedder=fake_embedder)
        after = client.predict("lighthouse keeper Agnes", 1, api_name="/ask")
        assert after["passages"][0]["source"] == "keeper.txt"
        # the answer goes on with the sentence that continues it ("She has kept...")
        assert after["answer"]["text"] == "The lighthouse keeper is Agnes Holm. She has kept the light since 1990."
        page = httpx.get(url + "source", params={"file": "keeper.txt", "lines": "3"})
        assert page.status_code == 200 and '<div class="line hl" id="L3">' in page.text
    finally:
        running.close()


# --- the real model --------------------------------------------------------------------------


@pytest.mark.model
def test_real_model_who_leads_the_ncri(default_corpus_index, real_embedder):
    from gradio_client import Client

    retriever = Retriever.load(default_corpus_index.index_dir, embedder=real_embedder)
    running, url = start(default_corpus_index, retriever)
    try:
        result = Client(url, verbose=False).predict("Who leads the NCRI?", 5, api_name="/ask")
    finally:
        running.close()
    assert result == retriever.ask("Who leads the NCRI?", 5).to_dict()
    cited = result["passages"][0]  # the right passage first, with its lines cited
    assert (cited["section"], cited["start_line"], cited["end_line"]) == ("President-elect of the NCRI", 16, 16)
    assert "The president-elect of the NCRI is Mrs. Maryam Rajavi." in cited["text"]


def test_viewer_shows_the_text_the_citations_refer_to_for_html(settings, fake_embedder):
    (settings.corpus_dir / "bells.html").write_text(
        "<html><body><h1>Bells</h1>\n<p>The bell rings at noon every day.</p>\n"
        "<script>alert(5)</script></body></html>\n",
        encoding="utf-8",
    )
    build_index(settings, embedder=fake_embedder)
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    hit = retriever.ask("When does the bell ring?", 5, sources=["bells.html"]).passages[0]
    assert hit.source == "bells.html"
    running, url = start(settings, retriever)
    try:
        page = httpx.get(url + web.source_url(hit).split("#")[0]).text
    finally:
        running.close()
    body = page.split("<main", 1)[1]
    assert "<mark>The bell rings at noon every day.</mark>" in body
    assert "&lt;p&gt;" not in body and "alert(5)" not in body  # extracted text, not the markup
    highlighted = re.findall(r'<div class="line hl" id="L(\d+)">', page)
    assert highlighted == [str(n) for n in range(hit.start_line, hit.end_line + 1)]
