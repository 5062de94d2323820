"""Answer while building (issue 16.3): with a real build holding the lock (a separate process,
paused), `qa ask` answers from the live index and says it is being updated, `qa serve` starts
and answers; with a read-only index folder and a changed corpus, `qa ask` answers from the
stale index and says how to update it."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import qa
from qa.build import build_index
from qa.frontends.cli import main
from qa.store.local.generations import read_manifest

from conftest import patch_embedder
from test_lifecycle import BEES, _spawn

HERE = Path(__file__).resolve().parent


def _env(settings, **extra):
    return {**os.environ, "QA_CORPUS_DIR": str(settings.corpus_dir), "QA_INDEX_DIR": str(settings.index_dir),
            "QA_MODEL": "fake-embedder", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env, *args):
    """`qa serve` (FakeEmbedder) in its own process on a free port: (process, url, stderr lines
    up to "web chat on"). Stop it with process.kill()."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "fake_qa.py"), "serve", "--port", str(port), *args], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    said = []
    for line in proc.stderr:
        said.append(line.rstrip("\n"))
        if "web chat on" in line:
            break
    else:
        proc.wait(timeout=30)
        pytest.fail("qa serve stopped:\n" + "\n".join(said))
    for _ in range(600):  # "web chat on" is said just before the port opens
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}/", said


@pytest.fixture
def building(settings, fake_embedder):
    """A live index of the test corpus, the corpus then changed, and a `qa index` process
    holding the lock, paused before it embeds anything."""
    build_index(settings, embedder=fake_embedder)
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    proc = _spawn(settings, "embed")
    yield proc
    proc.kill()
    proc.wait(timeout=30)


def test_ask_answers_from_the_live_index_while_a_build_runs(settings, fake_embedder, building, monkeypatch, capsys):
    patch_embedder(monkeypatch, fake_embedder)
    built = read_manifest(settings.index_dir).built_at
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-embedder"]
    assert main(["ask", "When are the roses watered?", "-k", "1", *args]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[-1] == (
        f"The index in {settings.index_dir}/ is being updated by another `qa index`: answering from the current "
        f"index (built {built}) until it is done."
    )
    assert out.startswith("Answer (garden.txt:L7):\n  The roses are watered every morning at six.")
    assert building.poll() is None  # the build is still running, untouched


@pytest.mark.parametrize("args, says", [
    ([], "changed since the index was built: updating it while serving"),  # its own watcher updates it later
    (["--no-watch"], "is being updated by another `qa index`"),
])
def test_serve_starts_and_answers_while_a_build_runs(settings, building, args, says):
    from gradio_client import Client

    proc, url, said = start_server(_env(settings), *args)
    try:
        assert any(says in line for line in said), said
        result = Client(url, verbose=False).predict("When are the roses watered?", 1, api_name="/ask")
        assert (result["answer"]["source"], result["answer"]["start_line"]) == ("garden.txt", 7)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _read_only_runner(index_dir: Path):
    """A command prefix under which `index_dir` is read-only: a private read-only bind mount
    when running as root (root writes through permission bits), else the folder's own mode."""
    if os.geteuid() != 0:
        index_dir.chmod(0o555)
        return []
    if not shutil.which("unshare"):
        pytest.skip("running as root without `unshare`: cannot make a folder read-only")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode:
        pytest.skip(f"running as root and `unshare -m` is not allowed here: {probe.stderr.decode().strip()}")
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', str(index_dir)]


def test_ask_answers_from_a_stale_read_only_index(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    built = read_manifest(settings.index_dir).built_at
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    before = sorted(p.name for p in settings.index_dir.iterdir())
    prefix = _read_only_runner(settings.index_dir)
    try:
        result = subprocess.run([*prefix, sys.executable, str(HERE / "fake_qa.py"), "ask", "bees hives honey", "-k", "1"],
                                env=_env(settings), capture_output=True, text=True, timeout=300)
    finally:
        settings.index_dir.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"The index in {settings.index_dir}/ is stale ({settings.corpus_dir}/ changed since it was built {built}) "
        f"and cannot be updated: Cannot write the index in {settings.index_dir}/ (read-only). Point --index "
        "(QA_INDEX_DIR) at a writable folder. Answering from the stale index."
    )
    assert "[1] " in result.stdout and "bees.txt" not in result.stdout  # the live (old) index answered
    assert sorted(p.name for p in settings.index_dir.iterdir()) == before
