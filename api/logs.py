"""Logging set-up: every record passes a filter that masks CNICs, phone numbers and OTPs
(SPEC §3), whatever logger wrote it and however the message was formatted."""

from __future__ import annotations

import json
import logging
import logging.config
import re
from contextvars import ContextVar
from typing import Any
from urllib.parse import unquote

from api.identity import normalise_text

# Between a CNIC's digits, and a phone's, people type dashes (ASCII or Unicode), spaces and
# dots (as `Cnic.parse` reads them), and some underscores or slashes (which it refuses, but an
# access line's path still holds): each is masked however it was written.
_SEP = r"[\s\-‐-―−._/]"
# `Cnic.parse` reads separators anywhere, as many as were typed (`35202 123 4567 1`,
# `35202  -  1234567  -  1`), and so does `/v1/eligibility/{cnic}`: so is it masked. A
# separator and a digit never overlap, so the repeated groups cannot backtrack into each other.
_CNIC = re.compile(
    rf"(?<![0-9])([1-7](?:{_SEP}*[0-9]){{4}})((?:{_SEP}*[0-9]){{7}}){_SEP}*([0-9])(?![0-9])"
)
# A phone's groups as people write them (`0300 12 34 567`, `+92 (300) 1234567`): brackets too.
_PHONE_SEP = r"[\s\-‐-―−._/()]"
_PHONE_TAIL = rf"((?:{_PHONE_SEP}{{0,3}}[0-9]){{4}})((?:{_PHONE_SEP}{{0,3}}[0-9]){{3}})(?![0-9])"
_PHONE = re.compile(
    rf"(?<![0-9])(\+?92|0092|0){_PHONE_SEP}{{0,3}}(3(?:{_PHONE_SEP}{{0,3}}[0-9]){{2}})"
    + _PHONE_TAIL
)
# A mobile number written without its 0 or +92 (`3001234567`, `300-1234567`), as people type
# their own.
_BARE_MOBILE = re.compile(
    rf"(?<![0-9+])(3(?:{_SEP}{{0,2}}[0-9]){{2}})((?:{_SEP}{{0,2}}[0-9]){{4}})"
    rf"((?:{_SEP}{{0,2}}[0-9]){{3}})(?![0-9])"
)
_LONG_DIGITS = re.compile(r"(?<![0-9])([0-9]{2})[0-9]{6,}([0-9]{3})(?![0-9])")
# Bot API URLs carry the bot's token (httpx logs every request URL).
_BOT_TOKEN = re.compile(r"bot[0-9]{5,}:[A-Za-z0-9_-]{20,}")
# Any lone group of exactly six digits may be an OTP: it is never worth the risk.
_SIX = re.compile(r"(?<![0-9])[0-9]{6}(?![0-9])")
# What a line needs somewhere for any of it to be masked: six digits in a row (a code, a long
# number), ten digits or more with separators between them (the shortest phone, a CNIC), a
# bot token, or what is read again decoded (a percent-escape, as in an access line's path, or
# any non-ASCII character, such as Urdu digits). Most lines have none (an access log line's
# five-digit port is not enough), and are passed through after one search instead of five
# substitutions.
_MAYBE_SENSITIVE = re.compile(
    rf"[0-9]{{6}}|[0-9](?:{_PHONE_SEP}*[0-9]){{9}}|bot[0-9]|%[0-9A-Fa-f]{{2}}|[^\x00-\x7f]"
)
_NOT_DIGITS = re.compile(r"[^0-9]")


def _digits(text: str) -> str:
    return _NOT_DIGITS.sub("", text)


def mask_sensitive(text: str) -> str:
    """Mask CNICs as `35202-*******-1`, phones as `+92300****567`, six-digit codes as `******`,
    written in any digits or percent-escaped (`/v1/eligibility/35202%201234567%201`)."""
    if _MAYBE_SENSITIVE.search(text) is None:
        return text
    return _mask_all(text)


