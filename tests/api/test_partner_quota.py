"""`rabta partner create --quota`: a quota the partner's calls can live with, or a clear refusal."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from api.partners import PartnerError, validate_quota
from api.partners_cli import partner_app

# Mounted as `rabta` mounts it (a lone-command Typer would collapse otherwise).
rabta = typer.Typer()
rabta.add_typer(partner_app, name="partner")


@pytest.mark.parametrize(
    ("quota", "why"),
    [
        # Every call of the partner's would be a 429: a key that never works.
        ("0/minute", "a quota of 0 refuses every call"),
        ("0 per day", "a quota of 0 refuses every call"),
        # `limits` reads the first of several and drops the others without a word.
        ("1000/minute;20000/hour", "a quota is one rate limit"),
    ],
)
def test_a_quota_that_would_not_be_applied_as_written_is_refused(quota: str, why: str):
    with pytest.raises(PartnerError, match=why):
        validate_quota(quota)
    result = CliRunner().invoke(rabta, ["partner", "create", "IVR", "--quota", quota])
    assert result.exit_code == 2
    # Typer draws the refusal in a box: its borders are not words.
    assert why in " ".join(re.sub("[│╭╮╰╯─]", " ", result.stderr).split())


@pytest.mark.parametrize("quota", ["1/second", " 1000/minute ", "50000 per day", "10/2 minutes"])
def test_a_rate_limit_is_kept_as_written(quota: str):
    assert validate_quota(quota) == quota.strip()
