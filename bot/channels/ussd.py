"""USSD (Africa's Talking convention): one short screen per step, `CON ` to go on, `END ` to stop.

A USSD string is at most 160 octets: 182 characters in GSM-7, about 80 in UCS-2 (any Arabic-script
letter). The whole body, `CON `/`END ` included, is measured with the SMS segment calculator, so
GSM-7 extension characters count twice, as they do on the air. Menus list one choice per line
as `<key> <label>`; the navigation keys (`0` back, `00` home) share the last line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from bot.segments import measure

#: 160 octets of packed 7-bit characters.
SCREEN_GSM7: Final = 182
#: 160 octets of UTF-16 code units.
SCREEN_UCS2: Final = 80

CONTINUE: Final = "CON "
END: Final = "END "

#: Keys that move around the menu rather than choose in it.
NAVIGATION_KEYS: Final = frozenset({"0", "00"})


def screen_limit(body: str) -> int:
    """The most units a USSD body in this text's encoding may have."""
    return SCREEN_GSM7 if measure(body).encoding == "GSM-7" else SCREEN_UCS2


def fits(body: str) -> bool:
    """True when the whole body (prefix included) fits one USSD screen."""
    cost = measure(body)
    return cost.units <= (SCREEN_GSM7 if cost.encoding == "GSM-7" else SCREEN_UCS2)


def screen(text: str, *, end: bool) -> str:
    """The wire body: `CON …` while the menu goes on, `END …` when the session is over."""
    return (END if end else CONTINUE) + text


class UssdChannel:
    name = "ussd"
    #: The whole body of a GSM-7 screen; an Arabic-script one gets SCREEN_UCS2 (see `fits`).
    max_chars: int | None = SCREEN_GSM7

    def compose(self, texts: Sequence[str], options: Sequence[tuple[str, str]]) -> str:
        """Texts on their own lines, `1 label` per choice, then `0 Back 00 Home` on one line."""
        lines = [t for t in texts if t]
        lines += [f"{reply} {label}" for label, reply in options if reply not in NAVIGATION_KEYS]
        navigation = [f"{reply} {label}" for label, reply in options if reply in NAVIGATION_KEYS]
        if navigation:
            lines.append(" ".join(navigation))
        return "\n".join(lines)


ussd = UssdChannel()
