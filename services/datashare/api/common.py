"""What the datashare routes share: the request's context for the use cases, how a returned refusal is rendered,
and the response headers the OpenAPI declares."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.datashare import service
from shared.errors import ProblemDetail
from shared.http_errors import problem_response

#: Routes that need no token: OpenAPI `security: []` (FastAPI adds nothing for them, the empty list says so).
PUBLIC: dict[str, Any] = {"security": []}
#: Routes open to anyone that also accept a token (`{}` in the list: anonymous is allowed).
TOKEN_OPTIONAL: dict[str, Any] = {"security": [{}]}

ETAG_HEADER = {"ETag": {"description": "A strong tag of this representation.", "schema": {"type": "string"}}}
REPLAYED_HEADER = {"Idempotent-Replayed": {
    "description": "`true` when the answer is the stored one of an earlier request with the same "
    "`Idempotency-Key` (nothing was done again).", "schema": {"type": "string", "enum": ["true"]}}}
RETRY_AFTER_HEADER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                                      "schema": {"type": "integer"}}}


def created(model: type[BaseModel], description: str, *, idempotent: bool = False) -> dict[int | str, Any]:
    """The 201 of a create: its body, its `ETag` and (with `Idempotency-Key`) `Idempotent-Replayed`."""
    headers = {**ETAG_HEADER, **(REPLAYED_HEADER if idempotent else {})}
    return {201: {"model": model, "description": description, "headers": headers}}


def too_many() -> dict[int | str, Any]:
    """429 with its `Retry-After` (put after `problem_responses(...)` in a `responses=` dict)."""
    return {429: {"model": ProblemDetail, "description": "Too many requests: wait `Retry-After` seconds.",
                  "headers": RETRY_AFTER_HEADER}}


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def with_etag(response: JSONResponse) -> JSONResponse:
    response.headers["ETag"] = etag_of(bytes(response.body))
    return response


def render(result: Any) -> Any:
    """A use case that records a refusal returns it rather than raising (raising would roll the record back)."""
    if isinstance(result, service.Problem):
        return problem_response(result)
    return result


def _context(request: Request) -> service.Context:
    return service.context(request.app.state, authorization=request.headers.get("Authorization", ""),
                           client_address=request.client.host if request.client else None)


ContextDep = Annotated[service.Context, Depends(_context)]
