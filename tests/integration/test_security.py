"""What a hostile probe of a localhost server tries (issue 16.5, 16.6, 16.7, 16.9): forged Host
headers (DNS rebinding), password guessing, lone surrogates and undecodable bytes, Gradio's
generic upload. Pure logic first, then real servers spoken to with raw HTTP."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import qa
from qa.frontends import server as qserver
from qa.render import to_json
from qa.build import build_index
from qa.retriever import Retriever
from qa.frontends.cli import main
from qa.config import Settings
from qa.security import LoginBackoff, allowed_hosts, clean_text, host_name

from conftest import DATA, FakeEmbedder, patch_embedder
from test_during_builds import start_server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FORGED = ["attacker.example", "attacker.example:{port}", "127.0.0.1.attacker.example:{port}",
          "localhost.attacker.example", "[::2]:{port}", "localhost:{port}@attacker.example", ""]
LOCAL = ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LOCALHOST:{port}", "localhost", "127.0.0.1"]


# --- pure logic --------------------------------------------------------------------------------


def test_clean_text_replaces_lone_surrogates_only():
    assert clean_text("Super \ud800 Bowl") == "Super \ufffd Bowl"
    assert clean_text(os.fsdecode(b"caf\xe9 au lait")) == "caf\ufffd au lait"  # an undecodable argv byte
    text = "Ça va? 東京 😀"
    assert clean_text(text) is text


@pytest.mark.parametrize("header, name", [
    ("localhost:7860", "localhost"), ("LocalHost", "localhost"), ("[::1]:7860", "::1"), ("[::1]", "::1"),
    ("127.0.0.1", "127.0.0.1"), ("qa.example.:80", "qa.example"), ("", None), (None, None),
    ("a:b", None), ("[::1", None), ("[::1]x", None), ("localhost:80:80", None),
])
def test_host_name(header, name):
    assert host_name(header) == name


def test_allowed_hosts():
    assert allowed_hosts("127.0.0.1") == {"localhost", "127.0.0.1", "::1"}
    assert allowed_hosts("qa.lan", ["A.example, b.example:8080", "c.example"]) == {
        "localhost", "127.0.0.1", "::1", "qa.lan", "a.example", "b.example", "c.example"}
    assert allowed_hosts("[::1]") == {"localhost", "127.0.0.1", "::1"}
    assert allowed_hosts("127.0.0.1", ["*"]) is None
    everywhere = allowed_hosts("0.0.0.0")
    assert {"localhost", "127.0.0.1", "::1", socket.gethostname().lower()} <= everywhere and "0.0.0.0" not in everywhere


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_login_backoff_doubles_caps_and_resets():
    clock = Clock()
    backoff = LoginBackoff(free=3, base=1.0, cap=60.0, forget=3600.0, clock=clock)
    assert [backoff.delay(n) for n in range(1, 11)] == [0, 0, 0, 1, 2, 4, 8, 16, 32, 60]
    waits = [backoff.failed("10.0.0.1") for _ in range(5)]
    assert waits == [0, 0, 0, 1, 2]
    assert backoff.retry_after("10.0.0.1") == 2.0
    assert backoff.retry_after("10.0.0.2") == 0  # per client
    clock.now += 1.5
    assert backoff.retry_after("10.0.0.1") == 0.5
    clock.now += 0.5
    assert backoff.retry_after("10.0.0.1") == 0
    assert backoff.failed("10.0.0.1") == 4  # the sixth failure in a row
    backoff.succeeded("10.0.0.1")
    assert backoff.retry_after("10.0.0.1") == 0 and backoff.failed("10.0.0.1") == 0  # a success resets
    for _ in range(10):
        backoff.failed("10.0.0.3")
    assert backoff.retry_after("10.0.0.3") == 60  # capped
    clock.now += 3601
    assert backoff.failed("10.0.0.3") == 0  # an hour of quiet forgets


def test_login_backoff_memory_is_bounded():
    clock = Clock()
    backoff = LoginBackoff(free=0, base=10.0, clock=clock, max_clients=100)
    for i in range(1000):
        backoff.failed(f"10.0.{i // 256}.{i % 256}")
        clock.now += 1
    assert len(backoff._failures) <= 100
    assert backoff.retry_after("10.0.3.231") > 0  # the most recent clients are still held back


# --- a real server process: Host check and upload -----------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`qa serve` (FakeEmbedder) in its own process, with Gradio's temp folder in a fresh
    directory: (port, temp folder, settings)."""
    base = tmp_path_factory.mktemp("served")
    corpus = base / "corpus"
    import shutil

    shutil.copytree(DATA, corpus)
    temp = base / "gradio-tmp"
    temp.mkdir()
    env = {**os.environ, "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(base / "index"),
           "QA_MODEL": FakeEmbedder.name, "GRADIO_TEMP_DIR": str(temp)}
    proc, url, _ = start_server(env)
    yield int(url.rsplit(":", 1)[1].strip("/")), temp, Settings(corpus, base / "index", FakeEmbedder.name)
    proc.kill()
    proc.wait(timeout=30)


