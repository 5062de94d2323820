"""The Python API: build, load, search, retrieve/ask, bad input; the index round trip."""

import json
from dataclasses import asdict

import pytest

import qa
from qa.api import Retriever, build_index, ensure_index, index_state
from qa.config import MAX_QUESTION_CHARS, Settings
from qa.errors import BadInput, CorpusEmpty, EmptyQuestion, IndexMismatch, IndexMissing, RequestTooLarge
from conftest import all_passages, patch_embedder


def _file_text(settings, source):
    return (settings.corpus_dir / source).read_bytes().decode("utf-8")


def test_build_then_load_round_trip(settings, fake_embedder):
    report = build_index(settings, embedder=fake_embedder)
    assert report.files == 2 and report.passages >= 4 and report.skipped == []
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    assert retriever.manifest["model"] == "fake-embedder"
    assert retriever.manifest["dim"] == 64
    assert set(retriever.manifest["files"]) == {"garden.txt", "sub/boats.md"}
    assert len(all_passages(retriever.reader)) == report.passages
    for p in all_passages(retriever.reader):
        assert p.text == _file_text(settings, p.source)[p.start_char : p.end_char]


def test_search_finds_the_passage_and_cites_it(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    hits = retriever.search("When are the roses watered?", k=3)
    top = hits[0]
    assert isinstance(top, qa.Passage)
    assert (top.source, top.section, top.start_line, top.end_line) == ("garden.txt", "Watering", 7, 7)
    assert top.text.startswith("The roses are watered every morning at six.")
    assert top.text == _file_text(settings, "garden.txt")[top.start_char : top.end_char]
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert top.bm25_rank == 1 and top.dense is not None


def test_hit_fields_and_json_shape(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    answer = Retriever.load(settings.index_dir, embedder=fake_embedder).ask("silver cup race lighthouse", k=2)
    doc = json.loads(json.dumps(answer.to_dict()))
    assert doc["question"] == "silver cup race lighthouse"
    first = doc["passages"][0]
    for key in ("rank", "score", "text", "source", "section", "start_line", "end_line", "start_char", "end_char"):
        assert key in first
    assert first["source"] == "sub/boats.md" and first["section"] == "Boats of the harbour › Racing"
    assert doc["answer"]["text"] == ("Each August the boats race to the lighthouse and back. "
                                     "The winner keeps a silver cup for a year.")  # with the next sentence
    assert asdict(answer.passages[0]) == first


def test_k_is_clamped_to_corpus_and_validated(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    n = len(all_passages(retriever.reader))
    assert len(retriever.search("garden", k=100)) == n
    for bad in (0, -1, 10**9, 2.5, "many", None):
        with pytest.raises(BadInput):
            retriever.search("garden", k=bad)


@pytest.mark.parametrize("question", ["", "   ", "\n\t", None])
def test_empty_question_is_a_value_error(settings, fake_embedder, question):
    build_index(settings, embedder=fake_embedder)
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    with pytest.raises(ValueError, match="question is empty"):
        retriever.search(question)
    with pytest.raises(EmptyQuestion):
        qa.retrieve(question)


def test_very_long_question_is_refused_with_the_cap(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    at_cap = ("When are the roses watered? " + "filler " * 20000)[:MAX_QUESTION_CHARS]
    assert retriever.search(at_cap, k=1)[0].section == "Watering"
    with pytest.raises(RequestTooLarge, match=f"is {MAX_QUESTION_CHARS + 1:,} characters long; the limit is 4,000"):
        retriever.search(at_cap + "s", k=1)


def test_empty_or_missing_corpus_names_the_folder(tmp_path, fake_embedder):
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (empty, tmp_path / "nope"):
        with pytest.raises(CorpusEmpty, match=str(folder)):
            build_index(Settings(corpus_dir=folder, index_dir=tmp_path / "ix"), embedder=fake_embedder)
    assert not (tmp_path / "ix" / "CURRENT").exists()


def test_bad_files_are_skipped_with_a_warning(settings, fake_embedder, caplog):
    (settings.corpus_dir / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (settings.corpus_dir / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    (settings.corpus_dir / "image.png").write_bytes(b"\x89PNG")
    report = build_index(settings, embedder=fake_embedder)
    # a Latin-1 file is decoded (issue 15), not skipped
    assert sorted(report.skipped) == [("blob.txt", "binary file (NUL byte)")]
    assert report.files == 3
    assert "blob.txt" in caplog.text


def test_missing_index_and_model_mismatch(settings, fake_embedder):
    with pytest.raises(IndexMissing, match="qa index"):
        Retriever.load(settings.index_dir, embedder=fake_embedder)
    build_index(settings, embedder=fake_embedder)
    with pytest.raises(IndexMismatch, match="built with model 'fake-embedder', not 'other-model'"):
        Retriever.load(settings.index_dir, model="other-model")
    other = Settings(corpus_dir=settings.corpus_dir, index_dir=settings.index_dir, model="other-model")
    assert index_state(other) == "model"
    with pytest.raises(IndexMismatch):
        ensure_index(other, embedder=fake_embedder)


def test_changed_corpus_is_detected_and_rebuilt(settings, fake_embedder):
    assert index_state(settings) == "missing"
    assert ensure_index(settings, embedder=fake_embedder) is not None
    assert index_state(settings) == "ok"
    assert ensure_index(settings, embedder=fake_embedder) is None
    (settings.corpus_dir / "new.txt").write_text("Bees\n\nThe bees live in three hives by the wall.\n", encoding="utf-8")
    assert index_state(settings) == "stale"
    said = []
    ensure_index(settings, embedder=fake_embedder, say=said.append)
    assert "changed" in said[0]
    hits = Retriever.load(settings.index_dir, embedder=fake_embedder).search("bees hives", k=1)
    assert (hits[0].source, hits[0].section, hits[0].start_line) == ("new.txt", "Bees", 3)


def test_module_level_retrieve_uses_environment(settings, fake_embedder, monkeypatch):

    monkeypatch.setenv("QA_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("QA_MODEL", fake_embedder.name)
    patch_embedder(monkeypatch, fake_embedder)
    hits = qa.retrieve("Guided tours start at the gate", k=2)
    assert hits[0].section == "Visitors" and hits[0].source == "garden.txt"
    answer = qa.ask("Guided tours start at the gate", k=2)
    assert answer.answer.text == "Guided tours start at the gate at 11 a.m. and last forty minutes."
    assert answer.answer.start_line == answer.answer.end_line == 11


def test_sources_filter(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    hits = retriever.search("boats garden roses race", k=10, sources=["*.md"])
    assert hits and {h.source for h in hits} == {"sub/boats.md"}
    hits = retriever.search("boats garden roses race", k=10, sources=["garden"])
    assert {h.source for h in hits} == {"garden.txt"}


def test_exact_source_name_selects_only_that_file(settings, fake_embedder):
    (settings.corpus_dir / "sub" / "oars.md").write_text("# Oars\n\nThe boats use ash oars.\n", encoding="utf-8")
    (settings.corpus_dir / "boats.md").write_text("# Boats\n\nBoats are painted blue.\n", encoding="utf-8")
    build_index(settings, embedder=fake_embedder)
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    assert {h.source for h in retriever.search("boats", k=20, sources=["boats.md"])} == {"boats.md"}
    assert {h.source for h in retriever.search("boats", k=20, sources=["boats"])} == {"boats.md", "sub/boats.md"}
    assert {h.source for h in retriever.search("boats", k=20, sources=["sub/*.md"])} == {"sub/boats.md", "sub/oars.md"}


def test_links_out_of_the_corpus_are_not_indexed(settings, fake_embedder, tmp_path, caplog):
    outside = tmp_path / "secret.txt"
    outside.write_text("The vault code is 4321.\n", encoding="utf-8")
    (settings.corpus_dir / "link.txt").symlink_to(outside)
    (settings.corpus_dir / "inside.txt").symlink_to(settings.corpus_dir / "garden.txt")
    report = build_index(settings, embedder=fake_embedder)
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    assert "link.txt" not in retriever.manifest["files"] and "inside.txt" in retriever.manifest["files"]
    assert all("vault" not in p.text for p in all_passages(retriever.reader))
    assert "link.txt" in caplog.text and report.files == 3


def test_threads_using_the_index_for_the_first_time_share_one_build(settings, fake_embedder, monkeypatch):
    import threading


    monkeypatch.setenv("QA_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("QA_MODEL", fake_embedder.name)
    patch_embedder(monkeypatch, fake_embedder)
    results, errors = [], []

    def worker():
        try:
            results.append(qa.retrieve("roses watered", k=1)[0].section)
        except Exception as exc:  # recorded, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == ["Watering"] * 4
    assert len(list(settings.index_dir.glob("gen-*"))) == 1


def test_infinite_k_is_bad_input(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    with pytest.raises(BadInput):
        Retriever.load(settings.index_dir, embedder=fake_embedder).search("garden", k=float("inf"))


def test_corpus_of_only_headings_is_a_clear_error(tmp_path, fake_embedder):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "t.txt").write_text("Only a title\n", encoding="utf-8")
    with pytest.raises(CorpusEmpty, match="No passage text"):
        build_index(Settings(corpus_dir=corpus, index_dir=tmp_path / "i"), embedder=fake_embedder)


def test_undecodable_file_name_and_damaged_docx_are_skipped(settings, fake_embedder, caplog):
    import os
    import zipfile

    os.close(os.open(os.path.join(os.fsencode(settings.corpus_dir), b"caf\xe9.txt"), os.O_WRONLY | os.O_CREAT))
    with zipfile.ZipFile(settings.corpus_dir / "broken.docx", "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document><unclosed>")
    report = build_index(settings, embedder=fake_embedder)
    assert report.files == 2
    assert [s for s, _ in report.skipped] == ["broken.docx"] and "damaged docx" in report.skipped[0][1]
    assert "file name is not valid UTF-8" in caplog.text
