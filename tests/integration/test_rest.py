"""The REST API (/api/v1) of `qa serve`: a real server on a free 127.0.0.1 port (the whole app:
chat, API, MCP), a FakeEmbedder index, plain HTTP. Records, errors and their status codes, the
login, the docs page."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from qa.build import build_index
from qa.frontends import rest, service
from qa.frontends.cli import main
from qa.retriever import Retriever
from qa.errors import IndexMissing

from conftest import FakeEmbedder
from test_web import fake_index, start

API = "api/v1/"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The whole app over a FakeEmbedder index of make_corpus(): (url, retriever, settings)."""
    settings, retriever = fake_index(tmp_path_factory.mktemp("rest"))
    running, url = start(settings, retriever)
    yield url, retriever, settings
    running.close()


def post(url, body, **kw):
    return httpx.post(url + API + "search", json=body, timeout=30, **kw)


# --- search ----------------------------------------------------------------------------------


def test_search_returns_exactly_the_ask_json_record(served):
    url, retriever, settings = served
    response = post(url, {"question": "When are the roses watered?", "k": 3})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    record = response.json()
    assert record == retriever.ask("When are the roses watered?", 3).to_dict()
    assert record["found"] is True and record["reason"].startswith("a ")
    assert record["answer"]["text"] == ("The roses are watered every morning at six. In dry summers the gardeners "
                                        "also water the lavender, which otherwise needs little care.")
    top = record["passages"][0]
    text = (settings.corpus_dir / top["source"]).read_text(encoding="utf-8")
    assert (top["source"], top["section"], top["start_line"]) == ("garden.txt", "Watering", 7)
    assert top["text"] == text[top["start_char"] : top["end_char"]]


def test_search_defaults_and_source_filter(served):
    url, retriever, _ = served
    record = post(url, {"question": "boats roses"}).json()
    assert len(record["passages"]) == min(5, retriever.manifest.passages)
    only = post(url, {"question": "boats roses", "sources": ["sub/*"]}).json()
    assert {p["source"] for p in only["passages"]} == {"sub/boats.md"}
    assert only == retriever.ask("boats roses", 5, sources=["sub/*"]).to_dict()
    assert post(url, {"question": "boats roses", "sources": "sub/"}).json()["passages"][0]["source"] == "sub/boats.md"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"question": ""}, "The question is empty"),
        ({"question": "  \n"}, "The question is empty"),
        ({}, "The question is empty"),
        ({"question": None}, "The question is empty"),
        ({"question": 42}, "The question is empty"),
        ({"question": "roses", "k": 0}, "k must be a whole number from 1 to 100, not 0."),
        ({"question": "roses", "k": 101}, "k must be a whole number from 1 to 100, not 101."),
        ({"question": "roses", "k": 2.5}, "k must be a whole number from 1 to 100, not 2.5."),
        ({"question": "roses", "k": "many"}, "k must be a whole number from 1 to 100, not 'many'."),
        ({"question": "roses", "sources": 5}, "sources must be a list of file patterns"),
        ({"question": "roses", "sources": ["nothing-like-it.pdf"]}, "No indexed file matches 'nothing-like-it.pdf'"),
        ({"question": "roses", "q": "typo"}, "Unknown field 'q': send question, k and sources."),
        (["roses"], "The request body must be a JSON object"),
    ],
)
def test_search_bad_input_is_400_with_the_library_message(served, body, message):
    response = post(served[0], body)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_input"
    assert response.json()["detail"].startswith(message)


def test_search_body_that_is_not_json_is_400(served):
    response = httpx.post(served[0] + API + "search", content=b"question=roses", timeout=30)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("The request body must be JSON")


def test_search_body_too_large_is_413_with_or_without_a_length(served):
    big = json.dumps({"question": "roses " * 200_000}).encode()  # 1.2 MB
    response = httpx.post(served[0] + API + "search", content=big, timeout=30)
    assert response.status_code == 413
    assert response.json() == {"error": "too_large", "detail": "The request body is larger than 1,000,000 bytes: send a shorter question."}
    chunked = httpx.post(served[0] + API + "search", content=iter([big[i : i + 65536] for i in range(0, len(big), 65536)]), timeout=30)
    assert chunked.status_code == 413
    # a question under the 4,000-character cap is answered; a longer one is a clear error
    assert post(served[0], {"question": "roses " * 600, "k": 1}).status_code == 200  # under the 4,000-char cap
    over = post(served[0], {"question": "roses " * 20_000, "k": 1})  # qa.config.MAX_QUESTION_CHARS
    assert over.status_code in (400, 413) and "the limit is 4,000" in over.json()["detail"]


