"""The milvus backend (Milvus Lite in this process, and a `milvus-lite server` on 127.0.0.1):
same results as the local backend, the lifecycle guarantees of a build (atomic switch, kill at
any point, one build at a time, incremental reuse, manifest checks) and one-line errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa.build import build_index
from qa.config import ChunkSettings, Settings
from qa.errors import IndexLocked, IndexMismatch, IndexMissing, StoreUnavailable
from qa.lexical import tokenize
from qa.retriever import Retriever
from qa.store import get_store

from backends import milvus_server, milvus_uri, prefix  # noqa: F401 (fixtures)  tests/store/backends.py
from conftest import FakeEmbedder

ROOT = Path(__file__).resolve().parents[2]

FAKE_QA = ROOT / "tests" / "integration" / "fake_qa.py"
QUESTIONS = ["when do tomatoes need water", "pruning roses in spring", "garden soil", "how do boats sail into wind",
             "nothing about this anywhere"]


def milvus_settings(settings: Settings, uri: str, prefix: str) -> Settings:
    return replace(settings, store="milvus", milvus_uri=uri, milvus_prefix=prefix)


def run_qa(*args, env=None, real=False, timeout=120):
    """`qa ARGS` in a fresh process (FakeEmbedder via tests/integration/fake_qa.py; `real`: `python -m qa`)."""
    cmd = [sys.executable, *(["-m", "qa"] if real else [str(FAKE_QA)]), *args]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT)


def test_same_hits_as_the_local_backend(settings, milvus_uri, prefix):
    """Milvus proposes the candidates, qa scores them: every hit, score and citation as local."""
    build_index(settings, FakeEmbedder())
    local = Retriever.load(settings=settings, embedder=FakeEmbedder())
    ms = milvus_settings(settings, milvus_uri, prefix)
    build_index(ms, FakeEmbedder())
    remote = Retriever.load(settings=ms, embedder=FakeEmbedder())
    assert not remote.reader.exact and len(remote.reader) == len(local.reader)
    for question in QUESTIONS:
        for sources in (None, ["boats"], ["garden.txt"]):
            a = local.search(question, k=4, sources=sources)
            b = remote.search(question, k=4, sources=sources)
            assert [h.citation for h in b] == [h.citation for h in a], (question, sources)
            assert [h.score for h in b] == pytest.approx([h.score for h in a], abs=1e-5)
            assert [h.bm25 for h in b] == pytest.approx([h.bm25 for h in a], abs=1e-5)
            if sources:
                assert all(sources[0] in h.source for h in b)
            for hit in b:  # citations are exact spans of the files
                text = (settings.corpus_dir / hit.source).read_text(encoding="utf-8")
                assert text[hit.start_char : hit.end_char] == hit.text


def test_reader_matches_the_local_reader(settings, milvus_uri, prefix):
    build_index(settings, FakeEmbedder())
    ms = milvus_settings(settings, milvus_uri, prefix)
    build_index(ms, FakeEmbedder())
    a, b = get_store(settings).open(), get_store(ms).open()
    rows = np.arange(len(a))
    assert b.sources() == a.sources() == ["garden.txt", "sub/boats.md"]
    assert b.passages(rows[::-1]) == a.passages(rows[::-1])
    assert b.passages_of("sub/boats.md") == a.passages_of("sub/boats.md")
    assert np.array_equal(b.source_mask({"garden.txt"}), a.source_mask({"garden.txt"}))
    np.testing.assert_allclose(b.passage_vectors(rows), a.passage_vectors(rows), atol=1e-6)
    starts, counts = b.sentence_range(rows)
    assert (starts.tolist(), counts.tolist()) == tuple(x.tolist() for x in a.sentence_range(rows))
    ids = np.arange(int(counts.sum()))
    assert b.sentence_spans(ids) == a.sentence_spans(ids)
    np.testing.assert_allclose(b.sentence_vectors(ids), a.sentence_vectors(ids), atol=1e-6)
    for question in QUESTIONS:
        tokens = tokenize(question)
        np.testing.assert_allclose(b.bm25_scores(tokens, rows), a.bm25_scores(tokens, rows), atol=1e-5)
        assert b.bm25_idf(tokens) == pytest.approx(a.bm25_idf(tokens))
        for sources in (None, {"sub/boats.md"}, set()):
            (ra, sa), (rb, sb) = a.bm25_search(tokens, 3, sources), b.bm25_search(tokens, 3, sources)
            assert rb.tolist() == ra.tolist()
            np.testing.assert_allclose(sb, sa, atol=1e-5)
            query = FakeEmbedder().encode_queries([question])[0]
            (ra, ca), (rb, cb) = a.search(query, 3, sources), b.search(query, 3, sources)
            np.testing.assert_allclose(cb, ca, atol=1e-5)  # the same cosines (rows of equal cosine may swap)
            np.testing.assert_allclose(a.passage_vectors(rb) @ query, cb, atol=1e-5)
            assert set(rb.tolist()) <= set(np.flatnonzero(a.source_mask(sources) if sources is not None else rows >= 0))


def test_update_reuses_unchanged_files_and_switches_the_alias(settings, milvus_uri, prefix):
    ms = milvus_settings(settings, milvus_uri, prefix)
    store = get_store(ms)
    first = build_index(ms, FakeEmbedder())
    gen1 = store.generation()
    assert first.mode == "full" and str(first.index_path).startswith(milvus_uri)
    assert build_index(ms, FakeEmbedder()).mode == "unchanged" and store.generation() == gen1
    (settings.corpus_dir / "bees.txt").write_text("Bees\n\nBees make honey from nectar in summer.\n", encoding="utf-8")
    embedder = FakeEmbedder()
    second = build_index(ms, embedder)
    assert second.mode == "incremental" and second.reused == 2
    assert embedder.embedded and all("honey" in t or "Bees" in t for t in embedder.embedded)  # only the new file
    gen2 = store.generation()
    assert gen2 != gen1 and store.generations() == sorted([gen1, gen2])  # the previous one kept for open readers
    (settings.corpus_dir / "bees.txt").unlink()
    build_index(ms, FakeEmbedder())
    gen3 = store.generation()
    assert store.generations() == sorted([gen2, gen3])  # older ones dropped
    hits = Retriever.load(settings=ms, embedder=FakeEmbedder()).search("bees honey", k=3)
    assert all(h.source != "bees.txt" for h in hits)


def test_manifest_mismatch_is_detected(settings, milvus_uri, prefix):
    ms = milvus_settings(settings, milvus_uri, prefix)
    build_index(ms, FakeEmbedder())
    assert get_store(ms).manifest().model == FakeEmbedder.name
    with pytest.raises(IndexMismatch) as err:
        Retriever.load(settings=replace(ms, model="another-model"), embedder=FakeEmbedder())
    assert milvus_uri in str(err.value) and "another-model" in str(err.value)
    reader = get_store(ms).open()
    with pytest.raises(IndexMismatch, match="64-dimensional"):  # vectors of another size than the index's
        reader.search(np.ones(32, np.float32) / np.sqrt(32), 3)
    report = build_index(replace(ms, chunking=ChunkSettings(min_words=5, max_words=30)), FakeEmbedder())
    assert report.mode == "full" and "chunk" in report.reason


def test_missing_index_names_the_uri_and_the_fix(settings, milvus_uri, prefix):
    ms = milvus_settings(settings, milvus_uri, prefix)
    with pytest.raises(IndexMissing) as err:
        Retriever.load(settings=ms, embedder=FakeEmbedder())
    assert milvus_uri in str(err.value) and "qa index --store milvus" in str(err.value)
    assert get_store(ms).manifest() is None and get_store(ms).generation() is None


def test_cli_says_missing_index_and_other_model_in_one_line(settings, milvus_server, prefix):
    """Through `qa` in its own process: `status` with no index there names the command that builds
    it; `ask` over an index of another model is one line naming the URI and both ways out."""
    args = ["--corpus", str(settings.corpus_dir), "--store", "milvus", "--milvus-uri", milvus_server]
    env = {"QA_MILVUS_PREFIX": prefix}
    status = run_qa("status", *args, env=env)
    assert status.returncode == 0 and "Traceback" not in status.stderr
    assert f"missing (no index: run `qa index --store milvus --milvus-uri {milvus_server}`)" in status.stdout
    build_index(milvus_settings(settings, milvus_server, prefix), FakeEmbedder())
    other = run_qa("ask", "garden soil", *args, "--model", "another-model", env=env)
    assert other.returncode == 1 and other.stdout == "" and other.stderr.count("\n") == 1
    assert other.stderr.startswith(f"qa: Milvus at {milvus_server} was built with model '{FakeEmbedder.name}', "
                                   "not 'another-model'")
    assert "--model another-model" in other.stderr and f"leave --model out to use '{FakeEmbedder.name}'" in other.stderr


def test_dropped_collections_are_a_clear_error(settings, milvus_uri, prefix):
    ms = milvus_settings(settings, milvus_uri, prefix)
    build_index(ms, FakeEmbedder())
    store = get_store(ms)
    store.conn.drop_collection(f"{prefix}_{store.generation()}_meta")
    with pytest.raises(IndexMissing) as err:
        store.open()
    assert milvus_uri in str(err.value) and "qa index" in str(err.value)


def test_second_build_refuses_while_one_holds_the_lock(settings, milvus_server, prefix):
    ms = milvus_settings(settings, milvus_server, prefix)
    store = get_store(ms)
    with store.lock():
        with pytest.raises(IndexLocked) as err:
            with get_store(replace(ms)).lock():
                pass
        assert f"pid {os.getpid()}" in str(err.value) and milvus_server in str(err.value)
        proc = run_qa("index", "-q", "--corpus", str(settings.corpus_dir), "--store", "milvus",
                      "--milvus-uri", milvus_server, env={"QA_MILVUS_PREFIX": prefix})
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1 and "Another `qa index`" in proc.stderr and "Traceback" not in proc.stderr
    with store.lock():  # released
        pass


def test_lock_of_a_dead_build_is_stale(settings, milvus_server, prefix):
    from qa.store.milvus import collections as mc

    ms = milvus_settings(settings, milvus_server, prefix)
    store = get_store(ms)
    with store.lock():
        pass
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    owner = f'{{"pid": {dead.pid}, "host": "{socket.gethostname()}", "since": "then"}}'
    store.conn.insert(f"{prefix}_lock", [mc.keyed_row("build/dead", owner, int(time.time()))])
    with store.lock():  # the dead process's row is removed, not obeyed
        rows = store.conn.query(f"{prefix}_lock", filter='key like "build/%"', output_fields=["key"])
        assert [r["key"] for r in rows if r["key"] == "build/dead"] == []
    far = owner.replace(socket.gethostname(), "another-host")
    store.conn.insert(f"{prefix}_lock", [mc.keyed_row("build/far", far, int(time.time()))])
    with pytest.raises(IndexLocked, match="another-host"):  # another host's live build is obeyed
        with store.lock():
            pass
    store.conn.upsert(f"{prefix}_lock", [mc.keyed_row("build/far", far, int(time.time()) - 3600)])
    with store.lock():  # ... until its heartbeat is older than the stale limit
        pass


@pytest.mark.parametrize("point", ["embed", "milvus-rows", "milvus-written"])
def test_killed_build_leaves_the_live_index_and_is_cleaned_up(settings, milvus_server, prefix, point):
    ms = milvus_settings(settings, milvus_server, prefix)
    store = get_store(ms)
    build_index(ms, FakeEmbedder())
    live = store.generation()
    before = [(h.citation, h.score) for h in Retriever.load(settings=ms, embedder=FakeEmbedder()).search("garden soil", k=3)]
    (settings.corpus_dir / "bees.txt").write_text("Bees\n\nBees make honey from nectar in summer.\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_QA), "index", "-q", "--full", "--corpus", str(settings.corpus_dir), "--store", "milvus",
         "--milvus-uri", milvus_server],
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "QA_MILVUS_PREFIX": prefix, "QA_TEST_PAUSE_AT": point, "HF_HUB_OFFLINE": "1"},
    )
    line = proc.stderr.readline()
    assert line.strip() == f"PAUSED {point}", line + proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert store.generation() == live
    after = [(h.citation, h.score) for h in Retriever.load(settings=ms, embedder=FakeEmbedder()).search("garden soil", k=3)]
    assert after == before
    report = build_index(ms, FakeEmbedder())  # the dead build's lock is stale; its collections are dropped
    assert report.files == 3 and store.generations() == sorted([live, store.generation()])


def test_lite_file_open_in_another_process(settings, tmp_path, prefix):
    pytest.importorskip("milvus_lite")
    uri = str(tmp_path / "busy.db")
    ms = milvus_settings(settings, uri, prefix)
    build_index(ms, FakeEmbedder())  # this process now holds the file
    proc = run_qa("status", "--store", "milvus", "--milvus-uri", uri)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and uri in proc.stderr and "milvus-lite server" in proc.stderr


def test_unreachable_server_is_one_line():
    from qa.store.milvus import MilvusStore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    uri = f"http://127.0.0.1:{port}"
    with pytest.raises(StoreUnavailable) as err:
        MilvusStore(uri, timeout=1).open()
    assert str(err.value) == f"Cannot reach Milvus at {uri}: start the server, or fix --milvus-uri / QA_MILVUS_URI."
    proc = run_qa("ask", "anything", "--store", "milvus", "--milvus-uri", uri, real=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"qa: Cannot reach Milvus at {uri}")


def test_refused_token_and_other_failures_are_one_line():
    pytest.importorskip("pymilvus")
    from pymilvus.exceptions import MilvusException

    from qa.store.milvus.client import error

    uri = "http://milvus.example:19530"
    auth = error(MilvusException(code=1800, message="auth check failure, please check username and password are correct"), uri)
    assert isinstance(auth, StoreUnavailable) and uri in str(auth) and "QA_MILVUS_TOKEN" in str(auth)
    missing = error(MilvusException(code=100, message="collection 'x' does not exist"), uri, "qa_live")
    assert isinstance(missing, IndexMissing) and "qa index --store milvus" in str(missing)
    other = error(MilvusException(code=65535, message="disk quota exceeded\ndetails"), uri)
    assert str(other) == f"Milvus at {uri} failed: disk quota exceeded. Check the server's log, then run the command again."


def test_missing_extra_names_the_install_command(tmp_path):
    code = (
        "import sys; sys.modules['pymilvus'] = None; sys.modules['milvus_lite'] = None\n"
        "from qa.frontends.cli import main\n"
        f"sys.exit(main(['status', '--store', 'milvus', '--milvus-uri', {str(tmp_path / 'm.db')!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    from qa.store.milvus import client

    assert proc.stderr.strip() == f"qa: The milvus store needs pymilvus and milvus-lite: {client.INSTALL}"
    assert "pip install -e '.[milvus]'" in client.INSTALL


def test_idle_connections_do_not_ping(monkeypatch, tmp_path):
    """pymilvus pings every 10 s even when idle; Milvus Lite's server answers with GOAWAY
    "too_many_pings" after a minute or two, and the next connection to it fails ("Cannot reach
    Milvus", seen after 100 s idle). Every client is made without idle pings."""
    from types import SimpleNamespace

    from qa.store.milvus import client

    made = []
    monkeypatch.setattr(client, "pymilvus", lambda: SimpleNamespace(MilvusClient=lambda **kw: made.append(kw)))
    client.Connection("http://127.0.0.1:1")
    assert made[0]["grpc_options"]["grpc.keepalive_permit_without_calls"] == 0
