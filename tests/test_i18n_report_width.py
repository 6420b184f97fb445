"""`rabta i18n report` piped or redirected: every cell whole, not cut to 80 columns."""

from __future__ import annotations

from typer.testing import CliRunner

from bot.i18n_report import SMS_MESSAGES, i18n_app


def test_a_redirected_report_keeps_every_cell_whole(monkeypatch):
    # rich sizes a console that is not a terminal from COLUMNS, else 80 columns.
    monkeypatch.delenv("COLUMNS", raising=False)
    result = CliRunner().invoke(i18n_app, [])  # one command: Typer runs it
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    header = next(line for line in result.output.splitlines() if "┃ language" in line)
    for column in ("encoding", "characters", "segments", "cost per million replies"):
        assert column in header
    assert {message for message in SMS_MESSAGES if message not in result.output} == set()
