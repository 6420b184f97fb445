"""The OpenAPI document at `/openapi.json`, completed: every error an operation can answer is
declared as an RFC 9457 problem (`application/problem+json`), with every cause of it (a `/v1`
route declares its own causes in `responses=`; those any `/v1` call shares are added here), every
`/v1` call may carry the partner key (`X-API-Key`, so /docs can send it), `/readyz` may answer
503, and the webhooks' bodies, which their routes read by hand (forms, a Telegram Update), are
described so that clients and fuzzers (tests/fuzz) see what the gateways send.

Each `/v1` error status lists the problem types (api/problems.py) it can carry, as an `enum` on
its problem's `type` and in its description, so a partner's front end can branch on `type`."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

from api.problems import (
    BODY_TOO_LARGE,
    INVALID_API_KEY,
    INVALID_REQUEST,
    JSON_REQUIRED,
    NOT_JSON,
    PROBLEM_BASE,
    PROBLEM_TYPES,
    RATE_LIMITED,
    SERVICE_BUSY,
    SERVICE_UNAVAILABLE,
    TOKEN_INVALID,
    TOKEN_REQUIRED,
    TYPES_KEY,
    VERIFICATION_UNAVAILABLE,
)
from api.ratelimit.http import PARTNER_KEY

PROBLEM_JSON = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {
            "type": "string",
            "format": "uri-reference",
            "description": f"What went wrong, to branch on: `{PROBLEM_BASE}<name>` (each status "
            "of each operation lists its own), or `about:blank` when the status says it all. "
            "`detail` is English, for the developer.",
        },
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object"},
            "description": "What was wrong with each field (`invalid-request`).",
        },
        "retry_after": {
            "type": "integer",
            "description": "Seconds to wait before trying again, as `Retry-After` (429, 503).",
        },
        "tries_left": {
            "type": "integer",
            "description": "Wrong codes this code request still allows (`wrong-code`).",
        },
        "max_bytes": {
            "type": "integer",
            "description": "The largest body accepted (`body-too-large`).",
        },
        "line": {"type": "integer", "description": "Where the JSON breaks (`not-json`)."},
        "column": {"type": "integer", "description": "Where the JSON breaks (`not-json`)."},
    },
    "additionalProperties": True,
}

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "string"},
    }
}

#: Why each status can come back from a webhook.
_REASONS = {
    400: "The request cannot be read as the gateway's form.",
    401: "No valid credentials (bearer token or X-API-Key).",
    403: "The request is not signed by the gateway.",
    404: "Not found.",
    413: "The body is larger than the service accepts.",
    415: "The body is not in the media type this operation reads.",
    422: "The request is not valid.",
    429: "Too many requests; Retry-After says when to come back.",
    503: "Briefly unavailable (overloaded, or a dependency is down); Retry-After says when.",
}


def _problem_response(
    status: int, description: str, *, also_text: bool = False, types: list[str] | None = None
) -> dict[str, Any]:
    schema: dict[str, Any] = _PROBLEM_REF
    if types:
        schema = {
            "allOf": [_PROBLEM_REF, {"properties": {"type": {"type": "string", "enum": types}}}]
        }
    content: dict[str, Any] = {PROBLEM_JSON: {"schema": schema}}
    if also_text:
        # The load-shedding gate answers webhooks in plain text (api/surge.py).
        content["text/plain"] = {"schema": {"type": "string"}}
    response: dict[str, Any] = {"description": description, "content": content}
    if status in (429, 503):
        response["headers"] = dict(_RETRY_AFTER)
    return response


def _form(properties: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": properties, "required": required}
            }
        },
    }


_TEXT = {"type": "string"}
_SHORT = {"type": "string", "maxLength": 64}

#: Webhooks: (path, body, success responses, error statuses).
_WEBHOOKS: dict[str, dict[str, Any]] = {
    "/webhooks/twilio/messaging": {
        "body": _form(
            {
                "MessageSid": _SHORT,
                "From": _SHORT,
                "To": _TEXT,
                "Body": {"type": "string", "description": "Read up to 1600 characters."},
                "AccountSid": _TEXT,
                "NumMedia": _TEXT,
                "WaId": _TEXT,
                "ProfileName": _TEXT,
            },
            ["MessageSid", "From"],
        ),
        "header": "X-Twilio-Signature",
        "ok": {
            "200": {
                "description": "TwiML: `<Response><Message>…</Message></Response>`.",
                "content": {"application/xml": {"schema": {"type": "string"}}},
            }
        },
        "errors": (400, 403, 413, 415, 503),
    },
    "/webhooks/twilio/status": {
        "body": _form(
            {
                "MessageSid": _SHORT,
                "MessageStatus": {"type": "string", "maxLength": 20},
                "SmsStatus": _TEXT,
                "ErrorCode": _TEXT,
                "To": _TEXT,
                "From": _TEXT,
                "AccountSid": _TEXT,
            },
            ["MessageSid", "MessageStatus"],
        ),
        "header": "X-Twilio-Signature",
        "ok": {"204": {"description": "Recorded (or about no message of ours)."}},
        "errors": (400, 403, 413, 415, 503),
    },
    "/webhooks/ussd": {
        "body": _form(
            {
                "sessionId": _SHORT,
                "serviceCode": _TEXT,
                "phoneNumber": _TEXT,
                "text": {"type": "string", "maxLength": 1000},
                "networkCode": _TEXT,
            },
            ["sessionId", "phoneNumber"],
        ),
        "header": None,
        "ok": {
            "200": {
                "description": "The next screen: `CON …` (the menu goes on) or `END …`.",
                "content": {"text/plain": {"schema": {"type": "string", "maxLength": 182}}},
            }
        },
        "errors": (400, 413, 415, 503),
    },
    "/webhooks/telegram": {
        "body": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "title": "Update",
                        "description": "A Telegram Bot API Update.",
                        "type": "object",
                        "required": ["update_id"],
                        "properties": {
                            "update_id": {"type": "integer"},
                            "message": {"type": "object"},
                            "callback_query": {"type": "object"},
                        },
                    }
                }
            },
        },
        "header": "X-Telegram-Bot-Api-Secret-Token",
        "ok": {"200": {"description": "Handled: the reply was sent or queued."}},
        "errors": (403, 404, 413, 415, 422, 503),
    },
}


#: The problems any `/v1` call can answer, after those its route declares itself
#: (BodySizeLimit reads every request, a GET's body included).
_V1_PROBLEMS = (INVALID_API_KEY, BODY_TOO_LARGE, RATE_LIMITED, SERVICE_BUSY, SERVICE_UNAVAILABLE)
#: What a call that takes a JSON body can answer besides.
_BODY_PROBLEMS = (NOT_JSON, JSON_REQUIRED, INVALID_REQUEST)
#: What a call that needs a bearer token can answer besides.
_BEARER_PROBLEMS = (TOKEN_REQUIRED, TOKEN_INVALID, VERIFICATION_UNAVAILABLE)
_BEARER_SCHEME = "HTTPBearer"
#: How FastAPI describes the 422 it adds to an operation with parameters or a body.
_FASTAPI_422 = "Validation Error"


def _v1_problems(method: str, operation: dict[str, Any]) -> dict[int, list[str]]:
    """Every error status the `/v1` operation can answer, with the problem type of each of its
    causes: those its route declares (`responses=documented(…)`) first, then those it shares
    with other calls."""
    types: list[str] = []
    for status, response in operation.get("responses", {}).items():
        if not status.startswith(("4", "5")):
            continue
        if status == "422" and response.get("description") == _FASTAPI_422:
            # FastAPI's own, added for any parameter or body: a body's cause is added below,
            # and a parameter that any string satisfies (a ticket id) never fails.
            if any(not _any_string(parameter) for parameter in operation.get("parameters", [])):
                types.append(INVALID_REQUEST)
            continue
        declared = response.get(TYPES_KEY)
        if not declared:
            raise ValueError(f"{status} of {method.upper()} is declared without its problem types")
        types.extend(declared)
    if any(_BEARER_SCHEME in requirement for requirement in operation.get("security", [])):
        types.extend(_BEARER_PROBLEMS)
    types.extend(_V1_PROBLEMS)
    if method in ("post", "put", "patch") or "requestBody" in operation:
        types.extend(_BODY_PROBLEMS)
    by_status: dict[int, list[str]] = {}
    for uri in dict.fromkeys(types):
        by_status.setdefault(PROBLEM_TYPES[uri].status, []).append(uri)
    return by_status


def _any_string(parameter: dict[str, Any]) -> bool:
    """True for a parameter any string is (no format, pattern, length or other type)."""
    schema = parameter.get("schema", {})
    return schema.get("type") == "string" and set(schema) <= {"type", "title", "description"}


def _describe(status: int, types: list[str]) -> str:
    """One description of all the causes of `status`, each with its problem type's name (a
    Markdown list when there are several)."""
    causes = [f"`{PROBLEM_TYPES[uri].name}`: {PROBLEM_TYPES[uri].cause}" for uri in types]
    text = causes[0] if len(causes) == 1 else "\n".join(f"- {cause}" for cause in causes)
    if status in (429, 503):
        text += ("\n\n" if len(causes) > 1 else " ") + "`Retry-After` says when to come back."
    return text


def _with_partner_key(operation: dict[str, Any]) -> None:
    """Every `/v1` call may carry the partner key (api/ratelimit/http.py), none needs it: each
    requirement the operation has (a bearer token, or nothing) is offered with the key too."""
    requirements = operation.get("security") or [{}]
    with_key = [{**requirement, PARTNER_KEY.scheme_name: []} for requirement in requirements]
    operation["security"] = with_key + requirements


#: `/readyz`'s body, whether ready (200) or not (503).
READINESS_SCHEMA: dict[str, Any] = {
    "title": "Readiness",
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "unavailable"]},
        "checks": {
            "type": "object",
            "description": "Each dependency: `ok`, `in-process` (Redis) or `unreachable`.",
            "additionalProperties": {"type": "string"},
        },
    },
}


def _readiness(operation: dict[str, Any]) -> None:
    content = {"application/json": {"schema": READINESS_SCHEMA}}
    operation["responses"]["200"] = {"description": "Ready.", "content": content}
    operation["responses"]["503"] = {
        "description": "Not ready: the database or Redis cannot be reached (`checks` says which).",
        "content": content,
    }


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the problem responses, the partner key, `/readyz`'s 503 and the webhook bodies
    in a FastAPI-made schema."""
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components.setdefault("securitySchemes", {})[PARTNER_KEY.scheme_name] = (
        PARTNER_KEY.model.model_dump(mode="json", by_alias=True, exclude_none=True)
    )
    if readyz := schema.get("paths", {}).get("/readyz", {}).get("get"):
        _readiness(readyz)
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            webhook = _WEBHOOKS.get(path) if method == "post" else None
            if webhook is not None:
                operation["requestBody"] = webhook["body"]
                if webhook["header"]:
                    operation.setdefault("parameters", []).append(
                        {
                            "name": webhook["header"],
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                        }
                    )
                for status in list(responses):
                    if status.startswith("2"):
                        del responses[status]
                responses.update(webhook["ok"])
                errors: tuple[int, ...] = webhook["errors"]
                for status in errors:
                    responses[str(status)] = _problem_response(
                        status, _REASONS[status], also_text=status == 503
                    )
            elif path.startswith("/v1/"):
                problems = _v1_problems(method, operation)
                _with_partner_key(operation)
                for status in [status for status in responses if status.startswith(("4", "5"))]:
                    del responses[status]
                for status, types in sorted(problems.items()):
                    responses[str(status)] = _problem_response(
                        status, _describe(status, types), types=types
                    )
    _drop_unused(schema, "HTTPValidationError", "ValidationError")
    return schema


