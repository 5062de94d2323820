"""Index lifecycle: incremental builds (what gets re-embedded), crash safety with real killed
processes, the build lock, readers during builds, --watch, live reload, status and filters."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import qa
from qa.build import build_index, watch
from qa.retriever import Retriever, default_retriever
from qa.chunking import chunk_document, split_sentences
from qa.frontends.cli import main
from qa.config import ChunkSettings, Settings
from qa.documents import read_document
from qa.errors import BadInput, IndexLocked
from qa.embedding import embedding_text
from qa.store.local.generations import build_lock, current_generation, load_index, read_manifest

from conftest import all_passages, patch_embedder

HERE = Path(__file__).resolve().parent
BEES = "Bees\n\nThe bees live in three hives by the north wall. Their honey is sold in June.\n"


def texts_of(settings, source, chunking=ChunkSettings()):
    """Exactly what a build embeds for one file: its passages (with section) and its distinct sentences."""
    document = read_document(settings.corpus_dir / source, source)
    passages = chunk_document(document, chunking)
    out = [embedding_text(p) for p in passages]
    seen = set()
    for p in passages:
        for a, b in split_sentences(p.text):
            key = (p.start_char + a, p.start_char + b)
            if key not in seen:
                seen.add(key)
                out.append(p.text[a:b])
    return out


def stored(settings):
    data = load_index(settings.index_dir)
    return data, [(p.source, p.start_char, p.end_char, p.text) for p in all_passages(data)]


# --- incremental builds -------------------------------------------------------------------


def test_unchanged_corpus_embeds_nothing_and_writes_nothing(settings, fake_embedder):
    first = build_index(settings, embedder=fake_embedder)
    assert first.mode == "full" and first.reason == "no index yet"
    fake_embedder.batches.clear()
    again = build_index(settings, embedder=fake_embedder)
    assert again.mode == "unchanged" and fake_embedder.batches == []
    assert current_generation(settings.index_dir) == first.index_path == again.index_path


def test_edited_file_alone_is_re_embedded(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    old, old_rows = stored(settings)
    old_vectors = np.load(old.path / "passages.npy")  # the old generation is pruned by the next build
    garden = settings.corpus_dir / "garden.txt"
    garden.write_text(garden.read_text() + "\nCompost\n\nLeaves are composted behind the shed.\n", encoding="utf-8")
    fake_embedder.batches.clear()
    report = build_index(settings, embedder=fake_embedder)
    assert (report.mode, report.changed, report.added, report.removed) == ("incremental", ["garden.txt"], [], [])
    assert report.reused == 1
    assert sorted(fake_embedder.embedded) == sorted(texts_of(settings, "garden.txt"))
    new, rows = stored(settings)
    # boats.md kept its passages and its exact vectors; garden.txt has the new section.
    boats_old = [i for i, r in enumerate(old_rows) if r[0] == "sub/boats.md"]
    boats_new = [i for i, r in enumerate(rows) if r[0] == "sub/boats.md"]
    assert [old_rows[i] for i in boats_old] == [rows[i] for i in boats_new]
    new_vectors = np.load(new.path / "passages.npy")
    assert np.array_equal(old_vectors[boats_old], new_vectors[boats_new])
    assert any(r[3] == "Leaves are composted behind the shed." for r in rows)


def test_incremental_equals_full_build(settings, fake_embedder, tmp_path):
    build_index(settings, embedder=fake_embedder)
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    (settings.corpus_dir / "garden.txt").unlink()
    build_index(settings, embedder=fake_embedder)
    inc, inc_rows = stored(settings)
    full = Settings(corpus_dir=settings.corpus_dir, index_dir=tmp_path / "full", model=settings.model)
    build_index(full, embedder=fake_embedder)
    ref, ref_rows = stored(full)
    assert inc_rows == ref_rows
    n_sentences = inc.manifest.sentences
    assert n_sentences == ref.manifest.sentences
    assert inc.sentence_spans(range(n_sentences)) == ref.sentence_spans(range(n_sentences))
    assert np.array_equal(np.load(inc.path / "passages.npy"), np.load(ref.path / "passages.npy"))
    assert np.array_equal(np.asarray(inc.sentence_vectors(None)), np.asarray(ref.sentence_vectors(None)))
    assert len(inc) == len(ref) == len(inc_rows)
    assert inc.bm25_scores(["bee"]).tolist() == ref.bm25_scores(["bee"]).tolist()


def test_deleted_file_leaves_faiss_bm25_and_store_together(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    (settings.corpus_dir / "sub" / "boats.md").unlink()
    fake_embedder.batches.clear()
    report = build_index(settings, embedder=fake_embedder)
    assert report.removed == ["sub/boats.md"] and fake_embedder.batches == []
    data, rows = stored(settings)
    assert {r[0] for r in rows} == {"garden.txt"}
    assert data.passage_index.ntotal == len(rows) == int(data._bm25.scores["num_docs"]) == data.manifest["passages"]
    assert list(data.manifest["files"]) == ["garden.txt"]
    hits = Retriever.load(settings.index_dir, embedder=fake_embedder).search("boats race lighthouse silver cup", k=10)
    assert {h.source for h in hits} == {"garden.txt"}


def test_file_without_passages_is_kept_across_updates(settings, fake_embedder):
    (settings.corpus_dir / "title.txt").write_text("Only a title\n", encoding="utf-8")
    build_index(settings, embedder=fake_embedder)
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    report = build_index(settings, embedder=fake_embedder)
    assert (report.mode, report.added, report.reused) == ("incremental", ["bees.txt"], 3)
    data, rows = stored(settings)
    assert "title.txt" in data.manifest["files"] and not [r for r in rows if r[0] == "title.txt"]


def test_renamed_file_reuses_its_vectors(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    os.rename(settings.corpus_dir / "garden.txt", settings.corpus_dir / "park.txt")
    fake_embedder.batches.clear()
    report = build_index(settings, embedder=fake_embedder)
    assert fake_embedder.batches == [] and report.added == ["park.txt"] and report.removed == ["garden.txt"]
    hit = Retriever.load(settings.index_dir, embedder=fake_embedder).search("When are the roses watered?", k=1)[0]
    assert (hit.source, hit.start_line, hit.citation) == ("park.txt", 7, "park.txt:L7")


def test_model_or_chunking_change_forces_full_rebuild_and_says_so(settings, fake_embedder, monkeypatch, capsys):
    patch_embedder(monkeypatch, fake_embedder)
    args = ["index", "-q", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    assert main([*args, "--model", "fake-embedder"]) == 0
    all_texts = sorted(texts_of(settings, "garden.txt") + texts_of(settings, "sub/boats.md"))
    capsys.readouterr()
    fake_embedder.batches.clear()
    assert main([*args, "--model", "fake-embedder", "--full"]) == 0
    assert "Full rebuild: --full." in capsys.readouterr().out
    assert sorted(fake_embedder.embedded) == all_texts
    fake_embedder.batches.clear()
    assert main([*args, "--model", "other-fake"]) == 0
    assert "Full rebuild: model changed ('fake-embedder' → 'other-fake')." in capsys.readouterr().out
    assert sorted(fake_embedder.embedded) == all_texts
    fake_embedder.batches.clear()
    small = ChunkSettings(min_words=5, max_words=20, overlap_sentences=0)
    report = build_index(Settings(settings.corpus_dir, settings.index_dir, "other-fake", small), embedder=fake_embedder)
    assert report.mode == "full" and report.reason.startswith("chunking settings changed")
    assert sorted(fake_embedder.embedded) == sorted(
        texts_of(settings, "garden.txt", small) + texts_of(settings, "sub/boats.md", small)
    )


def test_an_index_of_untitled_heading_paths_is_stale_and_rebuilt_whole(settings, fake_embedder):
    """An index built before heading paths were rooted at the document's title (its manifest's
    chunking has no "title_root") is stale: the next build embeds every file again, the HTML
    passages with their title in front of the heading path, and stores that path."""
    from qa.build import full_rebuild_reason, index_state

    (settings.corpus_dir / "delete.html").write_text(
        "<html><head><title>DELETE</title></head><body><h2>1. Overview</h2>"
        "<p>The DELETE command removes the rows for which the WHERE clause is true.</p></body></html>\n",
        encoding="utf-8")
    old = replace(settings, chunking=ChunkSettings(title_root=False))
    build_index(old, embedder=fake_embedder)
    assert [p.section for p in all_passages(load_index(settings.index_dir)) if p.source == "delete.html"] == ["1. Overview"]
    manifest = read_manifest(settings.index_dir)
    older = replace(manifest, chunking={k: v for k, v in manifest.chunking.items() if k != "title_root"})
    assert full_rebuild_reason(older, settings).startswith("chunking settings changed")
    assert index_state(settings) == "stale"
    fake_embedder.batches.clear()
    report = build_index(settings, embedder=fake_embedder)
    assert report.mode == "full" and report.reason.startswith("chunking settings changed")
    assert "DELETE › 1. Overview: The DELETE command removes the rows for which the WHERE clause is true." in fake_embedder.embedded
    assert sorted(fake_embedder.embedded) == sorted(
        t for source in ("garden.txt", "sub/boats.md", "delete.html") for t in texts_of(settings, source))
    data = load_index(settings.index_dir)
    delete = [p for p in all_passages(data) if p.source == "delete.html"]
    assert [p.section for p in delete] == ["DELETE › 1. Overview"]
    assert read_manifest(settings.index_dir).chunking["title_root"] is True
    assert index_state(settings) == "ok"


def test_incremental_summary_on_the_command_line(settings, fake_embedder, monkeypatch, capsys):
    patch_embedder(monkeypatch, fake_embedder)
    args = ["index", "-q", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-embedder"]
    main(args)
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Indexed 3 files: ")
    n = len(texts_of(settings, "bees.txt"))
    assert out[1] == f"Updated: 1 added, 0 changed, 0 removed; 2 files reused, {n} texts embedded."
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("Index is up to date: 3 files, ")


def test_damaged_live_index_means_a_full_build(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    gen = current_generation(settings.index_dir)
    (gen / "passages.npy").write_bytes(b"junk")
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    fake_embedder.batches.clear()
    report = build_index(settings, embedder=fake_embedder)
    assert report.mode == "full" and "passages.npy" in report.reason and "is damaged" in report.reason
    assert len(fake_embedder.embedded) == sum(len(texts_of(settings, s)) for s in ("garden.txt", "sub/boats.md", "bees.txt"))


# --- crash safety: real processes ----------------------------------------------------------


def _spawn(settings, point, *args):
    env = {**os.environ, "QA_CORPUS_DIR": str(settings.corpus_dir), "QA_INDEX_DIR": str(settings.index_dir),
           "QA_MODEL": "fake-embedder", "QA_TEST_PAUSE_AT": point}
    proc = subprocess.Popen([sys.executable, str(HERE / "fake_qa.py"), "index", "-q", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # blocks until the build reaches `point`
    assert line.strip() == f"PAUSED {point}", line + proc.stderr.read()
    return proc


@pytest.mark.parametrize("point", ["embed", "sqlite", "fsync", "rename", "swap"])
def test_build_killed_mid_way_leaves_a_loadable_correct_index(settings, fake_embedder, point):
    build_index(settings, embedder=fake_embedder)
    _, before = stored(settings)
    old_manifest = read_manifest(settings.index_dir)
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    proc = _spawn(settings, point)
    # While the build is paused, readers see a complete index; then it is killed outright.
    _, during = stored(settings)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    data, after = stored(settings)
    if point == "swap":  # the new generation was complete and live before the kill
        assert {r[0] for r in after} == {"garden.txt", "sub/boats.md", "bees.txt"}
    else:
        assert during == after == before and data.manifest["built_at"] == old_manifest["built_at"]
    hit = Retriever.load(settings.index_dir, embedder=fake_embedder).search("When are the roses watered?", k=1)[0]
    assert (hit.source, hit.start_line) == ("garden.txt", 7)
    # The lock died with the process: the next build runs and clears what the killed one left.
    report = build_index(settings, embedder=fake_embedder)
    assert report.files == 3
    left = sorted(p.name for p in settings.index_dir.iterdir())
    assert not [n for n in left if n.endswith(".tmp") or n.startswith(".CURRENT.")]
    assert len([n for n in left if n.startswith("gen-")]) <= 2


def test_second_build_refuses_while_one_runs(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    first = _spawn(settings, "embed")
    try:
        env = {**os.environ, "QA_CORPUS_DIR": str(settings.corpus_dir), "QA_INDEX_DIR": str(settings.index_dir),
               "QA_MODEL": "fake-embedder"}
        second = subprocess.run([sys.executable, str(HERE / "fake_qa.py"), "index", "-q"], env=env,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"qa: Another `qa index` (pid {first.pid}) is building {settings.index_dir}/. "
            "Wait for it to finish, then try again."
        )
        with pytest.raises(IndexLocked, match=f"pid {first.pid}"):
            build_index(settings, embedder=fake_embedder)
    finally:
        first.kill()
        first.wait(timeout=30)
    with build_lock(settings.index_dir):  # free again
        pass


def test_readers_never_see_a_half_written_index(settings, fake_embedder):
    """Builds swap between two corpora while another thread keeps loading: every load is one
    of the two complete indexes."""
    build_index(settings, embedder=fake_embedder)
    _, variant_a = stored(settings)
    bees = settings.corpus_dir / "bees.txt"
    bees.write_text(BEES, encoding="utf-8")
    build_index(settings, embedder=fake_embedder)
    _, variant_b = stored(settings)
    seen, errors, done = [], [], threading.Event()

    def read():
        while not done.is_set():
            try:
                seen.append(stored(settings)[1])
            except Exception as exc:  # any failure to load is what this test looks for
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(8):
            if i % 2:
                bees.write_text(BEES, encoding="utf-8")
            else:
                bees.unlink()
            build_index(settings, embedder=fake_embedder)
    finally:
        done.set()
        reader.join()
    assert errors == []
    assert seen and all(rows in (variant_a, variant_b) for rows in seen)


# --- watch and live reload ------------------------------------------------------------------


def test_watch_rebuilds_after_a_change(settings, fake_embedder):
    reports, stop = [], threading.Event()
    built = threading.Semaphore(0)

    def on_build(report):
        reports.append(report)
        built.release()

    thread = threading.Thread(target=watch, args=(settings, fake_embedder),
                              kwargs=dict(on_build=on_build, interval=0.05, debounce=0.2, stop=stop))
    thread.start()
    try:
        assert built.acquire(timeout=30)
        (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
        assert built.acquire(timeout=30)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert [r.mode for r in reports] == ["full", "incremental"] and reports[1].added == ["bees.txt"]
    hit = Retriever.load(settings.index_dir, embedder=fake_embedder).search("bees hives honey", k=1)[0]
    assert (hit.source, hit.section) == ("bees.txt", "Bees")


def _state(pid: int) -> str:
    """What the kernel says about a process (for a failure message)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        return " ".join(line for line in status.splitlines() if line.startswith(("State", "Threads", "SigIgn", "SigCgt")))
    except OSError as exc:
        return f"no /proc entry ({exc})"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "term"])
