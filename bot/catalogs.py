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
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, LOCALES_DIR

#: Where CLDR's plural rule differs from Babel's `get_plural` table (which `pybabel init`
#: writes): in Punjabi, "one" covers 0 as well as 1.
PLURAL_FORMS: dict[str, str] = {"pa_Arab": "nplurals=2; plural=(n > 1);"}


def plural_forms(language: str) -> str:
    """The catalog's Plural-Forms header for `language`: Babel's, unless CLDR says otherwise."""
    return PLURAL_FORMS.get(language) or get_plural(language).plural_forms


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


def missing(locales_dir: Path = LOCALES_DIR) -> list[str]:
    """Languages of `LANGUAGES` with no catalog yet (one just added, before `pybabel init`)."""
    return [language for language in LANGUAGES if not po_path(language, locales_dir).is_file()]


def _shown(path: Path) -> Path:
    """`path` as typed from the working directory (the project's, under make) when inside it."""
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def fix_headers(locales_dir: Path = LOCALES_DIR) -> None:
    """Set each catalog's Language and Plural-Forms headers to the right values (skipping the
    languages with no catalog yet: `missing`)."""
    for language in LANGUAGES:
        path = po_path(language, locales_dir)
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        text = re.sub(r'"Language: [^"\\]*\\n"', f'"Language: {language}\\\\n"', text, count=1)
        text = re.sub(
            r'"Plural-Forms: [^"\\]*\\n"',
            f'"Plural-Forms: {plural_forms(language)}\\\\n"',
            text,
            count=1,
        )
        path.write_text(text, encoding="utf-8")


def main(argv: list[str], locales_dir: Path = LOCALES_DIR) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    absent = missing(locales_dir)
    for language in absent:
        print(
            f"{language}: {_shown(po_path(language, locales_dir))} does not exist yet; create it"
            f" with .venv/bin/pybabel init -i {_shown(locales_dir / 'messages.pot')}"
            f" -d {_shown(locales_dir)} -l {language}",
            file=sys.stderr,
        )
    if command == "fix-headers":
        fix_headers(locales_dir)
        return 1 if absent else 0
    if absent:
        return 1
    problems = check(locales_dir)
    for problem in problems:
        print(f"{problem.language}: {problem.what}: {problem.msgid[:60]!r}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
