"""The catalogs' headers: each language's Plural-Forms as CLDR has it, and a new language's
too (`make messages` runs `fix-headers` over every catalog)."""

from __future__ import annotations

import gettext
import re
import shutil
from pathlib import Path

import pytest
from babel import Locale

from bot.catalogs import fix_headers, load, main, plural_forms, po_path
from bot.formatting import DIGITS, NUMBERING_SYSTEMS
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


def test_make_messages_names_a_new_language_without_a_catalog(tmp_path, monkeypatch, capsys):
    """`make messages` run after adding a code to `LANGUAGES` (README "Add a language") and before
    its catalog exists says which file is missing and the command that creates it, and still
    sets the other catalogs' headers (it ended in fix-headers' FileNotFoundError traceback)."""
    copy = tmp_path / "locales"
    shutil.copytree(LOCALES_DIR, copy)
    monkeypatch.setattr("bot.catalogs.LANGUAGES", (*LANGUAGES, "skr"))
    ur = po_path("ur", copy)
    text = ur.read_text(encoding="utf-8")
    ur.write_text(text.replace("Language: ur\\n", "Language: x\\n"), encoding="utf-8")
    assert main(["catalogs", "fix-headers"], copy) == 1
    said = capsys.readouterr()
    assert f"pybabel init -i {copy / 'messages.pot'} -d {copy} -l skr" in said.err
    assert str(po_path("skr", copy)) in said.err
    assert "Traceback" not in said.err
    assert ur.read_bytes() == po_path("ur").read_bytes()
    assert main(["catalogs", "check"], copy) == 1
    assert "-l skr" in capsys.readouterr().err


_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_catalog_writes_numbers_in_the_languages_own_digits(language):
    """Digits a person reads ("the 13 digits", "a 6-digit code", "30 days") are the language's
    own, as its dates, amounts and counts are (bot.formatting.NUMBERING_SYSTEMS): Sindhi ٠-٩,
    Pashto and Punjabi ۰-۹, the others 0-9; on every channel, USSD included. A number to send
    back on SMS ("١ to file") is written the same way: keywords read every script's digits."""
    own = DIGITS[NUMBERING_SYSTEMS[language]]
    wrong = [
        (message.id, string)
        for message in load(language)
        if message.id
        for string in (message.string if isinstance(message.string, tuple) else (message.string,))
        if any(c.isdigit() and c not in own for c in _PLACEHOLDER.sub("", string))
    ]
    assert wrong == []
