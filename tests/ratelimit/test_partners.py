"""Partner API keys: created once, stored hashed; `rabta partner create`."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from api.db import Database
from api.partners import (
    PartnerError,
    PartnerExists,
    create_partner,
    find_partner_by_key,
    hash_api_key,
)
from api.partners_cli import partner_app
from api.registry.models import Partner
from api.settings import Settings

# Mounted as api/cli.py mounts it under `rabta` (a lone-command Typer would collapse otherwise).
rabta = typer.Typer()
rabta.add_typer(partner_app, name="partner")


async def test_key_is_returned_once_and_stored_hashed(db: Database):
    async with db.transaction() as session:
        key = await create_partner(session, name="Sehat portal", quota="100/minute")
    assert key.startswith("rbt_") and len(key) > 40
    async with db.sessions() as session:
        partner = (await session.scalars(select(Partner))).one()
        assert partner.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in (partner.key_hash, partner.name, partner.quota)
        assert partner.quota == "100/minute" and partner.active
        found = await find_partner_by_key(session, key)
        assert found is not None and found.id == partner.id
        assert await find_partner_by_key(session, key + "x") is None
        assert await find_partner_by_key(session, "not-ours") is None


async def test_keys_differ(db: Database):
    async with db.transaction() as session:
        first = await create_partner(session, name="A", quota=None)
        second = await create_partner(session, name="B", quota=None)
    assert first != second and hash_api_key(first) != hash_api_key(second)


async def test_duplicate_name_and_bad_input(db: Database):
    async with db.transaction() as session:
        await create_partner(session, name="Sehat portal", quota=None)
    async with db.transaction() as session:
        with pytest.raises(PartnerExists):
            await create_partner(session, name=" Sehat portal ", quota=None)
        with pytest.raises(PartnerError, match="not a rate limit"):
            await create_partner(session, name="Other", quota="lots")
        with pytest.raises(PartnerError, match="name"):
            await create_partner(session, name="  ", quota=None)


async def _stored(settings: Settings) -> list[tuple[str, str, str]]:
    database = Database.from_settings(settings)
    try:
        async with database.sessions() as session:
            rows = await session.execute(select(Partner.name, Partner.quota, Partner.key_hash))
            return [(name, quota, key_hash) for name, quota, key_hash in rows]
    finally:
        await database.dispose()


def test_cli_create_prints_the_key_once(db: Database, settings: Settings):
    runner = CliRunner()
    result = runner.invoke(rabta, ["partner", "create", "Sehat portal", "--quota", "200/minute"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("rbt_") and "\n" not in key
    assert "cannot be shown again" in result.stderr
    assert asyncio.run(_stored(settings)) == [("Sehat portal", "200/minute", hash_api_key(key))]

    again = runner.invoke(rabta, ["partner", "create", "Sehat portal"])
    assert again.exit_code == 1
    assert "already exists" in again.stderr
    assert again.stdout == ""


def test_cli_default_quota_and_bad_quota(db: Database, settings: Settings):
    runner = CliRunner()
    result = runner.invoke(rabta, ["partner", "create", "IVR"])
    assert result.exit_code == 0, result.output
    assert asyncio.run(_stored(settings))[0][1] == settings.limit_partner

    bad = runner.invoke(rabta, ["partner", "create", "Other", "--quota", "many/minute"])
    assert bad.exit_code == 2
    assert "not a rate limit" in bad.stderr
