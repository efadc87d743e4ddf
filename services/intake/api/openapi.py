"""OpenAPI declarations the routes share: response headers, and the `If-Match` precondition declared required
(its absence answers 428, so a client must send it; the route itself reads it to answer 428 rather than 422)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypeVar

from fastapi import Response
from fastapi.encoders import jsonable_encoder

from shared.http_errors import problem_responses

ETAG = {"ETag": {"description": "The application's version; send it back as `If-Match` to change it.",
                 "schema": {"type": "string"}}}
CREATED_ETAG = {"ETag": {"description": "The version of what was created (a hash of this representation): compare it "
                                        "with a later read's to see whether it changed.",
                         "schema": {"type": "string"}}}
LOCATION = {"Location": {"description": "Where the created resource is read.", "schema": {"type": "string"}}}
REPLAYED = {"Idempotent-Replayed": {
    "description": "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`.",
    "schema": {"type": "string", "enum": ["true"]}}}
#: A public read served with a validator (the status query): `no-cache` because the status moves on.
REVALIDATE = {
    "ETag": {"description": "A strong tag of this representation; send it as `If-None-Match` to get `304`.",
             "schema": {"type": "string"}},
    "Cache-Control": {"description": "`no-cache`: keep it, but ask again each time.", "schema": {"type": "string"}},
}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the `ETag` sent in `If-None-Match` is current (no body).",
          "headers": REVALIDATE}}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                               "schema": {"type": "integer", "minimum": 1}}}

#: Who may call a route whose caller is checked in `service` (the roles a token must hold, any of them; the use
#: case checks the rest: the clerk's service point, the reviewer's department, the agent's organisation).
CLERK: dict[str, Any] = {"x-yimen-roles": ["window_clerk"]}
CLERK_OR_ADMIN: dict[str, Any] = {"x-yimen-roles": ["window_clerk", "admin"]}
DEPARTMENT: dict[str, Any] = {"x-yimen-roles": ["department_reviewer", "department_system"]}
ORG_AGENT: dict[str, Any] = {"x-yimen-roles": ["org_agent"]}

IF_MATCH: dict[str, Any] = {"parameters": [{
    "name": "If-Match", "in": "header", "required": True,
    "description": "The `ETag` of your last read; without it 428, if the application changed since 412.",
    "schema": {"type": "string"}}]}


def responses(success: int, *problems: int, headers: dict[str, Any] | None = None,
              description: str | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the success code with the headers it sends, problem+json for the rest, and
    `Retry-After` on a 429 or 503."""
    out: dict[int | str, dict[str, Any]] = dict(problem_responses(*problems))
    ok: dict[str, Any] = {}
    if headers:
        ok["headers"] = headers
    if description:
        ok["description"] = description
    if ok:
        out[success] = ok
    for code in (429, 503):
        if code in out:
            out[code] = {**out[code], "headers": RETRY_AFTER}
    return out


T = TypeVar("T")


def etag_of_created(response: Response, body: T) -> T:
    """Set the `ETag` of a created resource that has no version counter of its own: a hash of its representation."""
    raw = json.dumps(jsonable_encoder(body), sort_keys=True, ensure_ascii=False, default=str)
    response.headers["ETag"] = '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'
    return body
