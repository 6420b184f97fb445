"""SMS segment calculator: GSM-7 or UCS-2, length in septets or UTF-16 units, carrier-style parts.

The GSM-7 alphabet is not written out here: it is read from the ``gsm0338`` codec's decoding
table once at import time, so the codec stays the single source of truth while ``measure()``
avoids the codec's per-character Python encode loop (about 30 times slower on a 300-character
message). ``tests/bot/test_segments.py`` cross-checks every result against
``text.encode("gsm03.38")``.

An empty text is one segment: a carrier still sends (and bills) one SMS for an empty body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import gsm0338  # noqa: F401  # importing registers the "gsm03.38" codec

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_SINGLE: Final = 160
GSM7_PART: Final = 153
UCS2_SINGLE: Final = 70
UCS2_PART: Final = 67

_CODEC: Final = "gsm03.38"
_ESCAPE: Final = 0x1B


def _gsm_alphabet() -> tuple[frozenset[str], frozenset[str]]:
    basic: set[str] = set()
    extension: set[str] = set()
    for septet in range(128):
        # 0x1B is the escape to the extension table, not a character a text can carry: a raw
        # U+001B would swallow the next character on the handset, so it makes the text UCS-2.
        if septet != _ESCAPE:
            basic.add(bytes((septet,)).decode(_CODEC))
        try:
            extension.add(bytes((_ESCAPE, septet)).decode(_CODEC))
        except UnicodeDecodeError:
            continue
    return frozenset(basic), frozenset(extension)


GSM7_BASIC, GSM7_EXTENSION = _gsm_alphabet()
_GSM7_ALL: Final = GSM7_BASIC | GSM7_EXTENSION


@dataclass(frozen=True)
class SmsCost:
    """What one SMS body costs: its encoding, length and number of billed segments."""

    encoding: Encoding
    characters: int
    units: int
    segments: int


def _is_gsm7(text: str) -> bool:
    return _GSM7_ALL.issuperset(text)


def _septets(text: str) -> int:
    return len(text) + sum(text.count(ch) for ch in GSM7_EXTENSION)


def _utf16_units(text: str) -> int:
    # surrogatepass: a lone surrogate in a str still occupies one code unit on the wire
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _gsm_cost(ch: str) -> int:
    return 2 if ch in GSM7_EXTENSION else 1


def _ucs2_cost(ch: str) -> int:
    return 2 if ch > "\uffff" else 1


def _pack(text: str, limit: int, cost: Callable[[str], int]) -> list[str]:
    # Greedy packing keeps each escape sequence / surrogate pair whole; it also yields the
    # fewest parts, so the count can be higher than units / limit when a pair hits a boundary.
    parts: list[str] = []
    start = used = 0
    for i, ch in enumerate(text):
        c = cost(ch)
        if used + c > limit:
            parts.append(text[start:i])
            start, used = i, 0
        used += c
    parts.append(text[start:])
    return parts


def _layout(text: str) -> tuple[Encoding, int, int, int, Callable[[str], int]]:
    if _is_gsm7(text):
        return "GSM-7", _septets(text), GSM7_SINGLE, GSM7_PART, _gsm_cost
    return "UCS-2", _utf16_units(text), UCS2_SINGLE, UCS2_PART, _ucs2_cost


def measure(text: str) -> SmsCost:
    """Return the encoding, character count, septets/UTF-16 units and segments of an SMS body."""
    encoding, units, single, part, cost = _layout(text)
    if units <= single:
        segments = 1
    elif units == len(text):
        # every character costs one unit, so greedy packing is plain ceiling division
        segments = -(-units // part)
    else:
        segments = len(_pack(text, part, cost))
    return SmsCost(encoding=encoding, characters=len(text), units=units, segments=segments)


def split(text: str) -> list[str]:
    """Split an SMS body into the parts a carrier sends; ``"".join(split(t)) == t``."""
    _, units, single, part, cost = _layout(text)
    if units <= single:
        return [text]
    return _pack(text, part, cost)


#: What ends a text `cut_to_units` shortened: two GSM-7 dots (an ellipsis `…` is not GSM-7, and
#: one would make a Latin-script SMS UCS-2).
CUT_MARK: Final = ".."
#: What cannot end a cut text: a joiner or variation selector left of a broken emoji.
_DANGLING: Final = "\u200d\ufe0e\ufe0f"


def cut_to_units(text: str, units: int) -> str:
    """``text`` if it takes at most ``units`` SMS units (``measure``: septets, two for a GSM-7
    extension character such as ``€``; or UTF-16 units, two for an emoji), else cut to end in
    ``CUT_MARK`` within them, leaving no dangling joiner of a cut emoji."""
    if measure(text).units <= units:
        return text
    room = units - len(CUT_MARK)
    cut = text[:room]
    while measure(cut).units > room:
        cut = cut[:-1]
    return cut.rstrip().rstrip(_DANGLING) + CUT_MARK


def cost_per_million(segments: int, price_per_segment: float) -> float:
    """Return the cost of sending a message of ``segments`` segments one million times."""
    if segments < 0 or price_per_segment < 0:
        raise ValueError("segments and price_per_segment must not be negative")
    return segments * price_per_segment * 1_000_000
