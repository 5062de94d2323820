"""Faults survived: builds SIGKILLed at every step, damaged index files and caches, a full or
read-only disk, files changing under the build, stale citations, and input caps."""

import html
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from qa import integrity
from qa.build import build_index
from qa.frontends.cli import main
from qa.retriever import Retriever
from qa.config import MAX_BODY_BYTES, MAX_K, MAX_QUESTION_CHARS, MAX_SOURCES, Settings
from qa.errors import BadInput, DiskFull, IndexCorrupt, RequestTooLarge
from qa.integrity import FAULT_POINTS
from qa.limits import validate_request
from qa.store.local import generations
from qa.store.local.generations import current_generation, load_index, read_manifest

from conftest import all_passages, patch_embedder

HERE = Path(__file__).resolve().parent
BEES = "Bees\n\nThe bees live in three hives by the north wall. Their honey is sold in June.\n"


def exact(settings, passages):
    """Every passage is the text of its file between its offsets."""
    for p in passages:
        text = (settings.corpus_dir / p.source).read_text(encoding="utf-8")
        assert p.text == text[p.start_char : p.end_char], p.citation


def env_for(settings, **extra):
    return {**os.environ, "QA_CORPUS_DIR": str(settings.corpus_dir), "QA_INDEX_DIR": str(settings.index_dir),
            "QA_MODEL": "fake-embedder", **extra}


