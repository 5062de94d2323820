"""The index folder: generations, size-checked files, clear errors for damaged files, the
SQLite passage store and its queries."""

import json
import sqlite3

import numpy as np
import pytest

from qa import integrity
from qa.build import build_index
from qa.retriever import Retriever
from qa.frontends.cli import main
from qa.errors import IndexCorrupt, IndexMissing
from qa.store.local.generations import (
    FORMAT_VERSION,
    current_generation,
    list_sources,
    load_index,
    passages_of,
    read_manifest,
)

from conftest import all_passages, patch_embedder

INDEX_FILES = ["manifest.json", "passages.sqlite", "passages.faiss", "passages.npy", "sentences.npy", "sources.json",
               "passage_sources.npy", "sentence_starts.npy"]


def _bm25_files(gen):
    return sorted(p.relative_to(gen).as_posix() for p in (gen / "bm25").iterdir())


@pytest.fixture
def built(settings, fake_embedder, monkeypatch):
    patch_embedder(monkeypatch, fake_embedder)
    monkeypatch.setenv("QA_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("QA_MODEL", fake_embedder.name)
    build_index(settings, embedder=fake_embedder)
    return settings


def test_generation_layout_and_manifest(built):
    gen = current_generation(built.index_dir)
    assert (built.index_dir / "CURRENT").is_symlink() and gen.name.startswith("gen-")
    manifest = read_manifest(built.index_dir)
    assert manifest["format"] == FORMAT_VERSION and manifest["model"] == "fake-embedder"
    names = set(manifest["index_files"])
    assert names == set(INDEX_FILES[1:]) | set(_bm25_files(gen))
    for name, size in manifest["index_files"].items():
        assert (gen / name).stat().st_size == size


def test_passage_store_is_sqlite_and_queryable_by_source(built):
    gen = current_generation(built.index_dir)
    con = sqlite3.connect(gen / "passages.sqlite")
    columns = [row[1] for row in con.execute("PRAGMA table_info(passages)")]
    assert columns == ["id", "source", "section", "start_line", "end_line", "start_char", "end_char", "text", "page", "locator"]
    plan = " ".join(str(r) for r in con.execute("EXPLAIN QUERY PLAN SELECT * FROM passages WHERE source = 'x'"))
    assert "passages_source" in plan  # the per-source query uses the index
    con.close()
    data = load_index(built.index_dir)
    counts = {}
    for p in all_passages(data):
        counts[p.source] = counts.get(p.source, 0) + 1
    assert list_sources(built.index_dir) == sorted(counts.items())
    boats = passages_of(built.index_dir, "sub/boats.md")
    assert boats == [p for p in all_passages(data) if p.source == "sub/boats.md"] == data.passages_of("sub/boats.md")
    text = (built.corpus_dir / "sub/boats.md").read_text(encoding="utf-8")
    assert [p.text for p in boats] == [text[p.start_char : p.end_char] for p in boats]
    assert boats[0].section == "Boats of the harbour" and boats[0].start_line == 3
    assert passages_of(built.index_dir, "nope.txt") == []


def test_store_queries_without_index(tmp_path):
    with pytest.raises(IndexMissing, match="Run `qa index`"):
        list_sources(tmp_path / "none")


def _damage(path, how):
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:  # same size, garbage content
        path.write_bytes(bytes((b + 77) % 256 for b in data))


@pytest.mark.parametrize("how", ["truncate", "garbage"])
@pytest.mark.parametrize("name", ["manifest.json", "passages.sqlite", "passages.faiss", "sentences.npy", "bm25"])
def test_damaged_file_is_named_with_the_fix(built, capsys, name, how):
    gen = current_generation(built.index_dir)
    targets = _bm25_files(gen) if name == "bm25" else [name]
    for target in targets:
        _damage(gen / target, how)
    with pytest.raises(IndexCorrupt) as info:
        load_index(built.index_dir)
    message = str(info.value)
    assert "Run `qa index --full`" in message
    assert any(str(gen / t) in message for t in targets) or (name == "bm25" and str(gen / "bm25") in message)
    # The command line: exit 1, the message, no traceback.
    assert main(["ask", "When are the roses watered?"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("qa: ") and "Run `qa index --full`" in err and "Traceback" not in err
    assert str(gen) in err


def test_missing_file_is_named(built):
    gen = current_generation(built.index_dir)
    (gen / "passages.faiss").unlink()
    with pytest.raises(IndexCorrupt, match=f"Index file {gen / 'passages.faiss'} is missing. Run `qa index --full`"):
        load_index(built.index_dir)


def test_old_format_asks_for_a_full_rebuild(built, fake_embedder):
    gen = current_generation(built.index_dir)
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["format"] = 1
    (gen / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorrupt, match="has format 1, this qa reads 3. Run `qa index --full`"):
        Retriever.load(built.index_dir, embedder=fake_embedder)
    report = build_index(built, embedder=fake_embedder)
    assert report.mode == "full" and report.reason == "index format changed (1 → 3)"


def test_full_rebuild_repairs_a_damaged_index(built, fake_embedder, capsys):
    gen = current_generation(built.index_dir)
    _damage(gen / "passages.sqlite", "truncate")
    assert main(["index", "-q", "--full"]) == 0
    capsys.readouterr()
    hit = Retriever.load(built.index_dir, embedder=fake_embedder).search("When are the roses watered?", k=1)[0]
    assert (hit.source, hit.start_line) == ("garden.txt", 7)


def test_a_generation_without_the_row_arrays_is_read_from_sqlite(built, fake_embedder):
    """Generations written before the per-row arrays existed: the reader derives them from SQLite."""
    gen = current_generation(built.index_dir)
    fresh = load_index(built.index_dir)
    expected = (fresh.sources(), fresh.sentence_range(range(len(fresh))), all_passages(fresh))
    manifest = json.loads((gen / "manifest.json").read_text())
    for name in ("sources.json", "passage_sources.npy", "sentence_starts.npy"):
        (gen / name).unlink()
        del manifest["index_files"][name]
        del manifest["checksums"][name]
    manifest.pop(integrity.SEAL, None)
    manifest[integrity.SEAL] = integrity.seal(manifest)[integrity.SEAL]  # as that older build sealed it
    (gen / "manifest.json").write_text(json.dumps(manifest))
    old = load_index(built.index_dir)
    starts, counts = old.sentence_range(range(len(old)))
    assert old.sources() == expected[0] and all_passages(old) == expected[2]
    assert starts.tolist() == expected[1][0].tolist() and counts.tolist() == expected[1][1].tolist()
    hits = Retriever.load(built.index_dir, embedder=fake_embedder).search("boats on the lake", k=2)
    assert hits[0].source == "sub/boats.md"


def test_sha256_file_is_the_sha256_of_the_bytes(tmp_path):
    import hashlib

    for size in (0, 1, 4096, (1 << 20) + 17, 3 << 20):  # empty, small, and over several 1 MiB reads
        data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
        path = tmp_path / f"f{size}"
        path.write_bytes(data)
        assert integrity.sha256_file(path) == integrity.sha256_file(str(path)) == hashlib.sha256(data).hexdigest()
    hashes = integrity.SourceHashes(tmp_path)
    assert hashes.current("f1") == hashlib.sha256((tmp_path / "f1").read_bytes()).hexdigest()
    assert hashes.current("missing") is None and hashes.current(".") is None  # a folder is no file
