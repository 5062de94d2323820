"""Never delete what is not ours (issue 16.1): a build prunes only the generations its index
recorded (state file + marker), refuses a non-empty folder that is not a qa index, and upgrades
an index written before the state file."""

import json
import os

import pytest

from qa.build import build_index
from qa.errors import NotAnIndex
from qa.frontends.cli import main
from qa.retriever import Retriever
from qa.store.local import ownership
from qa.store.local.generations import current_generation

from conftest import patch_embedder

BEES = "Bees\n\nThe bees live in three hives by the north wall. Their honey is sold in June.\n"


def listing(folder):
    """Every path under `folder` with its content (files) or link target, for before/after."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        out[rel] = ("link", os.readlink(path)) if path.is_symlink() else (
            ("file", path.read_bytes()) if path.is_file() else ("dir", None))
    return out


def user_things(index_dir):
    """The issue's scenario: a user's folder named like a generation, with a spreadsheet in it,
    and files and links named like qa's temporary link."""
    budget = index_dir / "gen-2025-budget"
    budget.mkdir()
    (budget / "budget.xlsx").write_bytes(b"PK\x03\x04 spreadsheet")
    (index_dir / ".CURRENT.x").write_text("mine", encoding="utf-8")
    (index_dir / ".CURRENT.y").symlink_to("gen-2025-budget")
    return {k: v for k, v in listing(index_dir).items() if k.startswith(("gen-2025-budget", ".CURRENT."))}


def qa_generations(index_dir):
    return sorted(p.name for p in index_dir.iterdir() if p.name.startswith("gen-2") and p.name != "gen-2025-budget")


def test_builds_never_delete_a_users_gen_folder_or_current_file(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    mine = user_things(settings.index_dir)
    bees = settings.corpus_dir / "bees.txt"
    for step in range(4):  # incremental builds and a full one: each prunes
        if step % 2:
            bees.unlink()
        else:
            bees.write_text(BEES, encoding="utf-8")
        build_index(settings, embedder=fake_embedder, full=step == 3)
    after = listing(settings.index_dir)
    assert {k: after.get(k) for k in mine} == mine
    # qa's own old generations were pruned: only the live one remains (the previous one goes
    # right after the switch, so a folder holds at most the live generation and one being built).
    live = current_generation(settings.index_dir).name
    assert qa_generations(settings.index_dir) == [live]
    state = json.loads((settings.index_dir / "qa-index.json").read_text())
    assert state["qa_index"] == 1 and sorted(state["generations"]) == qa_generations(settings.index_dir)
    assert state["generations"][-1] == live  # oldest first
    for name in state["generations"]:
        assert json.loads((settings.index_dir / name / ".qa-generation").read_text()) == {"qa_generation": name}


def test_refuses_a_non_empty_folder_that_is_not_an_index(settings, fake_embedder, monkeypatch, capsys):
    patch_embedder(monkeypatch, fake_embedder)
    folder = settings.index_dir
    folder.mkdir()
    user_things(folder)
    (folder / "notes.txt").write_text("my notes", encoding="utf-8")
    before = listing(folder)
    args = ["index", "-q", "--corpus", str(settings.corpus_dir), "--index", str(folder), "--model", "fake-embedder"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == (
        f"qa: {folder}/ is not a qa index and is not empty (.CURRENT.x, .CURRENT.y, gen-2025-budget and 1 more): "
        "qa builds only into an empty folder or one of its own indexes, so that it never deletes your files. "
        "Pass --index (QA_INDEX_DIR) a new or empty folder.\n"
    )
    assert listing(folder) == before  # not even a lock file was created
    assert main(["ask", "roses", *args[2:]]) == 2  # `qa ask` would build: refused the same way
    with pytest.raises(NotAnIndex):
        build_index(settings, embedder=fake_embedder)


@pytest.mark.parametrize("content", [[], ["README.md"], ["README.md", ".gitkeep"]])
def test_builds_into_an_empty_folder_or_the_repository_index_folder(settings, fake_embedder, content):
    settings.index_dir.mkdir()
    for name in content:
        (settings.index_dir / name).write_text("kept", encoding="utf-8")
    report = build_index(settings, embedder=fake_embedder)
    assert report.passages and current_generation(settings.index_dir) == report.index_path
    for name in content:
        assert (settings.index_dir / name).read_text() == "kept"


def test_index_made_before_the_state_file_is_recognised_and_upgraded(settings, fake_embedder):
    """What the current main writes: CURRENT, generations with a manifest, no state file, no
    markers; plus an orphan temporary folder of a killed build and the user's things."""
    build_index(settings, embedder=fake_embedder)
    (settings.corpus_dir / "bees.txt").write_text(BEES, encoding="utf-8")
    build_index(settings, embedder=fake_embedder)
    index_dir = settings.index_dir
    (index_dir / "qa-index.json").unlink()
    for gen in index_dir.glob("gen-*"):
        (gen / ".qa-generation").unlink()
    old = qa_generations(index_dir)
    orphan = index_dir / "gen-20250101T000000-123-456.tmp"  # a build killed after its first file
    orphan.mkdir()
    (orphan / "passages.sqlite").write_bytes(b"half")
    lookalike = index_dir / "gen-20250101T000000-1-1"  # named like qa's, but holds a user's file
    lookalike.mkdir()
    (lookalike / "thesis.docx").write_bytes(b"my thesis")
    mine = user_things(index_dir)
    live = current_generation(index_dir).name
    ownership.claim(index_dir)  # recognised as a qa index: no NotAnIndex
    assert Retriever.load(index_dir, embedder=fake_embedder).generation == live  # still readable
    (settings.corpus_dir / "bees.txt").unlink()
    report = build_index(settings, embedder=fake_embedder)
    assert report.mode == "incremental"  # upgraded in place, nothing re-embedded from scratch
    after = listing(index_dir)
    assert {k: after.get(k) for k in mine} == mine
    assert after["gen-20250101T000000-1-1/thesis.docx"] == ("file", b"my thesis")
    assert not orphan.exists()
    # The adopted generation was pruned once the new one was live; the look-alike stays.
    assert old == [live]
    assert qa_generations(index_dir) == sorted([report.index_path.name, "gen-20250101T000000-1-1"])
    assert not (index_dir / live).exists()
    state = json.loads((index_dir / "qa-index.json").read_text())["generations"]
    assert state == [report.index_path.name]


def test_a_listed_folder_without_its_marker_is_left_alone(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    first = current_generation(settings.index_dir)
    (first / ".qa-generation").unlink()  # e.g. a user replaced the folder by their own
    for text in (BEES, BEES.replace("three", "four")):
        (settings.corpus_dir / "bees.txt").write_text(text, encoding="utf-8")
        build_index(settings, embedder=fake_embedder)
    assert first.is_dir()
    assert len(qa_generations(settings.index_dir)) == 2  # the unmarked folder and the live one
