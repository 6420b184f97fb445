"""`rabta --help` and each group's `--help` list their commands by the first paragraph of each
command's help, and Typer prints that paragraph with its line breaks as written: a summary
wrapped over two source lines showed broken mid-sentence in the list."""

from __future__ import annotations

import inspect
from typing import Any

import typer

from api.cli import app


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name, command in getattr(group, "commands", {}).items():
        found.append((" ".join((*path, name)), command))
        found.extend(_commands(command, (*path, name)))
    return found


def _summary(command: Any) -> str:
    """What the list shows: the help's first paragraph, as Typer takes it."""
    return inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]


def test_every_command_is_listed_by_a_one_line_summary():
    commands = _commands(typer.main.get_command(app))
    assert {"outbox stats", "registry remove", "agent create"} <= {name for name, _ in commands}
    broken = {name: _summary(command) for name, command in commands if "\n" in _summary(command)}
    assert broken == {}


def test_no_paragraph_of_a_commands_help_is_broken_mid_sentence():
    """`rabta COMMAND --help` prints every paragraph after the first with its line breaks as
    written too, at any terminal width: a docstring wrapped at the source's 100 columns showed
    its sentences broken in the middle (`rabta i18n report --help`)."""
    commands = _commands(typer.main.get_command(app))
    broken = {
        name: paragraph
        for name, command in commands
        for paragraph in inspect.cleandoc(command.help or "").partition("\f")[0].split("\n\n")
        if "\n" in paragraph.strip() and not paragraph.startswith("\b")
    }
    assert broken == {}
