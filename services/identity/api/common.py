"""What the identity routes share: the use cases' context, the reads of a person and an organisation, and the
OpenAPI declarations of public routes and response headers."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.identity import service
from services.identity.api.schemas import OrganisationRead, PersonRead
from services.identity.domain.assurance import note_for
from services.identity.domain.roles import shown_id_number, shown_phone
from shared.errors import ProblemDetail

#: Routes that need no token: OpenAPI `security: []`.
PUBLIC: dict[str, Any] = {"security": []}

ETAG_HEADER = {"ETag": {"description": "A strong tag of this representation.", "schema": {"type": "string"}}}
REPLAYED_HEADER = {"Idempotent-Replayed": {
    "description": "`true` when the answer is the stored one of an earlier request with the same "
    "`Idempotency-Key` (nothing was done again).", "schema": {"type": "string", "enum": ["true"]}}}
RETRY_AFTER_HEADER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                                      "schema": {"type": "integer"}}}
NO_STORE_HEADERS = {"Cache-Control": {"description": "`no-store`: the body holds a secret.", "schema": {"type": "string"}},
                    "Pragma": {"description": "`no-cache`.", "schema": {"type": "string"}}}


def created(model: type[BaseModel], description: str, *, idempotent: bool = False,
            secret: bool = False) -> dict[int | str, Any]:
    """The 201 of a create: its body, its `ETag`, (with `Idempotency-Key`) `Idempotent-Replayed` and (when it
    shows a secret) `Cache-Control: no-store`."""
    headers = {**ETAG_HEADER, **(REPLAYED_HEADER if idempotent else {}), **(NO_STORE_HEADERS if secret else {})}
    return {201: {"model": model, "description": description, "headers": headers}}


def retry_after(*codes: int) -> dict[int | str, Any]:
    """Problems that come with `Retry-After` (429, 503): put after `problem_responses(...)` in `responses=`."""
    return {c: {"model": ProblemDetail, "description": "Try again after `Retry-After` seconds.",
                "headers": RETRY_AFTER_HEADER} for c in codes}


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def with_etag(response: JSONResponse) -> JSONResponse:
    if 200 <= response.status_code < 300:
        response.headers["ETag"] = etag_of(bytes(response.body))
    return response


def model_etag(model: BaseModel) -> str:
    return etag_of(model.model_dump_json().encode())


def person_read(person: Any, *, is_self: bool, roles: frozenset[str] = frozenset()) -> PersonRead:
    return PersonRead(
        id=person.id, name=person.name, id_number=shown_id_number(person.id_number, is_self=is_self),
        phone=shown_phone(person.phone, is_self=is_self, roles=roles), birth_date=person.birth_date,
        sex=person.sex, registered_at=person.registered_at, assurance_level=person.assurance_level,
        assurance_note=note_for(person.assurance_level, person.assurance_basis),
    )


def org_read(org: Any, capacity: str | None = None) -> OrganisationRead:
    return OrganisationRead(id=org.id, name=org.name, credit_code=org.credit_code,
                            legal_representative_id=org.legal_representative_id, registered_at=org.registered_at,
                            capacity=capacity)  # type: ignore[arg-type]


def _context(request: Request) -> service.Context:
    return service.context(request.app.state)


ContextDep = Annotated[service.Context, Depends(_context)]