def test_unknown_endpoint_is_a_json_404(served):
    response = httpx.get(served[0] + API + "nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "No endpoint GET /api/v1/nothing-here: see /api/v1/docs for the API."}


# --- sources, status, source -----------------------------------------------------------------


def test_sources_lists_indexed_files_with_passage_counts(served):
    url, retriever, settings = served
    record = httpx.get(url + API + "sources").json()
    counts = {name: len(retriever.passages_of(name)) for name in retriever.manifest["files"]}
    assert sum(counts.values()) == retriever.manifest.passages
    assert [(s["source"], s["passages"], s["changed"], s["exists"]) for s in record["sources"]] == [
        (name, counts[name], False, True) for name in sorted(retriever.manifest["files"])
    ]
    assert record["generation"] == retriever.generation
    assert record["skipped"] == [{"source": path, "reason": why} for path, why in retriever.manifest["skipped"]]
    assert record["not_indexed"] == []


def test_sources_says_which_files_changed_since_the_build(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    garden = settings.corpus_dir / "garden.txt"
    garden.write_text(garden.read_text(encoding="utf-8") + "\nA new line.\n", encoding="utf-8")
    (settings.corpus_dir / "sub" / "boats.md").unlink()
    (settings.corpus_dir / "new.md").write_text("# New\n\nNot indexed yet.\n", encoding="utf-8")
    record = service.sources_record(settings, retriever)
    assert {s["source"]: (s["changed"], s["exists"]) for s in record["sources"]} == {
        "garden.txt": (True, True),
        "sub/boats.md": (True, False),
    }
    assert record["not_indexed"] == ["new.md"]


def test_status_is_the_status_json_record(served, capsys):
    url, _, settings = served
    assert main(["status", "--json", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir),
                 "--model", FakeEmbedder.name]) == 0
    assert httpx.get(url + API + "status").json() == json.loads(capsys.readouterr().out)


def test_source_returns_the_cited_lines_exactly(served):
    url, retriever, settings = served
    hit = retriever.ask("When are the roses watered?", 1).passages[0]
    response = httpx.get(url + API + "source", params={"file": hit.source, "lines": f"{hit.start_line}-{hit.end_line}"})
    assert response.status_code == 200
    record = response.json()
    text = (settings.corpus_dir / hit.source).read_text(encoding="utf-8")
    assert record["text"] == text[record["start_char"] : record["end_char"]]
    assert hit.text in record["text"] and "\n" not in record["text"]
    assert (record["start_line"], record["end_line"], record["total_lines"], record["changed"]) == (7, 7, 11, False)
    whole = httpx.get(url + API + "source", params={"file": "sub/boats.md"}).json()
    boats = (settings.corpus_dir / "sub" / "boats.md").read_text(encoding="utf-8")
    assert boats.endswith("\n") and whole["text"] == boats[:-1]  # every line, each without its newline
    clamped = httpx.get(url + API + "source", params={"file": "garden.txt", "lines": "9-999"}).json()
    assert clamped["end_line"] == clamped["total_lines"] and clamped["text"] == text[clamped["start_char"] : -1]


@pytest.mark.parametrize(
    "requested",
    ["../../etc/passwd", "/etc/passwd", "sub/../garden.txt", "./garden.txt", "..\\garden.txt",
     "escape.txt", ".hidden.txt", "missing.txt", "", "garden.txt\x00.md"],
)
def test_source_refuses_anything_but_corpus_files(served, requested):
    response = httpx.get(served[0] + API + "source", params={"file": requested})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "is not a file of the corpus" in response.json()["detail"]
    assert "Top secret" not in response.text and "root:" not in response.text


@pytest.mark.parametrize(
    "lines, status, message",
    [
        ("x", 400, "lines must look like 12 or 12-18"),
        ("0-3", 400, "lines must be 1-based and in order"),
        ("9-3", 400, "lines must be 1-based and in order"),
        ("500", 400, "garden.txt has 11 lines: ask for lines within 1-11."),
    ],
)
def test_source_bad_lines(served, lines, status, message):
    response = httpx.get(served[0] + API + "source", params={"file": "garden.txt", "lines": lines})
    assert response.status_code == status
    assert response.json()["detail"].startswith(message)


def test_source_missing_file_parameter_is_400(served):
    response = httpx.get(served[0] + API + "source")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("file: Field required")


def test_source_too_long_is_413(served, monkeypatch):
    monkeypatch.setattr(service, "MAX_SOURCE_CHARS", 100)
    response = httpx.get(served[0] + API + "source", params={"file": "garden.txt"})
    assert response.status_code == 413
    assert response.json()["detail"].endswith("more than 100: ask for fewer lines.")
    assert httpx.get(served[0] + API + "source", params={"file": "garden.txt", "lines": "7"}).status_code == 413
    assert httpx.get(served[0] + API + "source", params={"file": "garden.txt", "lines": "1"}).status_code == 200


def test_no_usable_index_is_503(settings):
    """Every library error about the index maps to 503 with its message (the server keeps its
    loaded index when a new one is damaged, so this is driven through a retriever that fails)."""
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from qa.frontends.server import Guard

    class NoIndex:
        def ask(self, *args, **kwargs):
            raise IndexMissing(f"No index in {settings.index_dir}/. Run `qa index` to build one.")

        manifest = property(ask)

    app = FastAPI()
    rest.install(app, settings, NoIndex(), Guard())
    with TestClient(app) as client:
        for response in (client.post("/api/v1/search", json={"question": "roses"}), client.get("/api/v1/sources")):
            assert response.status_code == 503
            assert response.json() == {"error": "unavailable", "detail": f"No index in {settings.index_dir}/. Run `qa index` to build one."}


# --- login -----------------------------------------------------------------------------------


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def guarded(served):
    """The same index served with --auth ann:s3cret and QA_API_TOKEN=t0k. These tests send many
    wrong credentials on purpose: the login back-off (tested in test_security) is set not to
    hold them back."""
    from qa.security import LoginBackoff

    _, retriever, settings = served
    running, url = start(settings, retriever, auth="ann:s3cret", api_token="t0k",
                         login_backoff=LoginBackoff(free=10_000))
    yield url
    running.close()


@pytest.mark.parametrize("route", ["status", "sources", "source?file=garden.txt", "nothing-here"])
def test_api_needs_credentials_with_auth(guarded, route):
    response = httpx.get(guarded + API + route)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="qa"'
    assert response.json() == {
        "error": "unauthenticated",
        "detail": "Log in first: send HTTP basic with the --auth user and password or Authorization: Bearer <QA_API_TOKEN>.",
    }
    for headers in (_basic("ann", "wrong"), _basic("bob", "s3cret"), {"Authorization": "Bearer nope"},
                    {"Authorization": "Basic !!!"}, {"Authorization": "t0k"}):
        assert httpx.get(guarded + API + route, headers=headers).status_code == 401


def test_api_accepts_basic_bearer_and_the_chat_login(guarded):
    question = {"question": "When are the roses watered?", "k": 1}
    assert post(guarded, question).status_code == 401
    assert post(guarded, question, headers=_basic("ann", "s3cret")).json()["answer"]["start_line"] == 7
    assert post(guarded, question, headers={"Authorization": "Bearer t0k"}).json()["answer"]["start_line"] == 7
    with httpx.Client() as browser:
        assert browser.post(guarded + "login", data={"username": "ann", "password": "s3cret"}).status_code == 200
        assert browser.get(guarded + API + "status").status_code == 200
    assert httpx.get(guarded + "config").status_code == 401  # the chat itself still asks for its login


def test_token_alone_protects_the_api_but_not_the_chat(served):
    _, retriever, settings = served
    running, url = start(settings, retriever, api_token="t0k")
    try:
        assert httpx.get(url + API + "status").status_code == 401
        assert httpx.get(url + API + "status", headers=_basic("ann", "s3cret")).status_code == 401
        assert httpx.get(url + API + "status", headers={"Authorization": "Bearer t0k"}).status_code == 200
        assert httpx.get(url + "config").status_code == 200
    finally:
        running.close()


# --- schema and docs -------------------------------------------------------------------------


def test_openapi_schema_and_docs_page_are_served_locally(served):
    url = served[0]
    schema = httpx.get(url + API + "openapi.json").json()
    assert set(schema["paths"]) == {"/api/v1/search", "/api/v1/sources", "/api/v1/status", "/api/v1/source"}
    assert set(schema["paths"]["/api/v1/search"]["post"]["responses"]) == {"200", "400", "401", "413", "503"}
    body = schema["paths"]["/api/v1/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"question", "k", "sources"}
    assert set(schema["components"]["securitySchemes"]) == {"HTTPBasic", "HTTPBearer"}
    docs = httpx.get(url + API + "docs")
    assert docs.status_code == 200 and "qa API" in docs.text
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/api/v1/docs/assets/{asset}" in docs.text
        assert httpx.get(url + API + "docs/assets/" + asset).status_code == 200


def test_schema_models_name_every_field_of_the_records(served):
    """The documented shapes follow the one serialiser: no field of a record is undocumented."""
    from qa.frontends import wire

    url, retriever, settings = served
    record = retriever.ask("When are the roses watered?", 2).to_dict()
    assert set(wire.SearchResult.model_fields) == set(record)
    assert set(wire.Passage.model_fields) == set(record["passages"][0])
    assert set(wire.Span.model_fields) == set(record["answer"])
    assert set(wire.StatusResult.model_fields) == set(service.status_record(settings))
    sources = service.sources_record(settings, retriever)
    assert set(wire.SourcesResult.model_fields) == set(sources)
    assert set(wire.SourceInfo.model_fields) == set(sources["sources"][0])
    assert set(wire.SourceText.model_fields) == set(service.source_record(settings, retriever, "garden.txt", (7, 7)))
