"""Replies to words: Jinja2 templates per flow (and per channel where they differ), translated
with the gettext catalogs, dates and amounts formatted for the language, joined per channel."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from bot import formatting
from bot.channels import CHANNELS
from bot.channels.base import Rendered, Reply
from bot.channels.sms import PLACE_UNITS, sms_budget
from bot.i18n import LANGUAGE_KEYWORD, translations
from bot.segments import cut_to_units, measure

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

_BLANK_RUNS = re.compile(r"[ \t]*\n[ \t]*")
_SPACES = re.compile(r"[ \t]{2,}")

ProgrammeNamer = Callable[[str, str], str]
#: Told of every reply that failed to render in a language: (language, message, the language it
#: was answered in instead or None, the error).
RenderFailure = Callable[[str, str, str | None, Exception], None]

#: Where a reply broken in a language (a translator's typo in its catalog) is answered instead:
#: Urdu for readers of Arabic script, then English. An answer in a language they read beats a
#: 500, which Twilio does not send again. English is the templates' own text: broken there, it
#: is broken everywhere.
FALLBACKS: dict[str, tuple[str, ...]] = {
    "sd": ("ur", "en"),
    "ps": ("ur", "en"),
    "pa_Arab": ("ur", "en"),
    "ur": ("en",),
    "ur_Latn": ("en",),
}


class RenderError(Exception):
    """A reply that failed to render in its language and in every fallback; the cause is the
    error in its own language."""

    def __init__(self, message: str, language: str) -> None:
        super().__init__(f"reply {message} failed to render in language {language}")
        self.message = message
        self.language = language


class Renderer:
    """Renders `Reply` objects in a language for a channel; one Jinja environment per language."""

    def __init__(
        self,
        *,
        brand: Mapping[str, str],
        programme_name: ProgrammeNamer,
        templates_dir: Path = TEMPLATES_DIR,
        auto_reload: bool = False,
        on_failure: RenderFailure | None = None,
    ) -> None:
        self._brand = brand
        #: Told of each failure, answered in a fallback or not (the service counts and logs).
        self._on_failure = on_failure
        self._programme_name = programme_name
        self._loader = jinja2.FileSystemLoader(templates_dir / "messages")
        self._envs: dict[str, jinja2.Environment] = {}
        # Checking template files on disk on every render is a development convenience only.
        self._auto_reload = auto_reload
        #: (reply, channel) → the file that answers it. Jinja caches templates it found, not
        #: names it did not: without this every render would look for the channel's own file
        #: on disk again and raise TemplateNotFound when, as for most replies, there is none.
        self._chosen: dict[tuple[str, str], str] = {}

    def environment(self, language: str) -> jinja2.Environment:
        env = self._envs.get(language)
        if env is None:
            env = jinja2.Environment(
                loader=self._loader,
                extensions=["jinja2.ext.i18n"],
                autoescape=False,  # noqa: S701 - plain text for SMS/USSD; HTML escaping is per channel
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=False,
                auto_reload=self._auto_reload,
            )
            catalog = translations(language)
            env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
            # ... with counts ("5 minutes") in the language's own digits, like dates and amounts.
            env.globals["gettext"], env.globals["ngettext"] = _native_count_gettext(
                catalog, language
            )
            env.filters["ltr"] = lambda value: formatting.ltr(str(value), language)
            # Month names make a date right-to-left text itself: wrapping it as LTR would put
            # "28 ستمبر 2026" in the wrong order.
            env.filters["date"] = lambda value: formatting.format_date(value, language)
            # An amount's symbol may be Arabic script (Punjabi's "ر"): an LTR isolate would put
            # it after the number for a right-to-left reader, so the amount sets its own way.
            env.filters["amount"] = lambda value: formatting.isolate(
                formatting.format_amount(value, language), language
            )
            # Free text (a place, a complaint's words, an agent's note) in English or Urdu.
            env.filters["isolate"] = lambda value: formatting.isolate(str(value), language)
            env.filters["number"] = lambda value: formatting.format_number(value, language)
            # Registry text longer than an SMS template is budgeted for (a place), cut to fit.
            env.filters["cut_to_units"] = cut_to_units
            env.globals["SMS_PLACE_UNITS"] = PLACE_UNITS
            env.filters["programme"] = lambda key: self._programme_name(key, language)
            env.globals["brand"] = self._brand.get(language) or self._brand.get("en", "")
            env.globals["language"] = language
            # Between the items of a list: the Arabic comma in right-to-left languages.
            env.globals["comma"] = "، " if formatting.is_rtl(language) else ", "
            env.globals["LANGUAGE_KEYWORD"] = LANGUAGE_KEYWORD
            self._envs[language] = env
        return env

    def template_names(self, name: str, channel: str) -> list[str | jinja2.Template]:
        """Where a reply's template is looked up: the channel's own first, then the shared one."""
        return [f"{name}.{channel}.j2", f"{name}.j2"]

    def _template(self, env: jinja2.Environment, name: str, channel: str) -> jinja2.Template:
        if self._auto_reload:  # a channel's own file added while running is picked up
            return env.select_template(self.template_names(name, channel))
        chosen = self._chosen.get((name, channel))
        if chosen is None:
            template = env.select_template(self.template_names(name, channel))
            self._chosen[(name, channel)] = str(template.name)
            return template
        return env.get_template(chosen)

    def render_text(
        self, name: str, context: Mapping[str, Any], *, language: str, channel: str
    ) -> str:
        """One template, rendered and tidied (no blank lines or double spaces). Broken in
        `language`, it is rendered in the first of the language's `FALLBACKS` that works, and
        otherwise raises `RenderError`; either way `on_failure` is told."""
        try:
            return self._render_text(name, context, language=language, channel=channel)
        except Exception as exc:
            for fallback in FALLBACKS.get(language, ()):
                try:
                    text = self._render_text(name, context, language=fallback, channel=channel)
                except Exception:  # noqa: S112 - the next fallback, or RenderError below
                    continue
                self._failed(language, name, fallback, exc)
                return text
            self._failed(language, name, None, exc)
            raise RenderError(name, language) from exc

    def _failed(self, language: str, name: str, answered_in: str | None, exc: Exception) -> None:
        if self._on_failure is not None:
            self._on_failure(language, name, answered_in, exc)

    def _render_text(
        self, name: str, context: Mapping[str, Any], *, language: str, channel: str
    ) -> str:
        env = self.environment(language)
        template = self._template(env, name, channel)
        text = template.render(**context, channel=channel)
        return _SPACES.sub(" ", _BLANK_RUNS.sub("\n", text)).strip()

    def render(self, replies: Sequence[Reply], *, language: str, channel: str) -> Rendered:
        """The whole answer to one inbound message, composed as the channel sends it."""
        texts = [
            self.render_text(r.template, r.context, language=language, channel=channel)
            for r in replies
        ]
        if channel == "sms" and any(r.spare for r in replies):
            replies, texts = _within_budget(replies, texts, language)
        options = [
            (self.render_text(o.label, o.context, language=language, channel=channel), o.reply)
            for r in replies
            for o in r.options
        ]
        return Rendered(
            text=CHANNELS[channel].compose(texts, options),
            options=options,
            end=any(r.end for r in replies),
            ask_contact=any(r.ask_contact for r in replies),
        )


def _within_budget(
    replies: Sequence[Reply], texts: list[str], language: str
) -> tuple[Sequence[Reply], list[str]]:
    """The SMS answer's replies (and their texts) without its spare ones when, with them, it
    would be over the segment budget of the others, or UCS-2 where they are GSM-7 (SPEC §2)."""
    kept = [(r, t) for r, t in zip(replies, texts, strict=True) if not r.spare]
    if not kept:
        return replies, texts
    compose = CHANNELS["sms"].compose
    whole, alone = measure(compose(texts, ())), measure(compose([t for _, t in kept], ()))
    budget = max(sms_budget(r.template, language) for r, _ in kept)
    if whole.segments <= max(budget, alone.segments) and whole.encoding == alone.encoding:
        return replies, texts
    return [r for r, _ in kept], [t for _, t in kept]


def _native_count_gettext(catalog: Any, language: str) -> tuple[Any, Any]:
    """Jinja's new-style `gettext`/`ngettext` (what `{% trans %}` calls), except that whole-number
    variables are shown in the language's digits (Sindhi, Pashto and Shahmukhi Punjabi use
    Eastern Arabic digits; English, Urdu and Roman Urdu keep 0-9). Plural forms are still chosen
    from the number itself. Mirrors jinja2.ext._make_new_gettext/_make_new_ngettext."""

    def shown(variables: dict[str, Any]) -> dict[str, Any]:
        return {
            name: formatting.format_number(value, language)
            if isinstance(value, int) and not isinstance(value, bool)
            else value
            for name, value in variables.items()
        }

    @jinja2.pass_context
    def gettext(__context: jinja2.runtime.Context, __string: str, **variables: Any) -> str:
        text = str(__context.call(catalog.gettext, __string))
        return text % shown(variables)

    @jinja2.pass_context
    def ngettext(
        __context: jinja2.runtime.Context,
        __singular: str,
        __plural: str,
        __num: int,
        **variables: Any,
    ) -> str:
        variables.setdefault("num", __num)
        text = str(__context.call(catalog.ngettext, __singular, __plural, __num))
        return text % shown(variables)

    return gettext, ngettext
