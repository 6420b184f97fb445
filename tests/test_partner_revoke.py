"""`rabta partner revoke`: a partner's API key taken back without hand-written SQL."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from api.db import Database
from api.partners_cli import partner_app
from api.registry.models import Partner

# Mounted as `rabta` mounts it (a lone-command Typer would collapse otherwise).
rabta = typer.Typer()
rabta.add_typer(partner_app, name="partner")


def _create(name: str) -> str:
    result = CliRunner().invoke(rabta, ["partner", "create", name])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def _revoke(name_or_id: str):
    return CliRunner().invoke(rabta, ["partner", "revoke", name_or_id])


async def _status(client: httpx.AsyncClient, key: str) -> int:
    response = await client.get("/v1/eligibility/3520212345671", headers={"X-API-Key": key})
    return response.status_code


async def test_a_revoked_key_is_refused_and_the_others_are_not(db: Database, app):
    portal, ivr, helpline = [
        await asyncio.to_thread(_create, n) for n in ("Sehat portal", "IVR", "Helpline")
    ]
    by_name = await asyncio.to_thread(_revoke, "Sehat portal")
    assert by_name.exit_code == 0, by_name.output
    assert "Partner 'Sehat portal' revoked" in by_name.stdout
    async with db.sessions() as session:
        ivr_id = await session.scalar(select(Partner.id).where(Partner.name == "IVR"))
    by_id = await asyncio.to_thread(_revoke, str(ivr_id))
    assert by_id.exit_code == 0 and "Partner 'IVR' revoked" in by_id.stdout

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as client:
        assert await _status(client, portal) == 401
        assert await _status(client, ivr) == 401
        assert await _status(client, helpline) == 200


async def test_revoking_a_partner_that_does_not_exist_exits_1(db: Database):
    result = await asyncio.to_thread(_revoke, "Nobody")
    assert result.exit_code == 1
    assert "No partner is named or numbered 'Nobody'" in result.stderr


@pytest.mark.parametrize("number", ["99999999999999999999", "2147483648", "²"])
async def test_revoking_a_number_no_partner_can_have_exits_1(db: Database, number: str):
    result = await asyncio.to_thread(_revoke, number)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert f"No partner is named or numbered {number!r}" in result.stderr


def test_the_help_says_how_soon_a_revoked_key_is_refused():
    from api.ratelimit.http import PARTNER_CACHE_SECONDS

    def words(*arguments: str) -> str:
        shown = CliRunner().invoke(rabta, [*arguments, "--help"])
        assert shown.exit_code == 0
        return " ".join(re.sub("[│╭╮╰╯─]", " ", shown.stdout).split())  # no box borders

    # Each worker trusts a key it has checked for this long: "from then on" it is not.
    said = f"every API worker refuses its key within {PARTNER_CACHE_SECONDS:.0f} s"
    assert said in words("partner")
    assert said in words("partner", "revoke")
