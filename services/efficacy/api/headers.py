"""Response headers efficacy's creates send, declared once for the OpenAPI documents: `Location` of the created
resource, its `ETag`, and `Idempotent-Replayed` on an answer replayed for a repeated `Idempotency-Key`."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse

IDEMPOTENCY_KEY = Annotated[str | None, Header(
    alias="Idempotency-Key", max_length=200,
    description="Any unique string (a UUID): a retry with the same key and body returns the first answer.")]


def created_headers(what: str) -> dict[str, Any]:
    """The headers a 201 carries, for `responses={201: {"headers": ...}}`."""
    return {
        "Location": {"description": f"The created {what}.", "schema": {"type": "string"}},
        "ETag": {"description": f"The {what} as created (a strong validator of this representation).",
                 "schema": {"type": "string"}},
        "Idempotent-Replayed": {"description": "`true` when this is the first answer, replayed for a repeated "
                                               "`Idempotency-Key`.",
                                "schema": {"type": "string", "enum": ["true"]}},
    }


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def with_created_headers(response: JSONResponse, request: Request, id_field: str) -> JSONResponse:
    """Add `Location` (the collection's path and the new id) and `ETag` to a created (or replayed) answer."""
    if response.status_code == 201:
        body = bytes(response.body)
        response.headers["ETag"] = etag_of(body)
        created = json.loads(body).get(id_field)
        if created:
            response.headers["Location"] = f"{request.url.path.rstrip('/')}/{created}"
    return response