def raw(port, method, path, host, body=b"", headers=None, source="127.0.0.1"):
    """One HTTP request with exactly this Host header (none when `host` is empty)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host:
            conn.putheader("Host", host)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if body or method == "POST":
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


ROUTES = [
    ("GET", "/", b""),
    ("GET", "/source?file=garden.txt&lines=7", b""),
    ("GET", "/gradio_api/info", b""),
    ("GET", "/config", b""),
    ("POST", "/gradio_api/call/ask", b'{"data": ["When are the roses watered?", 1]}'),
    ("POST", "/gradio_api/upload", b""),
    ("GET", "/api/v1/sources", b""),
    ("POST", "/mcp", b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'),
]


@pytest.mark.parametrize("method, path, body", ROUTES, ids=[r[1] for r in ROUTES])
def test_forged_host_is_refused_on_every_route(served, method, path, body):
    port, _, _ = served
    for host in FORGED:
        status, data, _ = raw(port, method, path, host.format(port=port), body, {"Content-Type": "application/json"})
        assert status == 400, (host, status, data[:200])
        # (uvicorn itself refuses a missing or malformed Host before any app sees it)
        assert b"is not allowed" in data or data == b"Invalid HTTP request received.", (host, data[:200])
        assert b"roses" not in data and b"garden" not in data


def test_local_host_forms_are_answered(served):
    port, _, _ = served
    for host in LOCAL:
        status, data, _ = raw(port, "GET", "/source?file=garden.txt&lines=7", host.format(port=port))
        assert status == 200, (host, data[:200])
        assert b"The roses are watered every morning at six." in data


def test_gradio_upload_is_closed_and_stores_nothing(served):
    port, temp, _ = served
    before = sorted(p.relative_to(temp) for p in temp.rglob("*"))
    boundary = "qa-probe"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + b"A" * 300_000 + f"\r\n--{boundary}--\r\n".encode()
    status, data, _ = raw(port, "POST", "/gradio_api/upload", f"127.0.0.1:{port}", body,
                          {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert (status, json.loads(data)) == (403, {"detail": "File uploads are turned off on this server."})
    status, _, _ = raw(port, "POST", "/gradio_api/upload?upload_id=x", f"localhost:{port}", body,
                       {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 403
    assert sorted(p.relative_to(temp) for p in temp.rglob("*")) == before
    assert not [p for p in temp.rglob("*") if p.is_file() and b"AAAA" in p.read_bytes()]
    # The chat itself still works.
    status, data, _ = raw(port, "POST", "/gradio_api/call/ask", f"127.0.0.1:{port}",
                          b'{"data": ["When are the roses watered?", 1]}', {"Content-Type": "application/json"})
    assert status == 200 and "event_id" in json.loads(data)


def _gradio_ask(port, payload: bytes) -> dict:
    """POST /gradio_api/call/ask, then read its result event: the `ask` reply as a dict."""
    status, data, _ = raw(port, "POST", "/gradio_api/call/ask", f"127.0.0.1:{port}", payload,
                          {"Content-Type": "application/json"})
    assert status == 200, data
    event = json.loads(data)["event_id"]
    status, data, _ = raw(port, "GET", f"/gradio_api/call/ask/{event}", f"127.0.0.1:{port}")
    lines = data.decode().splitlines()
    assert lines[0] == "event: complete", data[:300]
    return json.loads(lines[1].removeprefix("data: "))[0]


def test_lone_surrogate_through_the_gradio_endpoint(served):
    port, _, _ = served
    reply = _gradio_ask(port, b'{"data": ["When are the roses \\ud800 watered?", 1]}')
    assert reply["question"] == "When are the roses \ufffd watered?"
    assert (reply["answer"]["source"], reply["answer"]["start_line"]) == ("garden.txt", 7)


def test_lone_surrogate_through_the_rest_api(served):
    port, _, _ = served
    status, data, _ = raw(port, "POST", "/api/v1/search", f"127.0.0.1:{port}",
                          b'{"question": "When are the roses \\udc80 watered?", "k": 1}', {"Content-Type": "application/json"})
    assert status == 200, data
    assert b"\\ufffd" in data or "\ufffd".encode() in data
    assert b"garden.txt" in data


# --- login back-off on a real server -----------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A server with a login and a back-off that holds a client for 10 minutes after its fourth
    failure in a row (so no assertion depends on how fast the requests go)."""
    base = tmp_path_factory.mktemp("guarded")
    settings = Settings(corpus_dir=base / "corpus", index_dir=base / "index", model=FakeEmbedder.name)
    import shutil

    shutil.copytree(DATA, settings.corpus_dir)
    embedder = FakeEmbedder()
    build_index(settings, embedder=embedder)
    app = qserver.create_app(settings, Retriever.load(settings.index_dir, embedder=embedder), auth="ann:s3cret",
                             allowed_hosts=["qa.example"], login_backoff=LoginBackoff(free=3, base=600.0, cap=600.0))
    running = qserver.start(app)
    yield int(running.url.rsplit(":", 1)[1].strip("/"))
    running.close()


