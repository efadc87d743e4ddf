"""OpenAPI declarations the routes share: response headers, and the `If-Match` precondition declared required
(its absence answers 428, so a client must send it; the route itself reads it to answer 428 rather than 422)."""

from __future__ import annotations

from typing import Any

from shared.http_errors import problem_responses

ETAG = {"ETag": {"description": "The application's version; send it back as `If-Match` to change it.",
                 "schema": {"type": "string"}}}
LOCATION = {"Location": {"description": "Where the created resource is read.", "schema": {"type": "string"}}}
REPLAYED = {"Idempotent-Replayed": {
    "description": "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`.",
    "schema": {"type": "string", "enum": ["true"]}}}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                               "schema": {"type": "integer", "minimum": 1}}}

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
