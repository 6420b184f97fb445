"""Rendering console pages: one autoescaping Jinja2 environment per language over
`templates/agent`, with the `agent` catalog, labels and Pakistan-time dates."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from api.agent import i18n
from api.agent.sessions import Flash, Forms, SessionStore
from api.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from api.agent.deps import Staff

#: Lists count this many rows at most and show "10,000+" past it (the Closed tab and the audit
#: log hold everything since the console opened). Their pages are not numbered: each links to
#: the next and the previous by where it ends and starts (`Cursor`), as deep as the list goes.
COUNT_CAP = 10_000

TEMPLATES_DIR = PROJECT_ROOT / "templates" / "agent"
STATIC_DIR = PROJECT_ROOT / "api" / "agent" / "static"
STATIC_PATH = "/agent/static"


@cache
def static_url(name: str) -> str:
    """The URL of a static asset, with a content hash so a new release is never served stale."""
    path = STATIC_DIR / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10] if path.exists() else "0"
    return f"{STATIC_PATH}/{name}?v={digest}"


T = TypeVar("T")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CURSOR_TEXT = re.compile(r"(-?[0-9]{1,18})\.([0-9]{1,18})")


@dataclass(frozen=True)
class Cursor:
    """A place in a list ordered by a moment, then an id (the queue by due date, the audit log
    by time): the order columns of the row a page ends or starts at. In a link it is `token`, an
    opaque text; `parse` takes back only what `token` makes (anything else, a link typed or cut
    short, is no place at all: the list's first page, never an error)."""

    at: dt.datetime
    id: int

    def nudged(self, step: int) -> Cursor:
        """The place `step` ids on from this one: between this row and any other, since no row
        has the same moment and an id in between."""
        return Cursor(self.at, self.id + step)

    def token(self) -> str:
        micros = (self.at - _EPOCH) // _MICROSECOND
        return base64.urlsafe_b64encode(f"{micros}.{self.id}".encode()).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str | None) -> Cursor | None:
        if not token or not _TOKEN.fullmatch(token):
            return None
        try:
            padded = token + "=" * (-len(token) % 4)
            text = base64.urlsafe_b64decode(padded).decode("ascii")
        except (binascii.Error, ValueError):
            return None
        match = _CURSOR_TEXT.fullmatch(text)
        if match is None:
            return None
        try:
            place = cls(_EPOCH + int(match[1]) * _MICROSECOND, int(match[2]))
        except OverflowError:
            return None
        return place if place.token() == token else None


@dataclass(frozen=True)
class Seek:
    """Which page of a list a link asks for: the one after a cursor, the one before it, or (no
    cursor, or one that is no place) the first."""

    after: Cursor | None = None
    before: Cursor | None = None

    @classmethod
    def of(cls, after: str | None, before: str | None) -> Seek:
        if (place := Cursor.parse(after)) is not None:
            return cls(after=place)
        if (place := Cursor.parse(before)) is not None:
            return cls(before=place)
        return cls()


@dataclass(frozen=True)
class Page(Generic[T]):
    """A page of a list: its rows, and where the pages before and after it start from (None:
    there is none)."""

    rows: list[T]
    previous: Cursor | None = None
    next: Cursor | None = None

    def links(self, link: Callable[[dict[str, str]], str]) -> dict[str, Any]:
        """The pager's links (`previous_link`, `next_link`), `link` making one from its query."""
        return {
            "previous_link": link({"before": self.previous.token()}) if self.previous else None,
            "next_link": link({"after": self.next.token()}) if self.next else None,
        }


def _counted(total: int, language: str) -> str:
    """A count as a list shows it: "10,000+" past `COUNT_CAP`."""
    if total > COUNT_CAP:
        return i18n.format_number(COUNT_CAP, language) + "+"
    return i18n.format_number(total, language)


#: First strong isolate and pop directional isolate (Unicode's bidirectional algorithm, UAX #9).
FSI, PDI = "\u2068", "\u2069"


