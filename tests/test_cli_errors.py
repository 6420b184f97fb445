"""The `rabta` command when what it needs is not there: one line saying what, never a traceback
(a traceback stays for Rabta's own faults)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from api.cli_support import unreachable_service
from api.db import Database

RABTA = Path(sys.executable).parent / "rabta"


def _rabta(*args: str, input: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")
    } | env
    return subprocess.run(
        [str(RABTA), *args],
        env=environment,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        ("db", "upgrade"),
        ("registry", "import", "."),
        ("registry", "remove", "3520212345671"),
        ("registry", "seed", "--households", "5"),
    ],
    ids=" ".join,
)
def test_a_database_that_is_down_is_named_in_one_line(command: tuple[str, ...]) -> None:
    result = _rabta(*command, DATABASE_URL="postgresql+asyncpg://rabta:hunter2@127.0.0.1:1/rabta")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert (
        "Cannot use the database (DATABASE_URL=postgresql+asyncpg://rabta:***@127.0.0.1:1/rabta): "
        "[Errno 111]"
    ) in " ".join(result.stderr.split())


def test_an_embedded_database_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    url = f"sqlite+aiosqlite:///{blocker}/rabta.db"
    result = _rabta("registry", "remove", "3520212345671", DATABASE_URL=url)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"Cannot use the database (DATABASE_URL={url}):" in " ".join(result.stderr.split())


async def test_a_fault_of_rabtas_own_keeps_its_traceback(db: Database) -> None:
    with pytest.raises(Exception) as caught:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT no_such_column FROM households"))
    assert unreachable_service(caught.value) is None
    assert unreachable_service(ValueError("a bug")) is None
    assert unreachable_service(FileNotFoundError("an export folder")) is None


def test_a_missing_database_is_named(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        # The embedded database is created on first use; there is no "missing" one.
        url = "postgresql+asyncpg://postgres@127.0.0.1:1/rabta_missing"
        expected = "[Errno 111]"
    else:
        url = database_url.rsplit("/", 1)[0] + "/rabta_no_such_database"
        expected = 'database "rabta_no_such_database" does not exist'
    result = _rabta("db", "upgrade", DATABASE_URL=url)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert expected in result.stderr


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--port", "99999"], "less than or equal to 65535"),
        (["--port", "0"], "greater than or equal to 1"),
        (["--workers", "0"], "greater than or equal to 1"),
    ],
)
def test_serve_refuses_a_port_or_worker_count_it_cannot_use(
    option: list[str], message: str, settings: object
) -> None:
    from api.cli import app

    # An address that cannot be bound, so that a serve which let the value through stops
    # (exit 1) instead of serving on.
    result = CliRunner().invoke(app, ["serve", "--host", "999.1.1.1", *option])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_export_into_a_folder_it_cannot_make(tmp_path: Path) -> None:
    from api.registry.cli import registry_app

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(registry_app, ["export", str(blocker / "extract")])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert f"Cannot write to {blocker / 'extract'}: Not a directory" in " ".join(
        result.stderr.split()
    )


def test_a_database_migrated_by_a_newer_rabta_is_named(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite+aiosqlite:///{tmp_path / 'rabta.db'}"
    assert _rabta("db", "upgrade", DATABASE_URL=url).returncode == 0
    with sqlite3.connect(tmp_path / "rabta.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffff9999'")
    result = _rabta("db", "upgrade", DATABASE_URL=url)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        f"Cannot use the database (DATABASE_URL={url}): Can't locate revision identified by "
        "'ffff9999': was it migrated by a newer Rabta?"
    ) in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    ("command", "done"),
    [
        (
            ("agent", "password", "amina"),
            "The password of amina is replaced, but its sessions could not be ended",
        ),
        (
            ("agent", "deactivate", "amina"),
            "amina can no longer sign in (an open session is refused at its next page), but its "
            "sessions could not be deleted",
        ),
    ],
    ids=["password", "deactivate"],
)
async def test_redis_down_when_ending_an_agents_sessions_is_named(
    db: Database, database_url: str, command: tuple[str, ...], done: str
) -> None:
    from api.agent import service
    from api.agent.schemas import Role

    async with db.transaction() as session:
        await service.create_agent(
            session, username="amina", password="a long password 1", role=Role.AGENT
        )
    result = await asyncio.to_thread(
        _rabta,
        *command,
        input="another long password\n",
        DATABASE_URL=database_url,
        REDIS_URL="redis://:hunter2@127.0.0.1:1/0",
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    said = " ".join(result.stderr.split())
    assert said.startswith(done), said
    assert "Cannot use Redis (REDIS_URL=redis://:***@127.0.0.1:1/0): Error 111" in said
    assert "run it again once Redis answers" in said


@pytest.mark.parametrize(
    ("command", "table"),
    [
        (("outbox", "stats"), "outbound_messages"),
        (("held", "stats"), "held_messages"),
        (("held", "retry"), "held_messages"),
        (("worker", "--once"), "grievances"),  # the SLA escalations' first look
        (("agent", "deactivate", "amina"), "agents"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
def test_a_database_never_migrated_is_named(
    tmp_path: Path, command: tuple[str, ...], table: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'rabta.db'}"
    result = _rabta(*command, DATABASE_URL=url)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        f"Cannot use the database (DATABASE_URL={url}): no such table: {table}: is it migrated? "
        "Run `rabta db upgrade`, or point DATABASE_URL at Rabta's own database"
    ) in " ".join(result.stderr.split())


async def test_a_postgresql_table_that_is_not_there_is_named(db: Database) -> None:
    from api.cli_support import unmigrated_schema

    with pytest.raises(Exception) as caught:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1 FROM no_such_table"))
    said = unmigrated_schema(caught.value)
    assert said is not None
    missing = (
        'relation "no_such_table" does not exist'
        if db.engine.dialect.name == "postgresql"
        else "no such table: no_such_table"
    )
    assert said.endswith(
        f"): {missing}: is it migrated? Run `rabta db upgrade`, or point "
        "DATABASE_URL at Rabta's own database"
    )
    assert said.startswith("Cannot use the database (DATABASE_URL=")


@pytest.mark.parametrize(
    ("kind", "why"),
    [("folder", "Is a directory"), ("binary", "not UTF-8 text")],
)
def test_outbox_tail_of_a_file_it_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: object, kind: str, why: str
) -> None:
    from api.outbox.cli import outbox_app
    from api.settings import get_settings

    path = tmp_path / "outbox.jsonl"
    if kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b'{"channel": "sms", "body": "\xff\xfe"}\n')
    monkeypatch.setenv("RABTA_CONSOLE_OUTBOX", str(path))
    get_settings.cache_clear()
    result = CliRunner().invoke(outbox_app, ["tail"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert f"Cannot read RABTA_CONSOLE_OUTBOX ({path}): {why}" in " ".join(result.stderr.split())


def test_outbox_tail_skips_lines_that_are_not_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: object
) -> None:
    from api.outbox.cli import outbox_app
    from api.settings import get_settings

    path = tmp_path / "outbox.jsonl"
    message = {"channel": "sms", "to": "+92300****567", "kind": "reply", "body": "Shukriya"}
    path.write_text(f"1\n[]\nnot json\n{json.dumps(message)}\n", encoding="utf-8")
    monkeypatch.setenv("RABTA_CONSOLE_OUTBOX", str(path))
    get_settings.cache_clear()
    result = CliRunner().invoke(outbox_app, ["tail"])
    assert result.exit_code == 0, result.output
    assert "sms → +92300****567 [reply]" in result.stdout
    assert "Shukriya" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "refused"),
    [
        (
            "DATABASE_URL",
            "rabta.db",
            "DATABASE_URL: not a database URL; write it like "
            "postgresql+asyncpg://user:password@host:5432/rabta or sqlite+aiosqlite:///var/rabta.db",
        ),
        (
            "DATABASE_URL",
            "mysql://rabta:hunter2@db/rabta",
            "DATABASE_URL: Rabta uses PostgreSQL (postgresql+asyncpg://…) or SQLite "
            "(sqlite+aiosqlite:///…), not mysql",
        ),
        (
            "REGISTRY_DATABASE_URL",
            "postgresql+psycopg2://rabta:hunter2@replica/rabta",
            "REGISTRY_DATABASE_URL: Rabta uses PostgreSQL (postgresql+asyncpg://…) or SQLite "
            "(sqlite+aiosqlite:///…), not postgresql+psycopg2",
        ),
        (
            "REDIS_URL",
            "http://:hunter2@127.0.0.1:6379",
            "REDIS_URL: not a Redis URL; write it like redis://host:6379/0 "
            "(rediss:// with TLS, unix:///path/to/redis.sock)",
        ),
        (
            "RABTA_LIMIT_IP",
            "60/minut",
            "RABTA_LIMIT_IP: '60/minut' is not a rate limit; write it like 60/minute or 10/hour",
        ),
        (
            "RABTA_LIMIT_OTP",
            "0/hour",
            "RABTA_LIMIT_OTP: '0/hour' lets nothing through; write one of at least 1, like "
            "60/minute",
        ),
    ],
    ids=lambda value: value if value.isupper() else None,
)
def test_a_url_or_limit_rabta_cannot_use_is_refused_in_one_line(
    variable: str, value: str, refused: str
) -> None:
    result = _rabta("outbox", "stats", **{variable: value})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert f"Configuration refused: {refused}" in " ".join(result.stderr.split())


def test_a_redis_database_that_is_not_there_is_named(redis_url: str | None) -> None:
    if not redis_url:
        pytest.skip("needs a Redis server (REDIS_URL)")
    url = redis_url.rsplit("/", 1)[0] + "/99999"
    result = _rabta("held", "stats", REDIS_URL=url)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"Cannot use Redis (REDIS_URL={url}): DB index is out of range" in " ".join(
        result.stderr.split()
    )