def login(port, password, source="127.0.0.1"):
    body = f"username=ann&password={password}".encode()
    return raw(port, "POST", "/login", f"127.0.0.1:{port}", body,
               {"Content-Type": "application/x-www-form-urlencoded"}, source=source)


def test_failed_logins_back_off_per_client(guarded):
    port = guarded
    assert [login(port, f"guess{i}")[0] for i in range(4)] == [400, 400, 400, 400]
    status, data, headers = login(port, "s3cret")  # even the right password waits now
    assert status == 429 and 590 <= int(headers["retry-after"]) <= 600
    assert json.loads(data)["detail"].startswith("Too many failed logins: try again in ")
    # Another client (another source address) is not held back, and a success logs it in.
    status, data, headers = login(port, "s3cret", source="127.0.0.2")
    assert status == 200 and "set-cookie" in {k.lower() for k in headers}


def test_wrong_api_credentials_back_off_too(guarded):
    """HTTP basic on the REST API is a login as well: guessing there is held back the same way."""
    import base64

    port = guarded
    def api(password, source):
        token = base64.b64encode(f"ann:{password}".encode()).decode()
        return raw(port, "GET", "/api/v1/sources", f"127.0.0.1:{port}", headers={"Authorization": f"Basic {token}"},
                   source=source)
    assert api("s3cret", "127.0.0.3")[0] == 200
    assert [api(f"guess{i}", "127.0.0.3")[0] for i in range(4)] == [401, 401, 401, 401]
    status, _, headers = api("s3cret", "127.0.0.3")
    assert status == 429 and 590 <= int(headers["retry-after"]) <= 600


def test_allowed_hosts_option_adds_a_name(guarded):
    port = guarded
    assert raw(port, "GET", "/config", f"qa.example:{port}")[0] == 401  # past the Host check: login wall
    assert raw(port, "GET", "/config", f"qb.example:{port}")[0] == 400


# --- the login on the command line --------------------------------------------------------------


