"""Docs that cannot drift: every `qa` command and every option of it appears in the README, and
every command and option has help text."""

from __future__ import annotations

import argparse
import re
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
