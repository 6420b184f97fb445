"""Form-encoded webhook bodies (Twilio, USSD gateways), decoded in one call.

A gateway posts a handful of short fields, and the body is small (BodySizeLimit caps it): the
standard library's `parse_qsl` decodes it in one call, keeping blank fields (Twilio signs them
too), where Starlette's form parser calls back per byte run and costs several times more per
request. Undecodable bytes become U+FFFD; a repeated field keeps its last value, as
Starlette's `FormData.items()` does.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request

from api.problems import Problem

#: Twilio posts about twenty fields and a USSD gateway five; a form with more is neither's.
MAX_FIELDS = 200

URLENCODED = "application/x-www-form-urlencoded"


class FormFields(dict[str, str]):
    """The form's fields. `getall` is there for twilio's `RequestValidator`, which asks for it
    first (a plain dict makes it raise and catch two AttributeErrors per field, twice per
    request)."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]


async def urlencoded_fields(request: Request) -> FormFields:
    """The fields of an `application/x-www-form-urlencoded` body; 400 when there are too many."""
    try:
        fields = parse_qsl(
            (await request.body()).decode("utf-8", "replace"),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
        )
    except ValueError as exc:
        raise Problem(400, "The form has too many fields.") from exc
    return FormFields(fields)
