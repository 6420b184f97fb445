"""The "which CNIC?" SMS of a phone a household shares, for the largest household on one phone."""

from __future__ import annotations

from api.registry.seed import _MAX_ADULTS
from bot.dialogue.flows.who import person_choice_masks
from bot.i18n import LANGUAGES
from bot.i18n_report import sms_budget
from bot.segments import measure

#: Household members share the district code and often the gender digit; the menu tells them
#: apart by the end of the serial.
HOUSEHOLD = person_choice_masks(
    [f"1730{n}{n}2345{n}{n}{n}{n % 2 * 2 + 5}" for n in range(_MAX_ADULTS)]
)


def test_the_menu_tells_apart_whom_the_usual_mask_shows_alike():
    mother, daughter, son = "3520212345672", "3520276543212", "3520276540011"
    assert person_choice_masks([mother, daughter, son]) == [
        "35202-***4567-2",
        "35202-***4321-2",
        "35202-***4001-1",
    ]
    # Four digits of the serial that still leave two alike: more of it, never the whole CNIC
    # unless nothing less tells them apart.
    twins = ["3520211234561", "3520299234561", "3520299934561"]
    assert person_choice_masks(twins) == ["35202-*123456-1", "35202-*923456-1", "35202-*993456-1"]
    assert person_choice_masks(["3520212345671", "3520292345671"]) == [
        "35202-1234567-1",
        "35202-9234567-1",
    ]


def test_every_adult_of_a_household_fits_the_prompt_budget(renderer):
    for language in LANGUAGES:
        text = renderer.render_text(
            "verify/choose_person", {"cnics": HOUSEHOLD}, language=language, channel="sms"
        )
        assert measure(text).segments <= sms_budget("verify/choose_person", language), text
        for n, cnic in enumerate(HOUSEHOLD, 1):
            assert f"{n}) {cnic}" in text, (language, text)
