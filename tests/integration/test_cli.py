"""The command line: text and --json output, summaries, exit codes and messages (no tracebacks)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa.frontends.cli import main
from conftest import patch_embedder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_env(settings, fake_embedder, monkeypatch):
    monkeypatch.setenv("QA_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("QA_MODEL", fake_embedder.name)
    patch_embedder(monkeypatch, fake_embedder)
    return settings


def test_index_prints_a_summary(fake_env, capsys):
    assert main(["index", "-q"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Indexed 2 files: ") and " passages, " in out and "fake-embedder" in out


def test_index_summary_counts_in_the_singular(fake_env, capsys):
    shutil.rmtree(fake_env.corpus_dir)
    fake_env.corpus_dir.mkdir()
    (fake_env.corpus_dir / "one.txt").write_text("Kettles\n\nThe kettle boils water.\n")
    assert main(["index", "-q"]) == 0
    assert capsys.readouterr().out.startswith("Indexed 1 file: 1 passage, 1 sentence, in ")


def test_ask_text_builds_missing_index_and_cites(fake_env, capsys):
    assert main(["ask", "When are the roses watered?", "-k", "2"]) == 0
    captured = capsys.readouterr()
    assert "No index in" in captured.err and "building it" in captured.err
    out = captured.out
    assert out.startswith("Answer (garden.txt:L7):\n  The roses are watered every morning at six.")
    assert "[1] garden.txt:L7 — Watering" in out and "[2] " in out and "[3] " not in out


def test_ask_json_is_one_object_with_exact_spans(fake_env, capsys):
    assert main(["ask", "Guided tours", "--json", "-k", "3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["question"] == "Guided tours"
    assert [p["rank"] for p in doc["passages"]] == [1, 2, 3]
    for p in doc["passages"]:
        text = (fake_env.corpus_dir / p["source"]).read_bytes().decode("utf-8")
        assert p["text"] == text[p["start_char"] : p["end_char"]]
        assert text.count("\n", 0, p["start_char"]) + 1 == p["start_line"]
    assert doc["passages"][0]["section"] == "Visitors"


def test_ask_source_filter(fake_env, capsys):
    assert main(["ask", "boats roses", "--json", "--source", "sub/*"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {p["source"] for p in doc["passages"]} == {"sub/boats.md"}


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["ask", "   "], 2, "question is empty"),
        (["ask", "x", "-k", "0"], 2, "k must be a whole number from 1 to 100"),
        (["ask"], 2, "required: question"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_bad_usage_exits_2_with_a_message(fake_env, capsys, argv, code, message):
    try:
        result = main(argv)
    except SystemExit as exc:  # argparse's own errors
        result = exc.code
    assert result == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_empty_corpus_exits_1_naming_the_folder(tmp_path, monkeypatch, capsys, fake_embedder):
    patch_embedder(monkeypatch, fake_embedder)
    (tmp_path / "c").mkdir()
    assert main(["index", "-q", "--corpus", str(tmp_path / "c"), "--index", str(tmp_path / "i"), "--model", "fake-embedder"]) == 1
    assert f"No readable document (.docx, .html, .md, .pdf, .txt) in {tmp_path / 'c'}/" in capsys.readouterr().err


def test_status(fake_env, capsys):
    assert main(["status"]) == 0
    assert "state:    missing" in capsys.readouterr().out
    main(["index", "-q"])
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["state"] == "ok" and info["model"] == "fake-embedder" and info["files"] == 2


def _run(*args, env=None, timeout=300):
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=ROOT)


def test_help_lists_every_command():
    # (that --help imports no heavy module is tested in test_imports.py)
    result = _run("--help")
    assert result.returncode == 0
    for command in ("index", "ask", "serve", "mcp", "status", "eval"):
        assert f"\n    {command} " in result.stdout


@pytest.mark.model
def test_real_model_ask_json_end_to_end(default_corpus_index):
    env = {"QA_CORPUS_DIR": str(default_corpus_index.corpus_dir), "QA_INDEX_DIR": str(default_corpus_index.index_dir)}
    result = _run("ask", "Who leads the NCRI?", "--json", "-k", "3", env=env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    text = (ROOT / "corpus" / "iranian-resistance-pmoi-ncri.txt").read_bytes().decode("utf-8")
    top3 = doc["passages"]
    assert top3[0]["section"] == "President-elect of the NCRI" and "Maryam Rajavi" in doc["answer"]["text"]
    for p in top3:
        assert p["source"] == "iranian-resistance-pmoi-ncri.txt"
        assert p["text"] == text[p["start_char"] : p["end_char"]]
    assert "Traceback" not in result.stderr


def test_index_folder_that_is_a_file_exits_1(fake_env, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["index", "-q", "--index", str(blocker)]) == 1
    err = capsys.readouterr().err
    assert f"Cannot write the index in {blocker}/" in err and "Traceback" not in err
