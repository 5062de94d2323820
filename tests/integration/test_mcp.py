"""The MCP server, driven by the SDK's own client over both transports: stdio (`qa mcp` spawned
as a subprocess) and streamable HTTP (/mcp of a `qa serve` subprocess on a free 127.0.0.1 port,
stopped by its pid). FakeEmbedder processes run `tests/fake_qa.py` (the `qa` CLI with the fake
embedder); the real model runs `python -m qa`. Also: every interface returns the same record."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from qa.frontends import service
from qa.retriever import Retriever
from qa.config import Settings

from conftest import FakeEmbedder, patch_embedder
from test_web import fake_index, free_port

ROOT = Path(__file__).resolve().parents[2]
FAKE_QA = str(ROOT / "tests" / "integration" / "fake_qa.py")
TOOLS = {"search", "read_source", "list_sources", "index_status"}


def env_for(settings: Settings, **extra) -> dict:
    return {
        **os.environ,
        "QA_CORPUS_DIR": str(settings.corpus_dir),
        "QA_INDEX_DIR": str(settings.index_dir),
        "QA_MODEL": settings.model,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def stdio(settings: Settings, *command: str):
    from mcp import StdioServerParameters

    return StdioServerParameters(command=sys.executable, args=list(command), env=env_for(settings), cwd=str(ROOT))


def http(url: str, headers: dict | None = None):
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    return streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))


def session(target, calls: list[tuple[str, dict]]):
    """Connect to `target` with the SDK's Client, list the tools, make `calls`: (tools, results)."""
    from mcp import Client

    async def run():
        async with Client(target, read_timeout_seconds=120) as client:
            tools = (await client.list_tools()).tools
            return tools, [await client.call_tool(name, args) for name, args in calls]

    return asyncio.run(run())