def test_watch_command_stops_cleanly_on_ctrl_c_or_term(settings, sig):
    env = {**os.environ, "QA_CORPUS_DIR": str(settings.corpus_dir), "QA_INDEX_DIR": str(settings.index_dir),
           "QA_MODEL": "fake-embedder"}
    proc = subprocess.Popen([sys.executable, str(HERE / "fake_qa.py"), "index", "--watch", "--interval", "0.1"],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    assert first.startswith("Indexed 2 files: ")
    assert proc.stdout.readline() == "Full rebuild: no index yet.\n"
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    assert proc.stdout.readline().startswith("Indexed 3 files: ")
    assert proc.stdout.readline().startswith("Updated: 1 added, 0 changed, 0 removed; 2 files reused")
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        state = _state(proc.pid)
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running 120 s after the signal ({state}); stderr:\n{err}")
    assert proc.returncode == 0
    assert err.strip().splitlines()[-1] == "Stopped watching." and "Traceback" not in err


def test_ctrl_c_during_a_watch_build_lets_it_finish(settings, fake_embedder):
    env = {**os.environ, "QA_CORPUS_DIR": str(settings.corpus_dir), "QA_INDEX_DIR": str(settings.index_dir),
           "QA_MODEL": "fake-embedder", "QA_TEST_PAUSE_AT": "fsync", "QA_TEST_PAUSE_SECONDS": "2"}
    proc = subprocess.Popen([sys.executable, str(HERE / "fake_qa.py"), "index", "--watch", "--interval", "0.1"],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr.readline().startswith("Watching ")
    assert proc.stderr.readline() == "PAUSED fsync\n"  # the first build, every file written
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and err.strip() == "Stopped watching."
    assert out.startswith("Indexed 2 files: ")  # the build completed and is live
    assert {p.source for p in all_passages(Retriever.load(settings.index_dir, embedder=fake_embedder).reader)} == {
        "garden.txt", "sub/boats.md"}


def test_second_ctrl_c_abandons_the_watch_build(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    before = read_manifest(settings.index_dir)["built_at"]
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    env = {**os.environ, "QA_CORPUS_DIR": str(settings.corpus_dir), "QA_INDEX_DIR": str(settings.index_dir),
           "QA_MODEL": "fake-embedder", "QA_TEST_PAUSE_AT": "fsync"}
    proc = subprocess.Popen([sys.executable, str(HERE / "fake_qa.py"), "index", "--watch", "--interval", "0.1"],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr.readline().startswith("Watching ")
    assert proc.stderr.readline() == "PAUSED fsync\n"  # would sleep 120 s
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err.strip() == "Stopped watching." and out == ""
    assert read_manifest(settings.index_dir)["built_at"] == before  # the live index is untouched
    assert "bees.txt" not in Retriever.load(settings.index_dir, embedder=fake_embedder).sources()


def test_running_retriever_picks_up_a_new_index(settings, fake_embedder, monkeypatch):
    patch_embedder(monkeypatch, fake_embedder)
    build_index(settings, embedder=fake_embedder)
    first = default_retriever(settings)
    assert "bees.txt" not in first.sources()
    assert default_retriever(settings) is first  # no rebuild: the same loaded index
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    build_index(settings, embedder=fake_embedder)
    second = default_retriever(settings)
    assert second is not first and second.sources() == ["bees.txt", "garden.txt", "sub/boats.md"]
    hit = second.search("bees hives honey", k=1)[0]
    assert (hit.source, hit.text) == ("bees.txt", "The bees live in three hives by the north wall. Their honey is sold in June.")
    # A query that started on the old index finishes on it, complete.
    assert first.search("bees hives honey", k=1)[0].source != "bees.txt"


def test_damaged_new_generation_is_not_swapped_in(settings, fake_embedder, monkeypatch, caplog):
    patch_embedder(monkeypatch, fake_embedder)
    build_index(settings, embedder=fake_embedder)
    first = default_retriever(settings)
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    report = build_index(settings, embedder=fake_embedder)
    with open(report.index_path / "passages.faiss", "r+b") as f:
        f.truncate(10)
    assert default_retriever(settings) is first
    assert default_retriever(settings) is first
    warnings = [r.getMessage() for r in caplog.records if r.name == "qa.retriever"]
    assert len(warnings) == 1 and "could not load the new index" in warnings[0] and "passages.faiss" in warnings[0]
    build_index(settings, embedder=fake_embedder, full=True)  # repaired: swapped in at the next query
    assert "bees.txt" in default_retriever(settings).sources()


# --- filters and status ---------------------------------------------------------------------


def test_sources_filter_in_ask_retrieve_and_cli(settings, fake_embedder, monkeypatch, capsys):
    build_index(settings, embedder=fake_embedder)
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    answer = retriever.ask("boats race roses watered", k=5, sources=["sub/*"])
    assert {p.source for p in answer.passages} == {"sub/boats.md"}
    assert answer.answer.source == "sub/boats.md"
    with pytest.raises(BadInput, match=r"No indexed file matches 'nothing\*'.*garden.txt, sub/boats.md"):
        retriever.ask("boats", sources=["nothing*"])
    monkeypatch.setenv("QA_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("QA_MODEL", fake_embedder.name)
    patch_embedder(monkeypatch, fake_embedder)
    hits = qa.retrieve("boats race roses watered", k=5, sources=["garden.txt"])
    assert hits and {h.source for h in hits} == {"garden.txt"}
    assert main(["ask", "roses", "--source", "boats", "--json"]) == 0
    assert {p["source"] for p in json.loads(capsys.readouterr().out)["passages"]} == {"sub/boats.md"}
    assert main(["ask", "roses", "--source", "*.pdf"]) == 2
    assert "No indexed file matches '*.pdf'" in capsys.readouterr().err


def test_status_text_and_json(settings, fake_embedder, monkeypatch, capsys):
    patch_embedder(monkeypatch, fake_embedder)
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-embedder"]
    assert main(["status", *args]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "state:    missing (no index: run `qa index`)"
    report = build_index(settings, embedder=fake_embedder)
    assert main(["status", "--json", *args]) == 0
    info = json.loads(capsys.readouterr().out)
    manifest = read_manifest(settings.index_dir)
    assert info == {
        "index_dir": str(settings.index_dir),
        "store": "local",
        "where": f"{settings.index_dir}/",
        "index_command": "qa index",
        "corpus_dir": str(settings.corpus_dir),
        "state": "ok",
        "generation": str(report.index_path),
        "model": "fake-embedder",
        "passages": report.passages,
        "files": 2,
        "skipped": 0,
        "built_at": manifest["built_at"],
        "changes": {"added": [], "changed": [], "removed": []},
    }
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    (settings.corpus_dir / "garden.txt").write_text("Changed\n\nThe garden is closed.\n", encoding="utf-8")
    assert main(["status", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"index:    {report.index_path}",
        "model:    fake-embedder",
        f"passages: {report.passages} from 2 files",
        f"built:    {manifest['built_at']}",
        f"state:    stale ({settings.corpus_dir}/ changed since the build: run `qa index`)",
        "  added:   1 (bees.txt)",
        "  changed: 1 (garden.txt)",
    ]


def test_queries_during_rebuilds_answer_from_one_whole_index(settings, fake_embedder, monkeypatch):
    """Threads keep asking through the shared retriever while builds swap indexes: every answer
    comes from one complete index (its passages are exact spans of a version of the file)."""
    patch_embedder(monkeypatch, fake_embedder)
    build_index(settings, embedder=fake_embedder)
    bees = settings.corpus_dir / "bees.txt"
    versions = {BEES, BEES.replace("three", "four")}
    errors, answers, done = [], [], threading.Event()

    def ask():
        while not done.is_set():
            try:
                answers.append(default_retriever(settings).search("bees hives honey", k=3))
            except Exception as exc:  # any failure is what this test looks for
                errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(6):
            bees.write_text(sorted(versions)[i % 2], encoding="utf-8")
            build_index(settings, embedder=fake_embedder)
    finally:
        done.set()
        for t in threads:
            t.join()
    assert errors == [] and answers
    for hits in answers:
        for h in hits:
            if h.source == "bees.txt":
                assert any(h.text == v[h.start_char : h.end_char] for v in versions)
            else:
                assert h.text == (settings.corpus_dir / h.source).read_text()[h.start_char : h.end_char]
