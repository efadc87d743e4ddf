"""People: registration (实名注册) and the window-assisted look-up by ID number."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.api.common import check_new_password, citizen_id, person_read
from services.identity.api.schemas import LookupRead, PersonCreate, PersonRead
from services.identity.domain.numbers import NumberInvalid, normalise_phone
from services.identity.domain.roles import LOOKUP_ROLES
from services.identity.events.contracts import PERSON_REGISTERED, PersonRegistered
from services.identity.runtime import RuntimeDep
from services.identity.store import people
from services.identity.store.tables import Person, PersonLookup
from shared.auth import WINDOW_CLERK, Principal, require_roles
from shared.db import SessionDep
from shared.errors import Conflict, NotFound, invalid, problem_response, problem_responses
from shared.idempotency import run_idempotent
from shared.messaging import publish
from shared.privacy import mask_id_number
from shared.types import utcnow

router = APIRouter(tags=["people"])


@router.post(
    "/people",
    status_code=201,
    response_model=PersonRead,
    summary="Register a person (实名注册)",
    description="Checks the citizen ID number by rule (GB 11643: length, province-level region, birth date, "
    "ISO 7064 MOD 11-2 check digit; rules `length`, `format`, `region`, `birth_date`, `check_digit`), derives "
    "birth date and sex, hashes the password with argon2id and publishes `yimen.identity.person.registered`. "
    "The response masks the ID and phone numbers. `Idempotency-Key` makes a retry safe.",
    responses=problem_responses(409, 422),
)
async def register_person(
    body: PersonCreate, request: Request, rt: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    now = utcnow()
    name = body.name.strip()
    if not name:
        raise invalid("body.name", "missing", "The name is empty.")
    cid = citizen_id("body.id_number", body.id_number, now.date())
    try:
        phone = normalise_phone(body.phone)
    except NumberInvalid as exc:
        raise invalid("body.phone", exc.rule, exc.message) from None
    check_new_password("body.password", body.password)

    async def work(session: AsyncSession) -> tuple[int, object]:
        if await people.person_by_id_number(session, cid.number) is not None:
            raise Conflict("A person with this ID number is already registered.", slug="person-exists")
        person = Person(
            id=uuid.uuid4().hex, id_number=cid.number, name=name, phone=phone, birth_date=cid.birth_date,
            sex=cid.sex, password_hash=rt.passwords.hash(body.password), registered_at=now, password_changed_at=now,
        )
        try:
            await people.add_unique(session, person)
        except people.Duplicate:
            raise Conflict("A person with this ID number is already registered.", slug="person-exists") from None
        await publish(session, PERSON_REGISTERED, subject=person.id, data=PersonRegistered(
            person_id=person.id, name=person.name, id_number_masked=mask_id_number(person.id_number) or "",
            registered_at=now,
        ))
        return 201, person_read(person, is_self=False).model_dump(mode="json")

    # The password stays out of the stored request fingerprint.
    payload = {"name": name, "id_number": cid.number, "phone": phone}
    return await run_idempotent(request, key=idempotency_key, scope="identity.people", payload=payload, work=work)


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
) -> LookupRead:
    now = utcnow()
    cid = citizen_id("query.id_number", id_number, now.date())
    person = await people.person_by_id_number(session, cid.number)
    assisted = principal.has(WINDOW_CLERK)
    await people.record_lookup(session, PersonLookup(
        staff_id=principal.subject, staff_roles=sorted(principal.roles), service_point=principal.service_point,
        person_id=person.id if person else None, reason=reason.strip(), assisted=assisted, found=person is not None,
        at=now,
    ))
    if person is None:
        # The audit row is kept even when nobody was found: returning keeps the transaction.
        return problem_response(NotFound("No registered person has this ID number."), request)  # type: ignore[return-value]
    return LookupRead(person=person_read(person, is_self=False, roles=principal.roles), assisted=assisted)