@pytest.fixture
def serve_args(settings, fake_embedder, monkeypatch):
    """`qa serve` arguments over a built index; `server.serve` replaced by a recorder of its auth."""
    patch_embedder(monkeypatch, fake_embedder)
    build_index(settings, embedder=fake_embedder)
    calls = []
    monkeypatch.setattr(qserver, "serve", lambda settings, **kw: calls.append(kw))
    args = ["serve", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", FakeEmbedder.name]
    return args, calls


def test_auth_on_the_command_line_warns_about_ps(serve_args, capsys):
    args, calls = serve_args
    assert main([*args, "--auth", "ann:s3cret"]) == 0
    assert calls[0]["auth"] == "ann:s3cret"
    assert capsys.readouterr().err == (
        "Warning: --auth shows the password to anyone on this machine who runs `ps`; use --auth-file FILE or "
        "the QA_AUTH environment variable instead.\n"
    )


def test_auth_file_and_qa_auth(serve_args, tmp_path, monkeypatch, capsys):
    args, calls = serve_args
    secret = tmp_path / "login"
    secret.write_text("ann:pa:ss word\n", encoding="utf-8")
    secret.chmod(0o600)
    assert main([*args, "--auth-file", str(secret)]) == 0
    assert calls[-1]["auth"] == "ann:pa:ss word" and capsys.readouterr().err == ""
    secret.chmod(0o644)
    assert main([*args, "--auth-file", str(secret)]) == 0
    assert capsys.readouterr().err == f"Warning: {secret} can be read by other users: `chmod 600 {secret}`.\n"
    monkeypatch.setenv("QA_AUTH", "bob:env-pass")
    assert Settings.from_env().auth == "bob:env-pass" and "env-pass" not in repr(Settings.from_env())
    assert main(args) == 0
    assert calls[-1]["auth"] == "bob:env-pass" and capsys.readouterr().err == ""


@pytest.mark.parametrize("extra, message", [
    (["--auth", "a:b", "--auth-file", "x"], "qa: Give --auth or --auth-file, not both.\n"),
    (["--auth-file", "{missing}"], "qa: Cannot read --auth-file {missing} (No such file or directory). "
                                   "Write USER:PASSWORD on its first line.\n"),
    (["--auth-file", "{empty}"], "qa: --auth-file {empty} is empty: write USER:PASSWORD on its first line.\n"),
    (["--auth-file", "{nocolon}"], "qa: --auth (QA_AUTH) must look like USER:PASSWORD, both non-empty.\n"),
])
def test_bad_auth_file_exits_2(serve_args, tmp_path, capsys, extra, message):
    args, calls = serve_args
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "nocolon": tmp_path / "nocolon"}
    paths["empty"].write_text("\n")
    paths["nocolon"].write_text("annonly\n")
    for p in paths.values():
        if p.exists():
            p.chmod(stat.S_IRUSR | stat.S_IWUSR)
    extra = [e.format(**paths) for e in extra]
    assert main([*args, *extra]) == 2
    assert capsys.readouterr().err.endswith(message.format(**paths)) and calls == []


# --- bad text through the CLI and Python -------------------------------------------------------


def test_undecodable_bytes_on_the_command_line(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    env = {**os.environ, "QA_CORPUS_DIR": str(settings.corpus_dir), "QA_INDEX_DIR": str(settings.index_dir),
           "QA_MODEL": FakeEmbedder.name}
    cmd = [os.fsencode(sys.executable), os.fsencode(HERE / "fake_qa.py"), b"ask", b"When are the roses w\xe9tered?", b"-k", b"1"]
    result = subprocess.run([*cmd, b"--json"], env=env, capture_output=True, timeout=300)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
    doc = json.loads(result.stdout)
    assert doc["question"] == "When are the roses w\ufffdtered?" and doc["answer"]["start_line"] == 7
    result = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert result.returncode == 0 and result.stdout.startswith(b"Answer (garden.txt:L7):")
    bad_k = subprocess.run([*cmd[:4], b"-k", b"\xff"], env=env, capture_output=True, timeout=300)
    assert bad_k.returncode == 2 and b"Traceback" not in bad_k.stderr
    assert bad_k.stderr.startswith(b"usage: ") and b"invalid int value" in bad_k.stderr


def test_lone_surrogate_through_the_python_api(settings, fake_embedder, monkeypatch):
    build_index(settings, embedder=fake_embedder)
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    answer = retriever.ask("Super \ud800 Bowl: when are the roses watered?", 1)
    assert answer.question == "Super \ufffd Bowl: when are the roses watered?"
    assert json.loads(to_json(answer).encode("utf-8"))["answer"]["start_line"] == 7
    assert retriever.search("\udce9 roses watered", 1)[0].start_line == 7
    monkeypatch.setenv("QA_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("QA_MODEL", FakeEmbedder.name)
    patch_embedder(monkeypatch, fake_embedder)
    assert qa.ask("roses \ud800 watered", 1).question == "roses \ufffd watered"


@pytest.mark.model
def test_real_model_lone_surrogate_and_undecodable_argv(default_corpus_index, real_embedder):
    """The real tokenizer is what failed on surrogates (TypeError: TextEncodeInput ...)."""
    retriever = Retriever.load(default_corpus_index.index_dir, embedder=real_embedder)
    answer = retriever.ask("Who leads the \ud800 NCRI?", 3)
    assert answer.question == "Who leads the \ufffd NCRI?" and answer.passages
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_CORPUS_DIR": str(default_corpus_index.corpus_dir),
           "QA_INDEX_DIR": str(default_corpus_index.index_dir)}
    result = subprocess.run([os.fsencode(sys.executable), b"-m", b"qa", b"ask", b"Who leads the NCRI\xe9?", b"--json", b"-k", b"1"],
                            env=env, capture_output=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["question"] == "Who leads the NCRI\ufffd?"
