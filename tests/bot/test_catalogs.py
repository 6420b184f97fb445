"""The catalogs' headers: each language's Plural-Forms as CLDR has it, and a new language's
too (`make messages` runs `fix-headers` over every catalog)."""

from __future__ import annotations

import gettext
import shutil
from pathlib import Path

import pytest
from babel import Locale

from bot.catalogs import fix_headers, plural_forms, po_path
from bot.i18n import LANGUAGES, LOCALES_DIR


def _plural_index(forms: str, n: int) -> int:
    """The catalog form a gettext Plural-Forms expression picks for `n`."""
    return gettext.c2py(forms.split("plural=", 1)[1].rstrip(";"))(n)


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_catalogs_plural_rule_agrees_with_cldr(language):
    """Form 0 is CLDR's `one`, form 1 everything else, for the numbers replies count."""
    rule = Locale.parse(language).plural_form
    for n in (0, 1, 2, 5, 11, 100):
        assert _plural_index(plural_forms(language), n) == (0 if rule(n) == "one" else 1), n


def test_fix_headers_keeps_the_catalogs_as_they_are(tmp_path):
    copy = tmp_path / "locales"
    shutil.copytree(LOCALES_DIR, copy)
    fix_headers(copy)
    for language in LANGUAGES:
        assert po_path(language, copy).read_bytes() == po_path(language).read_bytes(), language


def test_a_new_language_gets_its_headers_without_a_table_entry(tmp_path, monkeypatch):
    """Adding a language means adding its code to `LANGUAGES` (README "Add a language"):
    `fix-headers` must not need a table of its own (it raised KeyError)."""
    copy = tmp_path / "locales"
    shutil.copytree(LOCALES_DIR, copy)
    new = po_path("skr", copy)
    new.parent.mkdir(parents=True)
    new.write_text(
        po_path("ur", copy)
        .read_text(encoding="utf-8")
        .replace("Language: ur\\n", "Language: x\\n"),
        encoding="utf-8",
    )
    monkeypatch.setattr("bot.catalogs.LANGUAGES", (*LANGUAGES, "skr"))
    fix_headers(copy)
    text = Path(new).read_text(encoding="utf-8")
    assert '"Language: skr\\n"' in text
    assert f'"Plural-Forms: {plural_forms("skr")}\\n"' in text