class Serve:
    """`qa serve` (FakeEmbedder) in a subprocess on a free port; stopped by its pid."""

    def __init__(self, settings: Settings, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc = subprocess.Popen(
            [sys.executable, FAKE_QA, "serve", "--port", str(self.port)],
            env=env_for(settings, **env), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("qa serve exited: " + self.proc.stderr.read())
            try:
                if httpx.get(self.url + "api/v1/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "qa serve did not start"
            time.sleep(0.2)

    def stop(self) -> None:
        os.kill(self.proc.pid, 15)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, 9)
            self.proc.wait()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A FakeEmbedder index of make_corpus(): (settings, retriever)."""
    return fake_index(tmp_path_factory.mktemp("mcp"))


@pytest.fixture(scope="module")
def served(indexed):
    """`qa serve` over that index, with a login and an API token."""
    process = Serve(indexed[0], QA_AUTH="ann:s3cret", QA_API_TOKEN="t0k")
    yield process
    process.stop()


def structured(result) -> dict:
    assert not result.is_error, result.content
    # clients that read only the text content get the same record
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def error_text(result, tool: str) -> str:
    """The library's message of a failed call (the SDK puts "Error executing tool NAME: " first)."""
    assert result.is_error
    prefix = f"Error executing tool {tool}: "
    assert result.content[0].text.startswith(prefix), result.content[0].text
    return result.content[0].text[len(prefix) :]


def check_tools(tools, results, settings: Settings, retriever) -> None:
    """What both transports must answer to CALLS."""
    assert {t.name for t in tools} == TOOLS
    by_name = {t.name: t for t in tools}
    assert "Quote" in by_name["search"].description and "cite" in by_name["search"].description
    assert {"passages", "answer", "found", "reason"} <= set(by_name["search"].output_schema["properties"])
    assert set(by_name["search"].input_schema["properties"]) == {"question", "k", "sources"}
    assert all(t.annotations.read_only_hint for t in tools)
    search, filtered, read, listed, status, empty, outside = results
    assert structured(search) == retriever.ask("When are the roses watered?", 3).to_dict()
    assert structured(filtered) == retriever.ask("boats", 2, sources=["sub/*"]).to_dict()
    text = (settings.corpus_dir / "garden.txt").read_text(encoding="utf-8")
    line = structured(read)
    assert line["text"] == text.split("\n")[6] == text[line["start_char"] : line["end_char"]]
    assert structured(listed) == service.sources_record(settings, retriever)
    assert structured(status) == service.status_record(settings)
    assert error_text(empty, "search").startswith("The question is empty")
    assert error_text(outside, "read_source") == "'../outside/secret.txt' is not a file of the corpus."


CALLS = [
    ("search", {"question": "When are the roses watered?", "k": 3}),
    ("search", {"question": "boats", "k": 2, "sources": ["sub/*"]}),
    ("read_source", {"file": "garden.txt", "start_line": 7, "end_line": 7}),
    ("list_sources", {}),
    ("index_status", {}),
    ("search", {"question": "   "}),
    ("read_source", {"file": "../outside/secret.txt"}),
]


def test_stdio_transport(indexed):
    settings, retriever = indexed
    tools, results = session(stdio(settings, FAKE_QA, "mcp"), CALLS)
    check_tools(tools, results, settings, retriever)


def test_streamable_http_transport_on_qa_serve(indexed, served):
    settings, retriever = indexed
    tools, results = session(http(served.url + "mcp", {"Authorization": "Bearer t0k"}), CALLS)
    check_tools(tools, results, settings, retriever)


def test_http_mcp_needs_the_login(served):
    from base64 import b64encode

    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    refused = httpx.post(served.url + "mcp", json=hello, headers=headers)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthenticated"
    assert httpx.post(served.url + "mcp", json=hello, headers={**headers, "Authorization": "Bearer nope"}).status_code == 401
    basic = "Basic " + b64encode(b"ann:s3cret").decode()
    tools, results = session(http(served.url + "mcp", {"Authorization": basic}), [("index_status", {})])
    assert structured(results[0])["state"] == "ok"


def test_stdio_without_an_index_says_to_build_one(settings):
    tools, results = session(stdio(settings, FAKE_QA, "mcp"), [("search", {"question": "roses"}), ("index_status", {})])
    assert error_text(results[0], "search") == f"No index in {settings.index_dir}/. Run `qa index` to build one."
    assert structured(results[1])["state"] == "missing"


def test_every_interface_returns_the_same_record(indexed, served, monkeypatch, capsys):
    """Python API, `qa ask --json`, POST /api/v1/search, Gradio's /ask, MCP `search` over stdio
    and over HTTP: one question, one record."""
    import qa
    from gradio_client import Client as GradioClient

    settings, retriever = indexed
    question, k = "When are the roses watered?", 3
    monkeypatch.setenv("QA_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("QA_MODEL", FakeEmbedder.name)
    patch_embedder(monkeypatch, FakeEmbedder())
    python_api = qa.ask(question, k).to_dict()

    cli = subprocess.run([sys.executable, FAKE_QA, "ask", question, "-k", str(k), "--json"],
                         env=env_for(settings), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    auth = {"Authorization": "Bearer t0k"}
    rest = httpx.post(served.url + "api/v1/search", json={"question": question, "k": k}, headers=auth, timeout=30)
    gradio = GradioClient(served.url, auth=("ann", "s3cret"), verbose=False).predict(question, k, api_name="/ask")
    _, (mcp_http,) = session(http(served.url + "mcp", auth), [("search", {"question": question, "k": k})])
    _, (mcp_stdio,) = session(stdio(settings, FAKE_QA, "mcp"), [("search", {"question": question, "k": k})])

    records = {
        "qa ask --json": json.loads(cli.stdout),
        "/api/v1/search": rest.json(),
        "Gradio /ask": gradio,
        "MCP search (HTTP)": structured(mcp_http),
        "MCP search (stdio)": structured(mcp_stdio),
    }
    for name, record in records.items():
        assert record == python_api, name
    assert python_api["found"] is True and python_api["passages"][0]["section"] == "Watering"


def test_qa_mcp_imports_no_web_or_model_stack():
    """`qa mcp` starts fast: building its server loads the MCP SDK, not gradio, fastapi, torch
    or faiss (the model loads at the first search)."""
    code = (
        "import sys\nfrom qa.config import Settings\nfrom qa.frontends.mcp_server import build_server\n"
        "build_server(Settings())\n"
        "print(sorted(m for m in ('gradio', 'fastapi', 'torch', 'sentence_transformers', 'faiss', 'onnxruntime')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.model
def test_real_model_over_stdio_python_m_qa_mcp(default_corpus_index, real_embedder):
    settings = Settings(corpus_dir=default_corpus_index.corpus_dir, index_dir=default_corpus_index.index_dir)
    retriever = Retriever.load(settings.index_dir, embedder=real_embedder)
    _, (result,) = session(stdio(settings, "-m", "qa", "mcp"), [("search", {"question": "Who leads the NCRI?", "k": 3})])
    record = structured(result)
    assert record == retriever.ask("Who leads the NCRI?", 3).to_dict()
    top = record["passages"][0]
    assert (top["section"], top["start_line"]) == ("President-elect of the NCRI", 16)
    assert "Maryam Rajavi" in record["answer"]["text"] and record["found"] is True