def isolated(value: Any, language: str) -> Any:
    """`value` as it is put into a sentence of `language`: in a right-to-left one, isolated so
    it keeps its own direction. Unisolated, a masked phone's stars (neutral characters between
    two numbers) took the sentence's direction: +92300****567 showed as 567****+92300."""
    if language not in i18n.RTL:
        return value
    if isinstance(value, Markup):
        return escape(FSI) + value + escape(PDI)
    return f"{FSI}{value}{PDI}"


def _gettext(language: str) -> Callable[..., str]:
    """The templates' `_`: Jinja's new-style gettext (autoescaped, `%` always applied), with
    each value put into the sentence `isolated`."""
    translations = i18n.translations(language)

    @jinja2.pass_context
    def gettext(context: jinja2.runtime.Context, message: str, **variables: Any) -> str:
        text = translations.gettext(message)
        # The catalog's own words are markup, as Jinja's gettext takes them; the values are not.
        sentence = Markup(text) if context.eval_ctx.autoescape else text  # noqa: S704
        return sentence % {name: isolated(v, language) for name, v in variables.items()}

    return gettext


@cache
def environment(language: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["_"] = _gettext(language)
    env.globals.update(
        lang=language,
        dir="rtl" if language in i18n.RTL else "ltr",
        static_url=static_url,
        language_names=i18n.LANGUAGE_NAMES,
        languages=i18n.LANGUAGES,
    )
    env.filters["label"] = lambda value, kind: i18n.label(language, kind, value)
    env.filters["moment"] = lambda value: i18n.format_moment(value, language)
    env.filters["moment_ts"] = lambda value: i18n.format_moment(
        dt.datetime.fromtimestamp(float(value), dt.UTC), language
    )
    env.filters["day"] = lambda value: i18n.format_day(value, language)
    env.filters["amount"] = lambda value: i18n.format_amount(value, language)
    env.filters["number"] = lambda value: i18n.format_number(value, language)
    env.filters["counted"] = lambda value: _counted(value, language)
    return env


def render_text(language: str, template: str, context: dict[str, Any]) -> str:
    return environment(language).get_template(template).render(context)


def _here(request: Request) -> str:
    """This page, to come back to after switching the language (a form's target is not a page)."""
    if request.method != "GET":
        return "/agent"
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def flash_text(language: str, flash: Flash) -> str:
    args = {
        name: isolated(
            i18n.label(language, flash.labels[name], value) if name in flash.labels else value,
            language,
        )
        for name, value in flash.args.items()
    }
    return i18n.gettext(language, flash.message, **args)


async def page(
    request: Request,
    template: str,
    *,
    staff: Staff | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    forms: Forms | None = None,
    **context: Any,
) -> HTMLResponse:
    """A console page in the agent's language, with the flash messages kept for it and the
    words kept for the `forms` it shows (no other page takes those: `SessionStore.take_flashes`)."""
    language = i18n.choose_language(request)
    flashes: list[Flash] = []
    if staff is not None:
        runtime = request.app.state.runtime
        store = SessionStore(runtime.redis, runtime.settings)
        flashes = await store.take_flashes(staff.session, forms)
    # Two forms' words given back with the same message (sent after the session ended) say it
    # once. Each message has an id, by which the field it is about (`Flash.field`) names it as
    # what describes it (`errors`: field id → message id; the `field_error` macro).
    texts = [(f, (f.kind, flash_text(language, f))) for f in flashes]
    ids = {said: f"flash-{n}" for n, said in enumerate(dict.fromkeys(s for _, s in texts), 1)}
    errors = {f.field: ids[said] for f, said in texts if f.field and f.kind == "error"}
    other = "ur" if language == "en" else "en"
    programmes = request.app.state.runtime.programmes
    html = render_text(
        language,
        template,
        {
            "staff": staff,
            "csrf_token": staff.csrf_token if staff else "",
            "flashes": [(kind, text, ident) for (kind, text), ident in ids.items()],
            "errors": errors,
            "kept": {name: text for f in flashes for name, text in f.kept.items()},
            "switch_language": (
                other,
                "/agent/language?" + urlencode({"to": other, "next": _here(request)}),
            ),
            "here": _here(request),
            "programme_name": lambda key: programmes.name(key, language),
            **context,
        },
    )
    return HTMLResponse(html, status_code=status_code, headers=headers)
