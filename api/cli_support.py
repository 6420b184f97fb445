"""What every `rabta` command shares: the error console and refusing a bad configuration."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from api.settings import Settings, get_settings

#: Errors go to stderr, so a command's stdout stays what scripts capture (an API key, a count).
err = Console(stderr=True)


def settings_or_exit() -> Settings:
    """The settings, or exit 2 with what was refused (a bad RABTA_* value, production without
    its secrets) instead of a traceback."""
    try:
        return get_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        err.print(f"[red]Configuration refused:[/red] {escape(refusal(exc))}")
        raise typer.Exit(2) from None


def refusal(exc: ValueError) -> str:
    """What was refused, without the values: pydantic's own message repeats the whole input,
    database URLs with their passwords and tokens included, into the operator's terminal."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    return "; ".join(
        (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "") + e["msg"]
        for e in exc.errors(include_url=False, include_input=False)
    )
