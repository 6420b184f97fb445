"""Rendering console pages: one autoescaping Jinja2 environment per language over
`templates/agent`, with the `agent` catalog, labels and Pakistan-time dates."""

from __future__ import annotations

import datetime as dt
import hashlib
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

TEMPLATES_DIR = PROJECT_ROOT / "templates" / "agent"
STATIC_DIR = PROJECT_ROOT / "api" / "agent" / "static"
STATIC_PATH = "/agent/static"


@cache
def static_url(name: str) -> str:
    """The URL of a static asset, with a content hash so a new release is never served stale."""
    path = STATIC_DIR / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10] if path.exists() else "0"
    return f"{STATIC_PATH}/{name}?v={digest}"


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
