"""People: registration with registry matching (实名注册, 实名核验), the window-assisted look-up by ID number, and
the window clerk's in-person ID-card check (level 3)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.api.common import (
    PUBLIC,
    ContextDep,
    created,
    model_etag,
    person_read,
    retry_after,
    with_etag,
)
from services.identity.api.schemas import (
    AssuranceLevel,
    IdDocument,
    InPersonVerificationCreate,
    InPersonVerificationRead,
    LookupRead,
    PersonCreate,
    PersonRead,
)
from services.identity.domain import assurance
from services.identity.domain.roles import LOOKUP_ROLES
from services.identity.runtime import RuntimeDep
from services.identity.service import people
from shared.auth import WINDOW_CLERK, Principal, require_roles
from shared.db import SessionDep
from shared.errors import NotFound
from shared.http_errors import problem_response, problem_responses
from shared.idempotency import run_idempotent
from shared.types import utcnow

router = APIRouter(tags=["people"])


@router.post(
    "/people",
    status_code=201,
    response_model=PersonRead,
    summary="Register a person (实名注册) with the population-registry check (实名核验)",
    description="""Checks the citizen ID number by rule (GB 11643: length, province-level region, birth date,
ISO 7064 MOD 11-2 check digit; rules `length`, `format`, `region`, `birth_date`, `check_digit`), then matches name
and number against the population registry through datashare (the check appears in the person's access log with
the purpose `实名核验 registration`):

* the registry holds the number under this name → `assurance_level` 2;
* under another name → 422 on `body.name` (rule `registry_mismatch`) and nothing is created;
* the registry does not hold the number → `assurance_level` 1 with `assurance_note` saying why and how to rise
  (level 1 may browse, consult and draft, but not submit nor have data fetched for it);
* the registry cannot be reached → 503 `registry-unavailable` with `Retry-After`; nothing is created.

The password is judged by a strength estimator (422 `password_policy`, see `POST /me/password`). Derives birth
date and sex, hashes the password with argon2id and publishes `yimen.identity.person.registered`. The response
masks the ID and phone numbers. `Idempotency-Key` makes a retry safe (a repeat answers the first answer with
`Idempotent-Replayed: true`). No token needed.""",
    responses={**problem_responses(409, 422), **retry_after(503),
               **created(PersonRead, "The person is registered.", idempotent=True)},
    openapi_extra=PUBLIC,
)
async def register_person(
    body: PersonCreate, request: Request, rt: RuntimeDep, ctx: ContextDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> JSONResponse:
    now = utcnow()
    reg = people.registration(name=body.name, id_number=body.id_number, phone=body.phone, password=body.password,
                              today=now.date())
    matched: list[assurance.Assurance] = []

    async def registry_check() -> None:
        matched.append(await people.match_registration(ctx, reg))

    async def work(session: AsyncSession) -> tuple[int, object]:
        person = await people.register(session, rt, reg, matched[0], now=now)
        return 201, person_read(person, is_self=False).model_dump(mode="json")

    return with_etag(await run_idempotent(request, key=idempotency_key, scope="identity.people",
                                          payload=reg.fingerprint, work=work, prepare=registry_check))


@router.get(
    "/people/lookup",
    response_model=LookupRead,
    summary="Look a person up by ID number at the window (窗口代办)",
    description="For window clerks (and supervisors): the person is present at the window. Every look-up is "
    "audited (who, whom, when, why) and the person can read the audit at `GET /me/lookups`. The ID number is "
    "always masked in the answer (the clerk holds the card); the phone is shown in full to window clerks only, "
    "to reach the person about the result.",
    responses=problem_responses(401, 403, 404, 422),
)
async def lookup_person(
    session: SessionDep,
    request: Request,
    id_number: Annotated[str, Query(max_length=64, description="The person's citizen ID number.")],
    reason: Annotated[str, Query(min_length=2, max_length=200, description="Why: e.g. an application id or "
                                 "`window visit`.")],
    principal: Principal = require_roles(*LOOKUP_ROLES),
) -> Any:
    person, assisted = await people.look_up(session, principal, id_number=id_number, reason=reason, now=utcnow())
    if person is None:
        # The audit row is kept even when nobody was found: returning keeps the transaction.
        return problem_response(NotFound("No registered person has this ID number."), request)
    return LookupRead(person=person_read(person, is_self=False, roles=principal.roles), assisted=assisted)


@router.post(
    "/people/{person_id}/in-person-verification",
    status_code=201,
    response_model=InPersonVerificationRead,
    summary="Record an in-person ID-card check at a window (现场核验): the person rises to level 3",
    description="For window clerks only (their service point is recorded). The clerk holds the person's ID card "
    "and types (or reads) its number, which must be the account's (`422 card_mismatch` otherwise). The account's "
    "`assurance_level` becomes 3 (never lowered), `yimen.identity.person.assurance_raised` is published, and the "
    "check is kept: who, where, which document, when. The person's tokens from now on carry `level: 3` (log in "
    "again or refresh). The name on the card must be the account's too (`422 card_mismatch`). When the person at "
    "the counter did not create the account or has lost its password, `new_password` (typed by them) replaces "
    "it and revokes every earlier token, so a self-registered account someone else opened with this number "
    "passes to its owner. Find the person id with `GET /people/lookup`.",
    responses={**problem_responses(401, 403, 404, 422), **created(InPersonVerificationRead, "The check is recorded.")},
)
async def record_in_person_verification(
    body: InPersonVerificationCreate, session: SessionDep, rt: RuntimeDep, response: Response,
    person_id: Annotated[str, Path(max_length=32, description="The person's account id.")],
    principal: Principal = require_roles(WINDOW_CLERK),
) -> InPersonVerificationRead:
    person, row = await people.record_in_person_check(
        session, rt, principal, person_id, id_number=body.id_number, name=body.name, document=body.document,
        note=body.note, new_password=body.new_password, now=utcnow())
    read = InPersonVerificationRead(person_id=person.id, assurance_level=AssuranceLevel(person.assurance_level),
                                    level_before=AssuranceLevel(row.level_before),
                                    password_replaced=body.new_password is not None, document=IdDocument(row.document), service_point=row.service_point, clerk_id=row.clerk_id,
                                    at=row.at)
    response.headers["ETag"] = model_etag(read)
    return read
