"""Docs that cannot drift: every `qa` command and every option of it appears in the README, and
every command and option has help text; the README's `qa ask` outputs are what `qa ask` prints."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path

import pytest

from qa.frontends.cli import make_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = make_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def test_the_cli_has_the_commands_we_document():
    assert {"index", "ask", "serve", "status", "eval"} <= set(_commands())


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_command_is_in_the_readme(command):
    assert f"qa {command}" in README, f"`qa {command}` is not in README.md"


@pytest.mark.parametrize(
    "command, option",
    [(c, a.option_strings[-1]) for c, p in sorted(_commands().items()) for a in _options(p)]
    + [("", a.option_strings[-1]) for a in _options(make_parser())],
)
def test_every_option_is_in_the_readme_with_help(command, option):
    parser = _commands()[command] if command else make_parser()
    action = next(a for a in _options(parser) if option in a.option_strings)
    assert action.help, f"qa {command} {option} has no help text"
    assert any(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", README) for o in action.option_strings), (
        f"qa {command} {option} is not in README.md"
    )


def _readme_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


@pytest.mark.model
def test_readme_ask_outputs_are_what_qa_ask_prints(default_corpus_index, capsys, monkeypatch):
    """Each `$ .venv/bin/qa ask …` session of the README, run on the default corpus, prints
    exactly what the README shows (at the width of a pipe or a wide terminal: 100)."""
    from qa.frontends.cli import main

    monkeypatch.setenv("COLUMNS", "100")
    where = ["--corpus", str(default_corpus_index.corpus_dir), "--index", str(default_corpus_index.index_dir)]
    sessions = [b for b in _readme_blocks("console") if b.startswith("$ .venv/bin/qa ask ")]
    assert len(sessions) >= 2
    for block in sessions:
        command, _, shown = block.partition("\n")
        capsys.readouterr()
        assert main(shlex.split(command)[2:] + where) == 0
        assert capsys.readouterr().out == shown, command


@pytest.mark.model
def test_readme_json_example_is_the_record_qa_ask_prints(default_corpus_index, capsys):
    """The README's `--json` example (wrapped, long texts cut short with " …") has the keys, in
    order, and the values that `qa ask "Who leads the NCRI?" -k 1 --json` prints."""
    from qa.frontends.cli import main

    shown = json.loads(next(b for b in _readme_blocks("json") if b.startswith('{"question": "Who leads the NCRI?"')))
    where = ["--corpus", str(default_corpus_index.corpus_dir), "--index", str(default_corpus_index.index_dir)]
    capsys.readouterr()
    assert main(["ask", shown["question"], "-k", "1", "--json"] + where) == 0
    printed = json.loads(capsys.readouterr().out)

    def same(a, b, where="record"):
        if isinstance(a, dict):
            assert list(a) == list(b), where
            for key in a:
                same(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list):
            assert len(a) == len(b), where
            for i, (x, y) in enumerate(zip(a, b)):
                same(x, y, f"{where}[{i}]")
        elif isinstance(a, str) and a.endswith(" …"):
            assert b.startswith(a[:-2]), where
        else:
            assert a == b, where

    same(shown, printed)
