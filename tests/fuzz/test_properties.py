"""Hypothesis properties of the parsers every message goes through: CNIC and phone normalisation,
the USSD `text` path, keyword parsing in every language, and the SMS segment calculator.

Only what tests/test_identity.py, tests/ussd/test_webhook.py and tests/bot/test_segments.py do not
already cover is here.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from api.identity import (
    Cnic,
    InvalidCnic,
    InvalidPhone,
    find_cnic_like,
    mask_cnic,
    mask_phone,
    normalise_phone,
    normalise_text,
)
from bot.dialogue import keywords
from bot.dialogue.keywords import KEYWORDS, Command, Intent, parse
from bot.dialogue.ussd import Plan, UssdState, plan
from bot.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    measure,
    split,
)

URDU_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
SCRIPTS = st.sampled_from([None, URDU_DIGITS, ARABIC_DIGITS, FULL_WIDTH])
INVISIBLE = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2066", "\u2069"])

cnic_digits = st.from_regex(r"[1-7][0-9]{12}", fullmatch=True)
#: Mobile operator codes (after +92) that phonenumbers' metadata knows; 338 is unassigned.
OPERATOR_CODES = [f"3{n:02d}" for n in range(50) if n != 38]
pk_mobile = st.tuples(
    st.sampled_from(OPERATOR_CODES), st.from_regex(r"[0-9]{7}", fullmatch=True)
).map("".join)


def spread(text: str, marks: list[str]) -> str:
    """`text` with invisible marks inserted between its characters (one per gap at most)."""
    out = []
    for i, ch in enumerate(text):
        out.append(ch)
        if i < len(marks):
            out.append(marks[i])
    return "".join(out)


# -- CNIC ------------------------------------------------------------------------------------


@given(cnic_digits, st.lists(INVISIBLE, max_size=12), SCRIPTS)
def test_invisible_marks_anywhere_in_a_cnic_are_ignored(digits, marks, script):
    text = spread(digits, marks)
    if script:
        text = text.translate(script)
    assert Cnic.parse(text).digits == digits


@given(cnic_digits)
def test_a_cnic_round_trips_through_its_printed_form(digits):
    cnic = Cnic.parse(digits)
    assert re.fullmatch(r"[1-7][0-9]{4}-[0-9]{7}-[0-9]", cnic.formatted)
    assert Cnic.parse(cnic.formatted) == cnic
    assert cnic.formatted.replace("-", "") == digits


@given(cnic_digits)
def test_a_masked_cnic_shows_only_the_first_five_and_the_last_digit(digits):
    cnic = Cnic.parse(digits)
    assert cnic.masked == str(cnic) == mask_cnic(digits)
    assert cnic.masked == f"{digits[:5]}-*******-{digits[-1]}"
    assert digits[5:12] not in cnic.masked
    assert digits not in repr(cnic.masked)


@given(st.from_regex(r"[089][0-9]{12}", fullmatch=True))
def test_province_digits_outside_1_to_7_are_not_cnics(digits):
    with pytest.raises(InvalidCnic):
        Cnic.parse(digits)


@given(st.from_regex(r"[1-7][0-9]{0,11}|[1-7][0-9]{13,20}", fullmatch=True))
def test_wrong_lengths_are_not_cnics(digits):
    with pytest.raises(InvalidCnic):
        Cnic.parse(digits)


@given(st.text(max_size=60))
def test_normalise_text_is_idempotent(text):
    once = normalise_text(text)
    assert normalise_text(once) == once
    assert not any(c in once for c in "\u200b\u200c\u200d\u200e\u200f\u2066\u2067\u2068\u2069")
    assert not any(c in once for c in "۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩")


@given(st.text(max_size=40), cnic_digits, st.text(max_size=40))
def test_a_cnic_inside_a_sentence_is_found(before, digits, after):
    before = normalise_text(before)
    after = normalise_text(after)
    assume(not before[-1:].isdigit() and not after[:1].isdigit())
    found = find_cnic_like(f"{before} {digits} {after}")
    assert found is not None and digits in found.replace(" ", "")


# -- phones ----------------------------------------------------------------------------------


@given(pk_mobile, st.sampled_from(["+92{}", "0{}", "0092{}", "92{}", "whatsapp:+92{}", "+92 {}"]))
@example("3001234567", "0{}")
def test_every_way_of_writing_a_pakistani_mobile_gives_one_e164(national, template):
    e164 = f"+92{national}"
    written = template.format(national)
    assert normalise_phone(written) == e164
    assert normalise_phone(written.translate(URDU_DIGITS)) == e164
    assert normalise_phone(e164) == e164  # idempotent on its own output


@given(pk_mobile, st.sampled_from(["-", " "]))
def test_a_dash_or_space_after_the_operator_code_is_ignored(national, separator):
    assert normalise_phone(f"0{national[:3]}{separator}{national[3:]}") == f"+92{national}"


@given(st.text(max_size=40))
def test_normalise_phone_fails_only_with_invalid_phone(text):
    try:
        e164 = normalise_phone(text)
    except InvalidPhone:
        return
    assert e164.startswith("+") and e164[1:].isdigit()
    assert normalise_phone(e164) == e164


@given(pk_mobile)
def test_a_masked_phone_hides_the_subscriber_number(national):
    e164 = f"+92{national}"
    masked = mask_phone(e164)
    assert masked == f"{e164[:6]}****{e164[-3:]}"
    assert national[3:7] not in masked[6:]


# -- the USSD `text` path ----------------------------------------------------------------------

#: What a handset can type into one USSD input: digits, `*`, `#`, and nothing at all.
ussd_input = st.text(alphabet="0123456789*#", max_size=16)


def state_with(last_text: str, **fields) -> UssdState:
    return UssdState(
        session_id="ATUid_prop",
        phone="+923001234567",
        default_language="en",
        last_text=last_text,
        **fields,
    )


@given(st.lists(ussd_input, min_size=1, max_size=8))
def test_each_hit_of_a_session_yields_exactly_the_input_typed(inputs):
    """The gateway joins every input so far with `*`; with the state's last text, each hit's new
    input is recovered exactly, even when an input holds `*` itself or is empty (but the first:
    an empty `text` under a live session is the handset dialling again, by design)."""
    assume(inputs[0] != "")
    first = plan(None, seen=False, text="")
    assert first == Plan(text="", fresh=True)
    state = state_with("")
    text = ""
    for n, typed in enumerate(inputs):
        text = typed if n == 0 else f"{text}*{typed}"
        step = plan(state, seen=True, text=text)
        if text == state.last_text:
            assert step == Plan(text=text)  # nothing new: the same screen again
        else:
            assert step.inputs == (typed,) and not step.fresh and not step.expired
        state.last_text = text


@given(st.text(max_size=40))
def test_a_new_session_runs_every_step_of_its_dial_string(text):
    step = plan(None, seen=False, text=text)
    assert step.fresh and not step.expired
    assert step.inputs == (tuple(text.split("*")) if text else ())


@given(st.text(max_size=40), st.text(min_size=1, max_size=40))
def test_a_session_seen_before_without_state_has_expired(last, text):
    assert plan(None, seen=True, text=text).expired
    assert plan(state_with(last, ended=True), seen=True, text=text).expired


@given(st.text(max_size=40), st.text(max_size=40), st.booleans())
def test_plan_never_fails_and_never_invents_input(last, text, seen):
    step = plan(state_with(last), seen=seen, text=text)
    assert step.text == text
    for value in step.inputs:
        assert value in text


# -- keywords --------------------------------------------------------------------------------

ALIASES = [(intent, alias) for intent, words in KEYWORDS.items() for alias in words]
PUNCTUATION = st.sampled_from(["", "!", "?", ".", ",", ":", ";", "#", "*", "!!"])
SPACE = st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", " \n "])
EDGE_SPACE = st.sampled_from(["", " ", "  ", "\n", "\t", "\u200f", "\u00a0"])


def any_case(draw, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(word, flips, strict=True))


@st.composite
def spelled(draw, alias: str) -> str:
    """An alias as people type it: any case, punctuation after it, spaces around it."""
    return draw(EDGE_SPACE) + any_case(draw, alias) + draw(PUNCTUATION) + draw(EDGE_SPACE)


def test_no_alias_belongs_to_two_intents():
    owners: dict[str, set[Intent]] = {}
    for intent, alias in ALIASES:
        owners.setdefault(alias.casefold(), set()).add(intent)
    assert {alias: o for alias, o in owners.items() if len(o) > 1} == {}


@pytest.mark.parametrize(("intent", "alias"), ALIASES, ids=[a for _, a in ALIASES])
@settings(max_examples=40)
@given(data=st.data())
def test_every_alias_maps_to_its_intent_however_typed(intent, alias, data):
    text = data.draw(spelled(alias))
    command = parse(normalise_text(text))
    assert command.intent is intent, (text, command)
    assert command.argument == ""


@pytest.mark.parametrize(("intent", "alias"), ALIASES, ids=[a for _, a in ALIASES])
@settings(max_examples=25)
@given(data=st.data(), digits=cnic_digits, script=SCRIPTS)
def test_an_alias_followed_by_a_cnic_keeps_the_cnic_as_argument(
    intent, alias, data, digits, script
):
    cnic = f"{digits[:5]}-{digits[5:12]}-{digits[12]}"
    if script:
        cnic = cnic.translate(script)
    text = any_case(data.draw, alias) + data.draw(SPACE) + cnic + data.draw(EDGE_SPACE)
    command = parse(normalise_text(text))
    assert command.intent is intent, (text, command)
    assert Cnic.parse(command.argument).digits == digits


@given(st.text(max_size=80))
def test_parse_never_fails(text):
    for candidate in (text, normalise_text(text)):
        command = parse(candidate)
        assert isinstance(command, Command) and isinstance(command.intent, Intent)


@given(st.text(max_size=80))
def test_parse_is_stable_on_normalised_text(text):
    normalised = normalise_text(text)
    assert parse(normalise_text(normalised)) == parse(normalised)


@given(st.text(max_size=80))
def test_a_keyword_command_reads_the_same_when_written_back(text):
    command = parse(normalise_text(text))
    if command.keyword:
        again = parse(f"{command.keyword} {command.argument}".strip())
        assert (again.intent, again.argument) == (command.intent, command.argument)


@given(cnic_digits, SCRIPTS, st.sampled_from(["", "-", " ", ".", "\u200f"]))
def test_a_bare_cnic_in_any_digits_is_the_cnic_intent(digits, script, sep):
    text = f"{digits[:5]}{sep}{digits[5:12]}{sep}{digits[12]}"
    if script:
        text = text.translate(script)
    command = parse(normalise_text(text))
    assert command.intent is Intent.CNIC
    assert Cnic.parse(command.argument).digits == digits


@given(st.from_regex(r"[0-9]{6}", fullmatch=True), SCRIPTS)
def test_six_digits_in_any_script_are_a_code(code, script):
    text = code.translate(script) if script else code
    assert parse(normalise_text(text)) == Command(Intent.CODE, code)


@given(st.text(alphabet=string.ascii_letters + " ", max_size=40))
def test_roman_urdu_detection_never_fails_and_ignores_case(text):
    assert keywords.is_roman_urdu(text) == keywords.is_roman_urdu(text.swapcase())


# -- SMS segments ----------------------------------------------------------------------------

GSM = sorted(GSM7_BASIC | GSM7_EXTENSION)
gsm_text = st.text(alphabet=GSM, max_size=500)
any_text = st.one_of(gsm_text, st.text(max_size=400))
URDU_LETTERS = st.sampled_from(list("ابپتٹثجچحخدڈذرڑزژسشصضطظعغفقکگلمنںوہھءیے"))


@given(any_text)
def test_one_segment_exactly_when_the_text_fits_a_single_sms(text):
    cost = measure(text)
    single = GSM7_SINGLE if cost.encoding == "GSM-7" else UCS2_SINGLE
    assert (cost.segments == 1) == (cost.units <= single)


@given(any_text)
def test_segments_stay_within_the_carriers_arithmetic(text):
    cost = measure(text)
    part = GSM7_PART if cost.encoding == "GSM-7" else UCS2_PART
    if cost.segments > 1:
        least = -(-cost.units // part)
        # Greedy packing never splits an escape sequence or a surrogate pair: each part may lose
        # one unit to that, never more.
        assert least <= cost.segments <= -(-cost.units // (part - 1))


@given(gsm_text)
def test_gsm_text_is_gsm7_and_costs_two_septets_per_extension_character(text):
    cost = measure(text)
    assert cost.encoding == "GSM-7"
    assert cost.units == len(text) + sum(ch in GSM7_EXTENSION for ch in text)


@given(gsm_text, URDU_LETTERS, st.integers(min_value=0, max_value=500))
def test_one_urdu_letter_makes_the_whole_message_ucs2(text, letter, position):
    position = min(position, len(text))
    mixed = text[:position] + letter + text[position:]
    cost = measure(mixed)
    assert cost.encoding == "UCS-2"
    assert cost.units == len(mixed)  # no astral characters here: one unit each
    assert cost.segments >= measure(text).segments


@given(any_text)
def test_each_part_on_its_own_is_one_sms_of_the_same_encoding(text):
    encoding = measure(text).encoding
    parts = split(text)
    for part in parts if len(parts) > 1 else []:
        alone = measure(part)
        assert alone.segments == 1 or alone.units <= (
            GSM7_PART if encoding == "GSM-7" else UCS2_PART
        )
        if encoding == "UCS-2":
            continue
        assert alone.encoding == "GSM-7"
