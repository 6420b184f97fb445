"""SMS segment calculator: known carrier cases and properties checked against the gsm0338 codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    Encoding,
    SmsCost,
    cost_per_million,
    measure,
    split,
)

URDU = "آپ کی قسط تیار ہے"  # 17 characters, all BMP
EMOJI = "😀"  # U+1F600, a surrogate pair in UTF-16
EXTENSION = "{}[]~|^€\\\f"


def limit_for(cost: SmsCost) -> int:
    if cost.segments == 1:
        return GSM7_SINGLE if cost.encoding == "GSM-7" else UCS2_SINGLE
    return GSM7_PART if cost.encoding == "GSM-7" else UCS2_PART


def units_of(part: str, encoding: str) -> int:
    if encoding == "GSM-7":
        return len(part.encode("gsm03.38"))
    return len(part.encode("utf-16-le")) // 2


# -- the alphabet comes from the codec -------------------------------------------------------


def test_alphabet_is_read_from_the_codec() -> None:
    assert len(GSM7_BASIC) == 127  # 128 septets minus the escape
    assert set(GSM7_EXTENSION) == set(EXTENSION)
    for ch in GSM7_BASIC:
        assert len(ch.encode("gsm03.38")) == 1
    for ch in GSM7_EXTENSION:
        assert len(ch.encode("gsm03.38")) == 2


@pytest.mark.parametrize(
    ("char", "in_gsm7"),
    [
        ("Ç", True),
        ("ç", False),
        ("é", True),
        ("ü", True),
        ("£", True),
        ("`", False),
        ("’", False),
        ("\u00a0", False),
    ],
)
def test_accented_letters_follow_the_codec(char: str, in_gsm7: bool) -> None:
    try:
        char.encode("gsm03.38")
        codec_says = True
    except UnicodeEncodeError:
        codec_says = False
    assert codec_says is in_gsm7
    assert measure(char).encoding == ("GSM-7" if in_gsm7 else "UCS-2")


# -- known cases -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "characters", "units", "segments"),
    [
        ("", "GSM-7", 0, 0, 1),  # an empty SMS is still one billed message
        ("a", "GSM-7", 1, 1, 1),
        ("a" * 160, "GSM-7", 160, 160, 1),
        ("a" * 161, "GSM-7", 161, 161, 2),
        ("a" * 306, "GSM-7", 306, 306, 2),
        ("a" * 307, "GSM-7", 307, 307, 3),
        (EXTENSION, "GSM-7", 10, 20, 1),
        ("€" * 80, "GSM-7", 80, 160, 1),
        ("€" * 81, "GSM-7", 81, 162, 2),
        ("a" * 159 + "€", "GSM-7", 160, 161, 2),
        ("ا" * 70, "UCS-2", 70, 70, 1),
        ("ا" * 71, "UCS-2", 71, 71, 2),
        ("ا" * 134, "UCS-2", 134, 134, 2),
        ("ا" * 135, "UCS-2", 135, 135, 3),
        (URDU, "UCS-2", 17, 17, 1),
        (EMOJI, "UCS-2", 1, 2, 1),
        (EMOJI * 35, "UCS-2", 35, 70, 1),
        (EMOJI * 36, "UCS-2", 36, 72, 2),
        ("a" * 100 + "ب", "UCS-2", 101, 101, 2),  # one Urdu letter flips the whole text
        ("Rs 13,500 ready" + "۱", "UCS-2", 16, 16, 1),  # so does one Urdu digit
        ("a\x1bb", "UCS-2", 3, 3, 1),  # a raw ESC is not a GSM-7 character
    ],
)
def test_known_cases(
    text: str, encoding: Encoding, characters: int, units: int, segments: int
) -> None:
    assert measure(text) == SmsCost(encoding, characters, units, segments)
    assert len(split(text)) == segments


def test_empty_text_splits_into_one_empty_part() -> None:
    assert split("") == [""]


def test_extension_char_at_part_boundary_moves_whole_to_next_part() -> None:
    text = "a" * 152 + "€" + "b" * 10  # "€" would need septets 153 and 154
    parts = split(text)
    assert parts == ["a" * 152, "€" + "b" * 10]
    assert measure(text).segments == 2


def test_extension_chars_can_add_a_segment_beyond_plain_division() -> None:
    text = "a" * 152 + "€" + "a" * 152  # 306 septets, but the "€" is pushed to part two
    assert measure(text).units == 2 * GSM7_PART
    assert measure(text).segments == 3
    assert [units_of(p, "GSM-7") for p in split(text)] == [152, 153, 1]


def test_emoji_at_part_boundary_is_never_split() -> None:
    text = "ا" * 66 + EMOJI + "ب" * 10  # the pair would need units 67 and 68
    parts = split(text)
    assert parts == ["ا" * 66, EMOJI + "ب" * 10]
    assert all(p.encode("utf-16-le") for p in parts)  # no lone surrogate in any part


def test_urdu_reply_of_two_parts() -> None:
    text = (URDU + " ") * 6  # 108 characters
    cost = measure(text)
    assert (cost.encoding, cost.units, cost.segments) == ("UCS-2", 108, 2)
    assert [len(p) for p in split(text)] == [67, 41]


def test_cost_per_million() -> None:
    assert cost_per_million(2, 0.0079) == pytest.approx(15_800.0)
    assert cost_per_million(0, 1.0) == 0.0
    with pytest.raises(ValueError):
        cost_per_million(-1, 1.0)
    with pytest.raises(ValueError):
        cost_per_million(1, -0.5)


# -- properties ------------------------------------------------------------------------------

GSM_TEXT = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=500)
ANY_TEXT = st.one_of(
    GSM_TEXT,
    st.text(alphabet=st.sampled_from(["a", "€", "{", "ا", "ب", "۱", EMOJI, " "]), max_size=400),
    st.text(max_size=300),
)


@given(ANY_TEXT)
def test_split_joins_back_to_text(text: str) -> None:
    assert "".join(split(text)) == text


@given(ANY_TEXT)
def test_every_part_fits_its_limit(text: str) -> None:
    cost = measure(text)
    for part in split(text):
        assert units_of(part, cost.encoding) <= limit_for(cost)


@given(ANY_TEXT)
def test_segments_equal_number_of_parts(text: str) -> None:
    assert measure(text).segments == len(split(text))


@given(ANY_TEXT)
def test_no_part_but_the_last_is_empty(text: str) -> None:
    parts = split(text)
    assert all(parts[:-1])


@given(ANY_TEXT, st.text(max_size=50))
def test_segments_never_decrease_as_text_grows(text: str, more: str) -> None:
    assert measure(text + more).segments >= measure(text).segments


@given(ANY_TEXT)
def test_measure_agrees_with_the_codec(text: str) -> None:
    cost = measure(text)
    assert cost.characters == len(text)
    try:
        septets = len(text.encode("gsm03.38"))
    except UnicodeEncodeError:
        septets = None
    if septets is not None and "\x1b" not in text:
        assert (cost.encoding, cost.units) == ("GSM-7", septets)
    else:
        assert cost.encoding == "UCS-2"
        assert cost.units == len(text.encode("utf-16-le", "surrogatepass")) // 2
