"""English and Urdu consoles: right-to-left Urdu pages, the language switch, complete catalogs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from api.agent import i18n
from api.settings import PROJECT_ROOT
from tests.agent.conftest import post_form
from tests.agent.test_callers import open_lookup

PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|%%")


def catalog(language: str):
    with (i18n.LOCALES_DIR / language / "LC_MESSAGES" / "agent.po").open("rb") as fp:
        return read_po(fp, locale=language)


async def test_urdu_pages_are_right_to_left_with_urdu_labels(client, staff):
    client.cookies.set(i18n.LANGUAGE_COOKIE, "ur", domain="127.0.0.1")
    page = (await client.get("/agent/login")).text
    assert '<html lang="ur" dir="rtl">' in page
    assert '<label for="username">صارف نام</label>' in page
    assert '<label for="password">پاس ورڈ</label>' in page
    assert ">سائن ان کریں</button>" in page
    # The way back to English is a link, in English.
    assert 'lang="en" hreflang="en">English</a>' in page


async def test_a_masked_phone_in_an_urdu_sentence_keeps_its_order(new_client, staff, registry):
    """In a right-to-left sentence the stars of +92300****567 (neutral characters between two
    numbers) took the sentence's direction: browsers showed 567****+92300, and the agent read
    the wrong end of the caller's number. Every value put in an Urdu sentence is isolated
    (FSI ... PDI, U+2068 ... U+2069), keeping its own direction: the flash and the hint."""
    amina = await new_client("amina")
    amina.cookies.set(i18n.LANGUAGE_COOKIE, "ur", path="/agent")
    lookup = await open_lookup(amina)
    await post_form(amina, lookup, f"{lookup}/code", {})
    page = (await amina.get(lookup)).text
    isolated = "\u2068+92300****567\u2069"
    assert re.search(r'class="flash flash-ok"[^>]*>کوڈ ' + re.escape(isolated), page)
    assert f'<p class="hint">کوڈ {isolated} پر' in page
    # English sentences, left to right like the values, are as they were.
    amina.cookies.set(i18n.LANGUAGE_COOKIE, "en", path="/agent")
    assert "Code sent to +92300****567." in (await amina.get(lookup)).text


async def test_the_language_switch_is_a_link_that_remembers(client, staff):
    page = (await client.get("/agent/login")).text
    assert '<html lang="en" dir="ltr">' in page
    link = re.search(r'href="(/agent/language\?[^"]+)"', page).group(1).replace("&amp;", "&")
    response = await client.get(link)
    assert response.status_code == 303
    assert response.headers["location"] == "/agent/login"
    assert '<html lang="ur" dir="rtl">' in (await client.get("/agent/login")).text
    # Anything else than a console path is ignored as a destination.
    away = await client.get("/agent/language", params={"to": "en", "next": "//evil.example"})
    assert away.headers["location"] == "/agent"


async def test_the_browser_preference_decides_before_any_choice(client, staff):
    page = (await client.get("/agent/login", headers={"Accept-Language": "ur-PK,ur;q=0.9"})).text
    assert 'dir="rtl"' in page


def test_the_urdu_catalog_is_complete_with_identical_placeholders():
    problems = []
    for message in catalog("ur"):
        if not message.id:
            continue
        if not message.string or "fuzzy" in message.flags:
            problems.append(f"untranslated: {message.id}")
        elif sorted(PLACEHOLDER.findall(message.id)) != sorted(PLACEHOLDER.findall(message.string)):
            problems.append(f"placeholders differ: {message.id}")
    assert problems == []


def test_the_catalogs_hold_every_string_of_the_sources():
    """Fails when a page or message changed without `make agent-messages`."""
    method_map = [("api/agent/**.py", "python"), ("templates/agent/**.html", "jinja2")]
    found = {
        message[2]
        for message in extract_from_dir(
            PROJECT_ROOT,
            method_map=method_map,
            options_map={"templates/agent/**.html": {"encoding": "utf-8"}},
            keywords={"_": None, "N_": None},
        )
    }
    for language in i18n.LANGUAGES:
        ids = {m.id for m in catalog(language) if m.id}
        assert found - ids == set(), language


def test_a_missing_compiled_catalog_falls_back_to_the_po_file(tmp_path: Path):
    folder = tmp_path / "ur" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    shutil.copy(i18n.LOCALES_DIR / "ur" / "LC_MESSAGES" / "agent.po", folder / "agent.po")
    translations = i18n.translations.__wrapped__("ur", tmp_path)
    assert translations.gettext("Username") == "صارف نام"
    assert i18n.translations.__wrapped__("en", tmp_path / "none").gettext("Username") == "Username"


def test_labels_translate_stored_values_and_show_unknown_ones_as_they_are():
    assert i18n.label("ur", "status", "escalated") == "آگے بھیجی گئی"
    assert i18n.label("en", "category", "payment_not_received") == "Payment not received"
    assert i18n.label("en", "status", "something_new") == "something_new"
    assert i18n.label("ur", "status", None) == "(کوئی نہیں)"


def test_every_callers_language_has_its_console_label():
    """The console names a caller's language (her record, the complaint form's choice) by this
    label; a language added to Rabta without one would show as its raw code (README, "Add a
    language")."""
    from bot.formatting import LANGUAGES as CALLER_LANGUAGES

    assert set(i18n.LABELS["language"]) == set(CALLER_LANGUAGES)