def _drop_unused(schema: dict[str, Any], *names: str) -> None:
    """Remove FastAPI's validation-error schemas once no operation refers to them (every 422
    here is a problem document)."""
    paths = json.dumps(schema.get("paths", {}))
    if any(f'"#/components/schemas/{name}"' in paths for name in names):
        return
    for name in names:
        schema.get("components", {}).get("schemas", {}).pop(name, None)


def plain_operations(app: FastAPI) -> dict[str, dict[str, Any]]:
    """The webhooks served by plain Starlette routes (api/webhooks/twilio.py and ussd.py),
    which FastAPI does not document, described as it would describe them; `complete` adds
    the rest."""
    paths: dict[str, dict[str, Any]] = {}
    for route in app.routes:
        if isinstance(route, APIRoute) or not isinstance(route, Route):
            continue
        if route.path not in _WEBHOOKS:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            verb = method.lower()
            paths.setdefault(route.path, {})[verb] = {
                "tags": ["webhooks"],
                "summary": route.name.replace("_", " ").title(),
                "description": inspect.getdoc(route.endpoint) or "",
                "operationId": re.sub(r"\W", "_", f"{route.name}{route.path_format}_{verb}"),
                "responses": {},
            }
    return paths


def install(app: FastAPI) -> None:
    """Serve the completed document at `/openapi.json`."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema["paths"] = {**plain_operations(app), **schema.get("paths", {})}
            app.openapi_schema = complete(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
