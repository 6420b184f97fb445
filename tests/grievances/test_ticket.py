"""Ticket ids: canonical forms, what people type, and the check symbol catching their slips."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from api.grievances.ticket import (
    CHECK_SYMBOLS,
    DATA_SYMBOLS,
    ID_SPACE,
    PREFIX,
    is_valid_ticket_id,
    new_ticket_id,
    normalise_ticket_id,
    ticket_id_for,
)

CANONICAL = re.compile(r"^G-[0-9A-HJKMNP-TV-Z]{5}[0-9A-HJKMNP-TV-Z*~$=U]$")

#: (typed, canonical or None)
CASES: list[tuple[str, str | None]] = [
    ("G-7K3M9Q", "G-7K3M9Q"),  # SPEC §5.3's example checks
    ("g-7k3m9q", "G-7K3M9Q"),
    ("7K3M9Q", "G-7K3M9Q"),
    ("G7K3M9Q", "G-7K3M9Q"),
    ("  g 7k3 m9q ", "G-7K3M9Q"),
    ("G-7K3-M9Q", "G-7K3M9Q"),
    ("G–7K3M9Q", "G-7K3M9Q"),  # en dash from a phone's autocorrect
    ("Ｇ－７Ｋ３Ｍ９Ｑ", "G-7K3M9Q"),  # full-width, as some Urdu keyboards type Latin
    ("G-7K3M9Q.", "G-7K3M9Q"),
    ("G-11011F", "G-11011F"),
    ("G-IL0l1F", "G-11011F"),  # I, L, l read as 1
    ("G-10100N", "G-10100N"),
    ("g-1o1oon", "G-10100N"),  # o read as 0
    ("G-000000", "G-000000"),
    ("GOOOOOO", "G-000000"),  # the prefix is told apart by length, not by its letter
    ("G-0YGJZ*", "G-0YGJZ*"),  # the five extra check symbols
    ("G-0YGK0~", "G-0YGK0~"),
    ("G-0YGK1$", "G-0YGK1$"),
    ("G-0YGK2=", "G-0YGK2="),
    ("G-0YGK3U", "G-0YGK3U"),
    ("g-0ygk3u", "G-0YGK3U"),
    ("G-7K3M9R", None),  # wrong check symbol
    ("G-7K3N9Q", None),  # one data symbol misheard
    ("G-K73M9Q", None),  # two neighbours swapped
    ("G-7K3M9", None),
    ("G-7K3M9QQ", None),
    ("X-7K3M9Q", None),
    ("G-UK3M9Q", None),  # U is a check symbol only
    ("G-7K3M*Q", None),
    ("", None),
    ("help", None),
    ("3520212345672", None),
]


@pytest.mark.parametrize(("typed", "expected"), CASES)
def test_normalise_ticket_id(typed: str, expected: str | None) -> None:
    assert normalise_ticket_id(typed) == expected
    assert is_valid_ticket_id(typed) is (expected is not None)


def test_is_valid_ticket_id_refuses_non_text() -> None:
    assert not is_valid_ticket_id(None)
    assert not is_valid_ticket_id(12345)


def test_new_ticket_ids_are_canonical_and_vary() -> None:
    ids = {new_ticket_id() for _ in range(2000)}
    assert all(CANONICAL.match(i) and normalise_ticket_id(i) == i for i in ids)
    assert len(ids) > 1990  # 2000 draws from 33.5 million: a handful of repeats at most


def test_ticket_id_for_range() -> None:
    assert ticket_id_for(0) == "G-000000"
    with pytest.raises(ValueError, match="out of range"):
        ticket_id_for(ID_SPACE)
    with pytest.raises(ValueError, match="out of range"):
        ticket_id_for(-1)


values = st.integers(min_value=0, max_value=ID_SPACE - 1)


@given(values)
def test_every_id_round_trips(value: int) -> None:
    ticket = ticket_id_for(value)
    assert CANONICAL.match(ticket)
    assert normalise_ticket_id(ticket) == ticket
    assert normalise_ticket_id(ticket.lower()) == ticket
    assert normalise_ticket_id(ticket.removeprefix(PREFIX)) == ticket
    assert normalise_ticket_id(" ".join(ticket.removeprefix(PREFIX))) == ticket
    looks_alike = ticket[2:].replace("1", "l").replace("0", "O")
    assert normalise_ticket_id(looks_alike) == ticket


@given(values, st.integers(min_value=0, max_value=5), st.sampled_from(CHECK_SYMBOLS))
def test_any_single_substitution_is_detected(value: int, position: int, symbol: str) -> None:
    symbols = list(ticket_id_for(value).removeprefix(PREFIX))
    assume(symbols[position] != symbol)
    symbols[position] = symbol
    assert normalise_ticket_id(PREFIX + "".join(symbols)) is None


@given(values, st.integers(min_value=0, max_value=4))
def test_any_adjacent_transposition_is_detected(value: int, position: int) -> None:
    symbols = list(ticket_id_for(value).removeprefix(PREFIX))
    assume(symbols[position] != symbols[position + 1])
    symbols[position], symbols[position + 1] = symbols[position + 1], symbols[position]
    assert normalise_ticket_id(PREFIX + "".join(symbols)) is None


def test_single_substitutions_exhaustively_for_a_sample() -> None:
    """Beyond Hypothesis' draws: every substitution of every symbol of 500 spread-out ids."""
    for value in range(0, ID_SPACE, ID_SPACE // 500):
        ticket = ticket_id_for(value).removeprefix(PREFIX)
        for position, original in enumerate(ticket):
            alphabet = DATA_SYMBOLS if position < 5 else CHECK_SYMBOLS
            for symbol in alphabet:
                if symbol != original:
                    mutated = ticket[:position] + symbol + ticket[position + 1 :]
                    assert normalise_ticket_id(mutated) is None, (ticket, mutated)


def test_new_ids_are_letters_and_digits_only():
    """`*` would split a USSD input; `~$=` are hard to say or type: never issued."""
    from api.grievances.ticket import new_ticket_id

    for _ in range(2000):
        assert new_ticket_id()[2:].isalnum()