def run_killed(settings, point):
    proc = subprocess.run([sys.executable, str(HERE / "fake_qa.py"), "index", "-q"],
                          env=env_for(settings, QA_FAULT_POINT=point), capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc


def du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


# --- kills at every step ----------------------------------------------------------------------


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_build_killed_at_each_step(settings, fake_embedder, point):
    build_index(settings, embedder=fake_embedder)
    old = read_manifest(settings.index_dir)["built_at"]
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    run_killed(settings, point)
    data = load_index(settings.index_dir)
    switched = point == "prune"  # killed after CURRENT moved to the complete new generation
    assert (data.manifest["built_at"] != old) is switched
    assert ("bees.txt" in {p.source for p in all_passages(data)}) is switched
    exact(settings, all_passages(data))
    hit = Retriever.load(settings.index_dir, embedder=fake_embedder).search("When are the roses watered?", k=1)[0]
    assert (hit.source, hit.start_line) == ("garden.txt", 7) and hit.text.startswith("The roses are watered every morning at six.")
    report = build_index(settings, embedder=fake_embedder)
    assert report.files == 3
    left = sorted(p.name for p in settings.index_dir.iterdir())
    assert [n for n in left if n.startswith("gen-")] == [current_generation(settings.index_dir).name]
    assert not [n for n in left if n.startswith(".CURRENT.")]


def test_repeated_kills_do_not_fill_the_disk(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    sizes = []
    for _ in range(4):
        run_killed(settings, "write_bm25")
        assert len(list(settings.index_dir.glob("gen-*.tmp"))) == 1  # this kill's; the last one's is gone
        sizes.append(du(settings.index_dir))
    assert len(set(sizes)) == 1, sizes
    build_index(settings, embedder=fake_embedder)
    assert not list(settings.index_dir.glob("gen-*.tmp"))
    assert len(list(settings.index_dir.glob("gen-*"))) == 1


def test_fault_point_is_read_through_settings():
    assert Settings.from_env({"QA_FAULT_POINT": "write_vectors"}).fault_point == "write_vectors"
    assert Settings.from_env({}).fault_point == ""


# --- damaged generation files ---------------------------------------------------------------


def damage(path: Path, how: str) -> None:
    size = path.stat().st_size
    if how == "truncated":
        with open(path, "r+b") as f:
            f.truncate(size // 2)
    elif how == "zeroed":
        path.write_bytes(b"\0" * size)
    elif how == "random":
        path.write_bytes(random.Random(0).randbytes(size))
    elif how == "deleted":
        path.unlink()
    elif how == "flipped":  # same size, one byte in the middle
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))


FILES = ["manifest.json", "passages.sqlite", "passages.faiss", "passages.npy", "sentences.npy", "bm25/vocab.index.json"]


@pytest.mark.parametrize("how", ["truncated", "zeroed", "random", "deleted", "flipped"])
@pytest.mark.parametrize("name", FILES)
def test_damaged_file_is_named_with_the_fix_in_ask_and_status(settings, fake_embedder, monkeypatch, capsys, name, how):
    patch_embedder(monkeypatch, fake_embedder)
    build_index(settings, embedder=fake_embedder)
    gen = current_generation(settings.index_dir)
    damage(gen / name, how)
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-embedder"]
    assert main(["ask", "When are the roses watered?", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{gen / name}" in err and "Run `qa index --full` to rebuild it." in err
    assert main(["status", *args]) == 1
    out = capsys.readouterr().out
    assert f"{gen / name}" in out and "state:    damaged" in out


def test_same_size_corruption_is_caught_and_qa_index_repairs_it(settings, fake_embedder, monkeypatch, capsys):
    """Issue 16.4: text changed inside passages.sqlite (same size) made 5 of 5 wrong citations
    and `qa index` said "up to date"."""
    patch_embedder(monkeypatch, fake_embedder)
    build_index(settings, embedder=fake_embedder)
    gen = current_generation(settings.index_dir)
    db = gen / "passages.sqlite"
    raw = db.read_bytes()
    assert b"roses are watered" in raw
    db.write_bytes(raw.replace(b"roses are watered", b"tulips are burned"))
    with pytest.raises(IndexCorrupt, match="passages.sqlite is damaged"):
        Retriever.load(settings.index_dir, embedder=fake_embedder)
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-embedder"]
    assert main(["index", "-q", *args]) == 0
    out = capsys.readouterr().out
    assert "Full rebuild: the previous index is damaged" in out and "up to date" not in out
    exact(settings, all_passages(load_index(settings.index_dir)))
    assert main(["status", "--verify", *args]) == 0
    assert "verified: every index file matches its sha256" in capsys.readouterr().out


def test_status_verify_reads_every_byte(settings, fake_embedder, monkeypatch, capsys):
    """A change the quick check cannot see (a file above the sample threshold, a byte between
    samples) is caught by `qa status --verify`."""
    monkeypatch.setattr(integrity, "SAMPLE_FULL_MAX", 1024)
    monkeypatch.setattr(integrity, "SAMPLE_BLOCKS", 2)  # first and last 4 KiB only
    big = "Notes\n\n" + " ".join(f"Line {i} of the notes about seeds and soil." for i in range(3000)) + "\n"
    (settings.corpus_dir / "notes.txt").write_text(big, encoding="utf-8")
    build_index(settings, embedder=fake_embedder)
    gen = current_generation(settings.index_dir)
    path = gen / "sentences.npy"
    assert path.stat().st_size > 3 * 4096
    damage(path, "flipped")
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-embedder"]
    assert main(["status", *args]) == 0  # the quick check samples around the flipped byte
    capsys.readouterr()
    assert main(["status", "--verify", "--json", *args]) == 1
    info = json.loads(capsys.readouterr().out)
    assert info["state"] == "damaged" and info["verified"] == "full"
    assert info["problem"] == f"Index file {path} is damaged (its sha256 differs from the one recorded when it was written). Run `qa index --full` to rebuild it."


def _reseal(gen: Path) -> None:
    """Record the files' current checksums in the manifest, as a buggy build would have."""
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["checksums"] = integrity.record_files(gen, skip=("manifest.json",))
    manifest["index_files"] = {k: v["size"] for k, v in manifest["checksums"].items()}
    (gen / "manifest.json").write_text(json.dumps(integrity.seal(manifest), indent=2, sort_keys=True))


def test_poisoned_vector_row_is_not_carried_into_the_next_generation(settings, fake_embedder):
    """Issue 16.4: one poisoned row of passages.npy was reused and topped unrelated questions.
    Here even with checksums that agree (a bug, not damage), the row is rejected: reused
    vectors must be unit length, so the file is embedded again."""
    build_index(settings, embedder=fake_embedder)
    gen = current_generation(settings.index_dir)
    vectors = np.load(gen / "passages.npy")
    boats = [i for i, p in enumerate(all_passages(load_index(settings.index_dir))) if p.source == "sub/boats.md"]
    vectors[boats[0]] *= 469.0
    np.save(gen / "passages.npy", vectors)
    with pytest.raises(IndexCorrupt, match="passages.npy is damaged"):
        generations.read_reusable(settings.index_dir)
    _reseal(gen)
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    fake_embedder.batches.clear()
    report = build_index(settings, embedder=fake_embedder)
    assert report.mode == "incremental" and report.reused == 1  # garden.txt only
    new = np.load(current_generation(settings.index_dir) / "passages.npy")
    assert np.allclose(np.linalg.norm(new, axis=1), 1.0, atol=1e-5)


def test_stored_passage_text_is_rechecked_against_its_file_before_reuse(settings, fake_embedder, caplog):
    build_index(settings, embedder=fake_embedder)
    gen = current_generation(settings.index_dir)
    con = sqlite3.connect(gen / "passages.sqlite")
    con.execute("UPDATE passages SET text = replace(text, 'roses', 'tulip') WHERE source = 'garden.txt'")
    con.commit()
    con.close()
    _reseal(gen)
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    report = build_index(settings, embedder=fake_embedder)
    assert report.reused == 1  # sub/boats.md; garden.txt read and embedded again
    assert "garden.txt: its stored passages differ from what was indexed" in caplog.text
    exact(settings, all_passages(load_index(settings.index_dir)))


# --- full and read-only disks -----------------------------------------------------------------


@pytest.fixture
def tmpfs():
    """A 2 MiB tmpfs (skipped where mounting is not allowed)."""
    folder = Path(tempfile.mkdtemp(prefix="qa-tmpfs-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}): needs root or CAP_SYS_ADMIN")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        folder.rmdir()


def _big_corpus(corpus_dir: Path, n_files: int = 40) -> None:
    words = "seed soil water light root leaf stem flower fruit shade frost rain wind hive".split()
    rng = random.Random(1)
    for f in range(n_files):
        paras = []
        for s in range(60):
            paras.append(" ".join(rng.choice(words) for _ in range(14)).capitalize() + ".")
        (corpus_dir / f"big{f:02}.txt").write_text(f"Part {f}\n\n" + " ".join(paras) + "\n", encoding="utf-8")


def test_full_disk_is_refused_before_writing_and_leaves_the_live_index(settings, fake_embedder, tmpfs, monkeypatch, capsys):
    patch_embedder(monkeypatch, fake_embedder)
    small = Settings(corpus_dir=settings.corpus_dir, index_dir=tmpfs / "index", model="fake-embedder")
    build_index(small, embedder=fake_embedder)
    before = sorted(p.name for p in small.index_dir.iterdir())
    _big_corpus(settings.corpus_dir)
    args = ["--corpus", str(small.corpus_dir), "--index", str(small.index_dir), "--model", "fake-embedder"]
    assert main(["index", "-q", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"qa: Not enough free space in {small.index_dir}/: this build needs about ")
    assert "MiB is free. Free some space, or point --index (QA_INDEX_DIR) at a larger disk." in err
    assert sorted(p.name for p in small.index_dir.iterdir()) == before
    hit = Retriever.load(small.index_dir, embedder=fake_embedder).search("When are the roses watered?", k=1)[0]
    assert (hit.source, hit.start_line) == ("garden.txt", 7)


def test_disk_filling_up_mid_write_removes_the_partial_generation(settings, fake_embedder, tmpfs, monkeypatch):
    """Issue 16.2: the estimate passes but the disk fills while writing (another program took
    the space): a DiskFull naming what is needed, no temp generation left, the next build works."""
    small = Settings(corpus_dir=settings.corpus_dir, index_dir=tmpfs / "index", model="fake-embedder")
    build_index(small, embedder=fake_embedder)
    _big_corpus(settings.corpus_dir, n_files=200)
    monkeypatch.setattr(integrity, "check_free_space", lambda folder, needed: None)
    with pytest.raises(DiskFull, match=r"filled up while writing the index .*; this build needs about .* MiB"):
        build_index(small, embedder=fake_embedder)
    assert not list(small.index_dir.glob("gen-*.tmp"))
    assert {p.source for p in all_passages(load_index(small.index_dir))} == {"garden.txt", "sub/boats.md"}
    monkeypatch.undo()
    for f in list(settings.corpus_dir.glob("big*.txt"))[3:]:
        f.unlink()
    report = build_index(small, embedder=fake_embedder)
    assert report.files == 5 and len(list(small.index_dir.glob("gen-*"))) == 1


def test_read_only_index_folder_is_a_clear_error(settings, fake_embedder, tmpfs, monkeypatch, capsys):
    patch_embedder(monkeypatch, fake_embedder)
    small = Settings(corpus_dir=settings.corpus_dir, index_dir=tmpfs / "index", model="fake-embedder")
    build_index(small, embedder=fake_embedder)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    args = ["--corpus", str(small.corpus_dir), "--index", str(small.index_dir), "--model", "fake-embedder"]
    assert main(["index", "-q", *args]) == 1
    assert capsys.readouterr().err.strip() == (
        f"qa: Cannot write the index in {small.index_dir}/ (read-only). "
        "Point --index (QA_INDEX_DIR) at a writable folder."
    )
    hit = Retriever.load(small.index_dir, embedder=fake_embedder).search("When are the roses watered?", k=1)[0]
    assert (hit.source, hit.start_line) == ("garden.txt", 7)


# --- files changing under the build -------------------------------------------------------------


def _writer_during_read(monkeypatch, target: Path, times: int):
    """Make reading `target` see a writer append to it while it is read, `times` times."""
    import pathlib

    original = pathlib.Path.read_bytes
    count = {"n": 0}

    def read_bytes(self):
        data = original(self)
        if self == target and count["n"] < times:
            count["n"] += 1
            with open(target, "a", encoding="utf-8") as f:
                f.write(f"Added line {count['n']} while qa read the file.\n")
        return data

    monkeypatch.setattr(pathlib.Path, "read_bytes", read_bytes)


def test_file_changed_once_while_read_is_indexed_in_its_new_version(settings, fake_embedder, monkeypatch):
    garden = settings.corpus_dir / "garden.txt"
    _writer_during_read(monkeypatch, garden, times=1)
    report = build_index(settings, embedder=fake_embedder)
    monkeypatch.undo()
    assert report.skipped == []
    data = load_index(settings.index_dir)
    assert any("Added line 1 while qa read" in p.text for p in all_passages(data))
    exact(settings, all_passages(data))
    assert data.manifest["files"]["garden.txt"] == integrity.sha256_file(garden)


def test_file_that_keeps_changing_is_left_for_the_next_update(settings, fake_embedder, monkeypatch, capsys):
    garden = settings.corpus_dir / "garden.txt"
    _writer_during_read(monkeypatch, garden, times=3)
    patch_embedder(monkeypatch, fake_embedder)
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-embedder"]
    assert main(["index", "-q", *args]) == 0
    out = capsys.readouterr().out
    assert "  garden.txt: changed while it was being read; left for the next `qa index`" in out
    assert {p.source for p in all_passages(load_index(settings.index_dir))} == {"sub/boats.md"}
    monkeypatch.undo()
    patch_embedder(monkeypatch, fake_embedder)
    assert main(["index", "-q", *args]) == 0  # the next update takes it
    data = load_index(settings.index_dir)
    assert "garden.txt" in {p.source for p in all_passages(data)}
    exact(settings, all_passages(data))


# --- stale citations ------------------------------------------------------------------------------


def test_changed_source_is_flagged_in_json_text_and_html(settings, fake_embedder, monkeypatch, capsys):
    from qa.render import render_html

    patch_embedder(monkeypatch, fake_embedder)
    build_index(settings, embedder=fake_embedder)
    r = Retriever.load(settings.index_dir, embedder=fake_embedder)
    fresh = r.ask("When are the roses watered?", k=2).to_dict()
    assert fresh["source_changed"] is False and not any(p["source_changed"] for p in fresh["passages"])
    garden = settings.corpus_dir / "garden.txt"
    garden.write_text("New first line\n\n" + garden.read_text(encoding="utf-8"), encoding="utf-8")
    answer = r.ask("When are the roses watered?", k=2)
    out = answer.to_dict()
    assert out["source_changed"] is True and out["answer"]["source_changed"] is True
    assert [p["source_changed"] for p in out["passages"]] == [p["source"] == "garden.txt" for p in out["passages"]]
    assert "This file changed since it was indexed; run <code>qa index</code>." in render_html(answer)
    # The CLI would rebuild first (the corpus changed): ask an index in a read-only way.
    monkeypatch.setattr("qa.frontends.cli._ensure", lambda settings: None)
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-embedder"]
    assert main(["ask", "When are the roses watered?", "-k", "2", *args]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Note: garden.txt: this file changed since it was indexed; run `qa index`.\n")
    assert "    (this file changed since it was indexed; run `qa index`; the text below is what was indexed)" in text
    assert main(["ask", "When are the roses watered?", "-k", "2", "--json", *args]) == 0
    assert json.loads(capsys.readouterr().out)["source_changed"] is True


def test_search_flags_every_hit_of_a_changed_or_deleted_file_checking_each_file_once(settings, fake_embedder,
                                                                                    monkeypatch):
    from qa.search import SearchParams

    build_index(settings, embedder=fake_embedder)
    r = Retriever.load(settings.index_dir, embedder=fake_embedder, params=SearchParams(merge=False))
    checked = []
    changed = integrity.SourceHashes.changed
    monkeypatch.setattr(integrity.SourceHashes, "changed",
                        lambda self, source, indexed: checked.append(source) or changed(self, source, indexed))
    question = "garden roses boats water"

    def search():
        checked.clear()
        hits = r.search(question, k=8)
        assert sorted(checked) == sorted({h.source for h in hits})  # once per file, however many hits
        return hits

    hits = search()
    assert len(hits) > len({h.source for h in hits}) and {h.source for h in hits} == {"garden.txt", "sub/boats.md"}
    assert not any(h.source_changed for h in hits)
    garden = settings.corpus_dir / "garden.txt"
    original = garden.read_bytes()
    garden.write_bytes(original.replace(b"six", b"ten"))
    assert [h.source_changed for h in search()] == [h.source == "garden.txt" for h in hits]
    garden.write_bytes(original)  # the indexed bytes again: no longer flagged
    assert not any(h.source_changed for h in search())
    (settings.corpus_dir / "sub" / "boats.md").unlink()
    assert [h.source_changed for h in search()] == [h.source == "sub/boats.md" for h in hits]


def test_viewer_shows_the_indexed_text_of_a_changed_file(settings, fake_embedder):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from qa.frontends.web import _viewer_route

    build_index(settings, embedder=fake_embedder)
    r = Retriever.load(settings.index_dir, embedder=fake_embedder)
    client = TestClient(Starlette(routes=_viewer_route(settings, lambda: r)))
    page = client.get("/source", params={"file": "garden.txt", "lines": "7-7"}).text
    assert "changed since it was indexed" not in page
    garden = settings.corpus_dir / "garden.txt"
    garden.write_text(garden.read_text(encoding="utf-8").replace("every morning at six", "at noon"), encoding="utf-8")
    page = client.get("/source", params={"file": "garden.txt", "lines": "7-7"}).text
    assert "This file changed since it was indexed; run <code>qa index</code>. Shown below: the text as it was indexed" in page
    assert '<div class="line hl" id="L7">' in page and "The roses are watered every morning at six." in page
    garden.unlink()
    page = client.get("/source", params={"file": "garden.txt", "lines": "7-7"}).text
    assert "The roses are watered every morning at six." in page and "changed since it was indexed" in page


# --- cached artefacts ---------------------------------------------------------------------------


def test_embedding_cache_rows_and_file_are_checked(tmp_path, fake_embedder, caplog):
    from qa.evaluation import CachedEmbedder

    cache = CachedEmbedder(fake_embedder, tmp_path)
    want = cache.encode_documents(["the bees", "the roses"])
    con = sqlite3.connect(cache.path)
    con.execute("UPDATE vectors SET vec = zeroblob(length(vec)) WHERE rowid = 1")
    con.commit()
    con.close()
    again = CachedEmbedder(fake_embedder, tmp_path)
    assert np.array_equal(again.encode_documents(["the bees", "the roses"]), want)
    assert (again.damaged, again.computed) == (1, 1)
    assert "1 damaged vectors in the embedding cache" in caplog.text
    cache.path.write_bytes(b"not a database at all" * 100)
    third = CachedEmbedder(fake_embedder, tmp_path)
    assert np.array_equal(third.encode_documents(["the bees"]), want[:1])
    assert "is damaged" in caplog.text and cache.path.with_name(cache.path.name + ".damaged").exists()


def test_killed_onnx_export_leftovers_are_removed(tmp_path):
    from qa.embedding.onnx import clean_leftovers

    onnx = tmp_path / "onnx"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = onnx / f".all-MiniLM-L6-v2-0123456789abcdef.{dead.pid}.tmp"
    ours = onnx / f".all-MiniLM-L6-v2-0123456789abcdef.{os.getppid()}.tmp"  # a live process: kept
    for folder in (left, ours):
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"\0" * 1000)
    clean_leftovers(onnx)
    assert not left.exists() and ours.exists()


@pytest.mark.model
def test_damaged_onnx_export_is_exported_again_once(default_corpus_index, real_embedder, tmp_path, caplog):
    import shutil

    from qa.embedding import resolve_model
    from qa.embedding.onnx import load_or_export

    cache = tmp_path / "cache"
    from qa.build import models_cache

    shared = models_cache(default_corpus_index)  # the export shared by index folders (QA_CACHE_DIR/models)
    if (shared / "onnx").is_dir():  # made by a query earlier in the run: reuse it, else export below
        shutil.copytree(shared, cache)
    want = load_or_export(real_embedder.name, resolve_model(real_embedder.name), cache, lambda: real_embedder.model).encode(["Who leads the NCRI?"])
    folder = next((cache / "onnx").glob("all-MiniLM-L6-v2-*"))
    with open(folder / "model.onnx", "r+b") as f:  # the probe: truncated export
        f.truncate(1_000_000)
    enc = load_or_export(real_embedder.name, resolve_model(real_embedder.name), cache, lambda: real_embedder.model)
    assert np.allclose(enc.encode(["Who leads the NCRI?"]), want, atol=1e-5)
    assert "is damaged (model.onnx is damaged (1000000 bytes" in caplog.text
    (folder / "encoder.json").unlink()  # issue 16.8: repaired once, not retried per question
    caplog.clear()
    load_or_export(real_embedder.name, resolve_model(real_embedder.name), cache, lambda: real_embedder.model)
    assert caplog.text.count("exporting it again") == 1
    caplog.clear()
    load_or_export(real_embedder.name, resolve_model(real_embedder.name), cache, lambda: real_embedder.model)
    assert "exporting it again" not in caplog.text


# --- input caps -----------------------------------------------------------------------------------


def test_input_caps_python():
    assert validate_request("  Who?  ", "3", ["a", " "]) == ("Who?", 3, ["a"])
    with pytest.raises(RequestTooLarge, match=f"the limit is {MAX_QUESTION_CHARS:,}"):
        validate_request("x" * (MAX_QUESTION_CHARS + 1))
    with pytest.raises(BadInput, match=f"from 1 to {MAX_K}"):
        validate_request("Who?", MAX_K + 1)
    with pytest.raises(BadInput, match=f"the limit is {MAX_SOURCES}"):
        validate_request("Who?", 5, ["*.txt"] * (MAX_SOURCES + 1))
    with pytest.raises(RequestTooLarge, match=f"the limit is {MAX_BODY_BYTES:,}") as err:
        validate_request("Who?", 5, None, body_bytes=MAX_BODY_BYTES + 1)
    assert err.value.http_status == 413 and BadInput("x").http_status == 400


def test_input_caps_cli(settings, fake_embedder, monkeypatch, capsys):
    patch_embedder(monkeypatch, fake_embedder)
    build_index(settings, embedder=fake_embedder)
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-embedder"]
    assert main(["ask", "x" * (MAX_QUESTION_CHARS + 1), *args]) == 2
    assert capsys.readouterr().err.startswith(f"qa: The question is {MAX_QUESTION_CHARS + 1:,} characters long")
    assert main(["ask", "roses", "-k", str(MAX_K + 1), *args]) == 2
    assert f"k must be a whole number from 1 to {MAX_K}" in capsys.readouterr().err
    sources = [x for i in range(MAX_SOURCES + 1) for x in ("--source", f"f{i}")]
    assert main(["ask", "roses", *sources, *args]) == 2
    assert f"the limit is {MAX_SOURCES}" in capsys.readouterr().err


def test_unreadable_index_file_names_the_permission_fix(settings, fake_embedder, monkeypatch, capsys):
    """chmod 000 on an index file. Root reads it anyway, so under root `open` is made to refuse
    files without read permission, as the kernel does for any other user."""
    patch_embedder(monkeypatch, fake_embedder)
    build_index(settings, embedder=fake_embedder)
    path = current_generation(settings.index_dir) / "passages.sqlite"
    path.chmod(0)
    if os.geteuid() == 0:
        import builtins

        def strict_open(file, *args, **kwargs):
            if Path(file).exists() and not os.stat(file).st_mode & 0o444:
                raise PermissionError(13, "Permission denied", str(file))
            return builtins.open(file, *args, **kwargs)

        monkeypatch.setattr(integrity, "open", strict_open, raising=False)
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-embedder"]
    assert main(["ask", "roses", *args]) == 1
    assert capsys.readouterr().err.strip() == (
        f"qa: Index file {path} cannot be read (permission denied): give the user running qa read access. "
        "Run `qa index --full` to rebuild it."
    )
    path.chmod(0o644)


# --- the web chat -------------------------------------------------------------------------------


def _chat(demo):
    """The chat's reply function (the UI event, not a public endpoint)."""
    return next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "respond")


def test_server_stays_up_on_a_damaged_index_and_says_what_to_do(settings, fake_embedder, monkeypatch):
    import httpx
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    from test_web import start

    patch_embedder(monkeypatch, fake_embedder)
    build_index(settings, embedder=fake_embedder)
    path = current_generation(settings.index_dir) / "passages.faiss"
    damage(path, "zeroed")
    demo, url = start(settings)  # starts although the index is damaged (demo: the running server)
    try:
        client = Client(url, verbose=False)
        with pytest.raises(AppError) as info:
            client.predict("When are the roses watered?", 3, api_name="/ask")
        assert str(info.value).startswith(f"Index file {path} is damaged") and "Run `qa index --full`" in str(info.value)
        from qa.frontends.web import build_app

        _, history = _chat(build_app(settings))("When are the roses watered?", [], 3, [])
        assert html.unescape(history[-1]["content"]) == (
            f'<div class="qa-reply"><div class="qa-notfound">Index file {path} is damaged (it starts with zeros). '
            "Run `qa index --full` to rebuild it.</div></div>")
        with pytest.raises(AppError) as info:  # input caps through the API
            client.predict("x" * (MAX_QUESTION_CHARS + 1), 3, api_name="/ask")
        assert str(info.value).startswith(f"The question is {MAX_QUESTION_CHARS + 1:,} characters long")
        big = httpx.post(url + "gradio_api/call/ask", json={"data": ["x" * MAX_BODY_BYTES, 3]})
        assert big.status_code == 413 and big.json()["detail"].startswith("The request body is ")
        ok = httpx.post(url + "gradio_api/call/ask", json={"data": ["roses", 3]})
        assert ok.status_code == 200 and "event_id" in ok.json()
        build_index(settings, embedder=fake_embedder, full=True)  # the fix the message names
        answer = client.predict("When are the roses watered?", 3, api_name="/ask")
        assert answer["answer"]["text"] == ("The roses are watered every morning at six. In dry summers the "
                                            "gardeners also water the lavender, which otherwise needs little care.")
    finally:
        demo.close()
