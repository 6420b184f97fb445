"""Ticket ids read over the phone: `G-` + 5 Crockford base32 symbols + a mod-37 check symbol.

`G-7K3M9Q` holds 25 random bits. The check symbol is Crockford's: the value modulo 37, written with
the 32 data symbols followed by `*~$=U`. Because 37 is prime and larger than every symbol, it
catches any single wrong symbol and any swap of two neighbours, the two slips people make when
reading a code aloud or typing it on a keypad.
"""

from __future__ import annotations

import re
import secrets
from typing import NewType

from api.identity import normalise_text

#: A canonical ticket id, `G-` + six symbols.
TicketId = NewType("TicketId", str)

PREFIX = "G-"
DATA_SYMBOLS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_SYMBOLS = DATA_SYMBOLS + "*~$=U"
DATA_LENGTH = 5
#: How many distinct ids exist (32⁵ ≈ 33.5 million).
ID_SPACE = len(DATA_SYMBOLS) ** DATA_LENGTH

# Crockford decoding: case-insensitive, and the letters people confuse with digits read as digits.
_LOOK_ALIKES = str.maketrans({"I": "1", "L": "1", "O": "0"})
# What people put between symbols: spaces, ASCII and Unicode dashes, dots, slashes.
_SEPARATORS = re.compile(r"[\s\-‐-―−._/]+")
_DATA_VALUES = {symbol: value for value, symbol in enumerate(DATA_SYMBOLS)}
_CHECK_VALUES = {symbol: value for value, symbol in enumerate(CHECK_SYMBOLS)}


def check_symbol(value: int) -> str:
    """Crockford's check symbol for a non-negative integer."""
    return CHECK_SYMBOLS[value % len(CHECK_SYMBOLS)]


def ticket_id_for(value: int) -> TicketId:
    """The ticket id of a value in `0 .. ID_SPACE - 1` (leading zeros kept)."""
    if not 0 <= value < ID_SPACE:
        raise ValueError(f"ticket value out of range: {value}")
    symbols = []
    rest = value
    for _ in range(DATA_LENGTH):
        rest, digit = divmod(rest, len(DATA_SYMBOLS))
        symbols.append(DATA_SYMBOLS[digit])
    return TicketId(PREFIX + "".join(reversed(symbols)) + check_symbol(value))


def new_ticket_id() -> TicketId:
    """A fresh random ticket id; uniqueness is the database's job (see `file_grievance`)."""
    # secrets, not random: ids must not be guessable from earlier ones. Values whose check
    # symbol would be `*~$=` are skipped: `*` splits a USSD input and the others are hard to
    # say over the phone or type on a keypad, so every id is letters and digits only.
    while True:
        value = secrets.randbelow(ID_SPACE)
        if value % 37 < 32 or value % 37 == 36:
            return ticket_id_for(value)


def normalise_ticket_id(text: str) -> TicketId | None:
    """The canonical id for a ticket id typed any plausible way, or None if it does not check."""
    compact = _SEPARATORS.sub("", normalise_text(text)).upper().translate(_LOOK_ALIKES)
    # `G` is also a data symbol, so the prefix is recognised by length, not by its letter.
    if len(compact) == DATA_LENGTH + 2 and compact[0] == "G":
        compact = compact[1:]
    if len(compact) != DATA_LENGTH + 1:
        return None
    data, check = compact[:DATA_LENGTH], compact[DATA_LENGTH]
    value = 0
    for symbol in data:
        digit = _DATA_VALUES.get(symbol)
        if digit is None:
            return None
        value = value * len(DATA_SYMBOLS) + digit
    if _CHECK_VALUES.get(check) != value % len(CHECK_SYMBOLS):
        return None
    return TicketId(PREFIX + data + check)


def is_valid_ticket_id(text: object) -> bool:
    """True when `text` is a string that normalises to a ticket id whose check symbol holds."""
    return isinstance(text, str) and normalise_ticket_id(text) is not None
