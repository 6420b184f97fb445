"""The gettext catalogs: checks that every language is complete, and header repair after
`pybabel update` (which writes `Language: ur` for Roman Urdu and English plural rules for all).

    python -m bot.catalogs check        # every message translated, placeholders intact
    python -m bot.catalogs fix-headers  # Language and Plural-Forms as CLDR has them
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, LOCALES_DIR

#: Plural-Forms per language, from CLDR (Babel 2.18): Punjabi treats 0 as singular.
PLURAL_FORMS: dict[str, str] = {
    "en": "nplurals=2; plural=(n != 1);",
    "ur": "nplurals=2; plural=(n != 1);",
    "ur_Latn": "nplurals=2; plural=(n != 1);",
    "sd": "nplurals=2; plural=(n != 1);",
    "ps": "nplurals=2; plural=(n != 1);",
    "pa_Arab": "nplurals=2; plural=(n > 1);",
}

_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{\{?\s*(\w+)\s*\}?\}")


def po_path(language: str, locales_dir: Path = LOCALES_DIR) -> Path:
    return locales_dir / language / "LC_MESSAGES" / "messages.po"


def load(language: str, locales_dir: Path = LOCALES_DIR) -> Catalog:
    with po_path(language, locales_dir).open("rb") as fp:
        return read_po(fp)


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in _PLACEHOLDER.findall(text)}


def _texts(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ("",)
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class Problem:
    language: str
    msgid: str
    what: str


def check(locales_dir: Path = LOCALES_DIR) -> list[Problem]:
    """Untranslated, fuzzy or placeholder-changing entries in any language."""
    problems: list[Problem] = []
    for language in LANGUAGES:
        for message in load(language, locales_dir):
            if not message.id:
                continue
            ids = _texts(message.id)
            strings = _texts(message.string)
            msgid = ids[0]
            if message.fuzzy:
                problems.append(Problem(language, msgid, "fuzzy"))
            if not all(s and s.strip() for s in strings):
                problems.append(Problem(language, msgid, "untranslated"))
                continue
            expected = placeholders(ids[0])
            for string in strings:
                if placeholders(string) != expected:
                    problems.append(Problem(language, msgid, f"placeholders differ: {string!r}"))
    return problems


def fix_headers(locales_dir: Path = LOCALES_DIR) -> None:
    """Set each catalog's Language and Plural-Forms headers to the right values."""
    for language in LANGUAGES:
        path = po_path(language, locales_dir)
        text = path.read_text(encoding="utf-8")
        text = re.sub(r'"Language: [^"\\]*\\n"', f'"Language: {language}\\\\n"', text, count=1)
        text = re.sub(
            r'"Plural-Forms: [^"\\]*\\n"',
            f'"Plural-Forms: {PLURAL_FORMS[language]}\\\\n"',
            text,
            count=1,
        )
        path.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "fix-headers":
        fix_headers()
        return 0
    problems = check()
    for problem in problems:
        print(f"{problem.language}: {problem.what}: {problem.msgid[:60]!r}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
