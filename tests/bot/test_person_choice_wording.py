"""The "which CNIC?" SMS of a phone a household shares, for the largest household on one phone."""

from __future__ import annotations

from api.registry.seed import _MAX_ADULTS
from bot.i18n import LANGUAGES
from bot.i18n_report import sms_budget
from bot.segments import measure

#: Household members share the district code and often the gender digit: the masks look alike.
HOUSEHOLD = [f"17301-*******-{n % 2 * 2 + 5}" for n in range(_MAX_ADULTS)]


def test_every_adult_of_a_household_fits_the_prompt_budget(renderer):
    for language in LANGUAGES:
        text = renderer.render_text(
            "verify/choose_person", {"cnics": HOUSEHOLD}, language=language, channel="sms"
        )
        assert measure(text).segments <= sms_budget("verify/choose_person", language), text
        for n, cnic in enumerate(HOUSEHOLD, 1):
            assert f"{n}) {cnic}" in text, (language, text)