def _mask_all(text: str) -> str:
    masked = _mask_ascii(text)
    if "%" in text or not text.isascii():
        # Read again decoded, as the API reads a path or a message: a CNIC percent-escaped or
        # in Urdu digits is one all the same. The line is kept as it was written unless its
        # decoded form holds something to mask. Decoded as written, not as masked: a part of
        # the number masked as written (`100000000000%C2%A00`'s first twelve digits) would
        # leave the rest unrecognised.
        decoded = normalise_text(unquote(text))
        remasked = _mask_ascii(decoded)
        if remasked != decoded:
            return remasked
    return masked


def _mask_ascii(text: str) -> str:
    text = _BOT_TOKEN.sub("bot<token>", text)
    text = _CNIC.sub(lambda m: f"{_digits(m.group(1))}-*******-{m.group(3)}", text)
    text = _PHONE.sub(lambda m: f"+92{_digits(m.group(2))}****{_digits(m.group(4))}", text)
    text = _BARE_MOBILE.sub(lambda m: f"+92{_digits(m.group(1))}****{_digits(m.group(3))}", text)
    text = _LONG_DIGITS.sub(lambda m: f"{m.group(1)}******{m.group(2)}", text)
    return _SIX.sub("******", text)


_base_factory = logging.getLogRecordFactory()
_TRACEBACK = logging.Formatter()


#: The id of the HTTP request being answered (api/metrics.py `RequestMetrics` sets it): every
#: line logged while answering it carries it, so one message's lines can be found together.
REQUEST_ID: ContextVar[str | None] = ContextVar("rabta_request_id", default=None)
#: What an operator filters a request's lines on, known once its answer starts (`RequestMetrics`
#: sets it then, as uvicorn writes the access line): `method`, `route` (the template, never the
#: path), `status` and `duration_ms` (until the answer's first byte).
REQUEST_SUMMARY: ContextVar[dict[str, Any] | None] = ContextVar(
    "rabta_request_summary", default=None
)


def _masking_record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = REQUEST_ID.get()
    record.request_summary = REQUEST_SUMMARY.get()
    try:
        message = record.getMessage()
    except Exception:  # a broken format string must not lose the record
        message = str(record.msg)
    record.msg = mask_sensitive(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        # An exception's text may quote input (a CNIC, a phone): handlers reuse this masked
        # copy instead of formatting the traceback themselves, whatever their formatter.
        record.exc_text = mask_sensitive(_TRACEBACK.formatException(record.exc_info))
    return record


class MaskingFormatter(logging.Formatter):
    """Masks the finished line too, tracebacks included (exception texts may quote input)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_sensitive(super().format(record))


class JsonFormatter(MaskingFormatter):
    """One JSON object per line: what log collectors want."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            # A replica runs several workers: which one wrote the line.
            "pid": record.process,
            "msg": mask_sensitive(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            payload["request_id"] = request_id
        summary = getattr(record, "request_summary", None)
        if summary:
            payload.update(summary)
        if record.exc_info:
            payload["exc"] = mask_sensitive(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False)


def install_masking() -> None:
    """Mask every log record as it is created, whichever logger or handler takes it."""
    if logging.getLogRecordFactory() is not _masking_record_factory:
        logging.setLogRecordFactory(_masking_record_factory)


def logging_config(*, json_lines: bool = False, level: int = logging.INFO) -> dict[str, Any]:
    """Masked logging to stderr (JSON lines in production), uvicorn's loggers through it, as a
    `logging.config.dictConfig` dict. It is uvicorn's `log_config` (api/cli.py): uvicorn applies
    it in every worker process it starts, each a new interpreter that inherits no handler from
    the process that configured it."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter}
        if json_lines
        else {"()": MaskingFormatter, "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        # Rabta's module loggers exist by now (made at import): they must go on logging.
        "disable_existing_loggers": False,
        "formatters": {"rabta": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "rabta",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure_logging(*, json_lines: bool = False, level: int = logging.INFO) -> None:
    """Masked logging to stderr (JSON lines in production); uvicorn's loggers included."""
    install_masking()
    logging.config.dictConfig(logging_config(json_lines=json_lines, level=level))
