"""Rendering console pages: one autoescaping Jinja2 environment per language over
`templates/agent`, with the `agent` catalog, labels and Pakistan-time dates."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from api.agent import i18n
from api.agent.sessions import Flash, SessionStore
from api.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from api.agent.deps import Staff

#: Lists count this many rows at most and show "10,000+" past it (the Closed tab and the audit
#: log hold everything since the console opened); their pages go as deep as the count.
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


def paged(total: int, page_size: int, page_text: str) -> tuple[int, int]:
    """(how many pages, the one asked for) of a list of `total` rows counted up to `COUNT_CAP`;
    a page number that is no number, or out of range, is the nearest page there is."""
    pages = max(1, math.ceil(min(total, COUNT_CAP) / page_size))
    return pages, min(max(1, int(page_text) if page_text.isdigit() else 1), pages)


def _counted(total: int, language: str) -> str:
    """A count as a list shows it: "10,000+" past `COUNT_CAP`."""
    if total > COUNT_CAP:
        return i18n.format_number(COUNT_CAP, language) + "+"
    return i18n.format_number(total, language)


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
        name: i18n.label(language, flash.labels[name], value) if name in flash.labels else value
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
    **context: Any,
) -> HTMLResponse:
    """A console page in the agent's language, with the flash messages kept for it."""
    language = i18n.choose_language(request)
    flashes: list[Flash] = []
    if staff is not None:
        flashes = await SessionStore(request.app.state.runtime.redis).take_flashes(staff.session)
    other = "ur" if language == "en" else "en"
    programmes = request.app.state.runtime.programmes
    html = render_text(
        language,
        template,
        {
            "staff": staff,
            "csrf_token": staff.csrf_token if staff else "",
            "flashes": [(f.kind, flash_text(language, f)) for f in flashes],
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
