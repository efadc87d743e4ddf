"""People: registration with registry matching (实名注册, 实名核验), the window-assisted look-up by ID number, and
the window clerk's in-person ID-card check (level 3)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.api.common import check_new_password, citizen_id, person_read
from services.identity.api.schemas import (
    InPersonVerificationCreate,
    InPersonVerificationRead,
    LookupRead,
    PersonCreate,
    PersonRead,
)
from services.identity.domain import assurance
from services.identity.domain.numbers import NumberInvalid, normalise_phone
from services.identity.domain.roles import LOOKUP_ROLES
from services.identity.events.contracts import PERSON_REGISTERED, PersonRegistered
from services.identity.registry import RegistryClient
from services.identity.runtime import RuntimeDep
from services.identity.service import mark_walk_in_claimed, revoke_tokens, verify_in_person
from services.identity.store import people
from services.identity.store.tables import Person, PersonLookup
from shared.auth import WINDOW_CLERK, Principal, require_roles
from shared.db import SessionDep
from shared.errors import Conflict, Forbidden, NotFound, invalid
from shared.http_errors import problem_response, problem_responses
from shared.idempotency import run_idempotent
from shared.messaging import publish
from shared.privacy import mask_id_number
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
masks the ID and phone numbers. `Idempotency-Key` makes a retry safe.""",
    responses=problem_responses(409, 422, 503),
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
    check_new_password("body.password", body.password, name, cid.number, phone)
    matched: list[assurance.Assurance] = []

    async def registry_check() -> None:
        # Before any row is written and outside the transaction (no HTTP call while a row is locked); an already
        # registered number is refused first, so the registry is not asked in vain.
        async with request.app.state.db.transaction() as session:
            if await people.person_by_id_number(session, cid.number) is not None:
                raise Conflict("A person with this ID number is already registered (an account a window opened is "
                           "claimed at `POST /people/claims` with the code on the slip).", slug="person-exists")
        verdict = await RegistryClient.of(request).match_person(id_number=cid.number, name=name)
        try:
            matched.append(assurance.from_population_match(verdict))
        except assurance.NameMismatch:
            raise invalid("body.name", "registry_mismatch", "姓名与人口库中该身份证号码登记的姓名不一致，请按居民身份证填写。"
                          "The name does not match the population registry's record for this ID number.") from None

    async def work(session: AsyncSession) -> tuple[int, object]:
        level = matched[0]
        if await people.person_by_id_number(session, cid.number) is not None:
            raise Conflict("A person with this ID number is already registered.", slug="person-exists")
        person = Person(
            id=uuid.uuid4().hex, id_number=cid.number, name=name, phone=phone, birth_date=cid.birth_date,
            sex=cid.sex, password_hash=rt.passwords.hash(body.password), registered_at=now, password_changed_at=now,
            assurance_level=level.level, assurance_basis=level.basis, assured_at=now,
        )
        try:
            await people.add_unique(session, person)
        except people.Duplicate:
            raise Conflict("A person with this ID number is already registered.", slug="person-exists") from None
        await publish(session, PERSON_REGISTERED, subject=person.id, data=PersonRegistered(
            person_id=person.id, name=person.name, id_number_masked=mask_id_number(person.id_number) or "",
            registered_at=now, assurance_level=person.assurance_level,
        ))
        return 201, person_read(person, is_self=False).model_dump(mode="json")

    # The password stays out of the stored request fingerprint.
    payload = {"name": name, "id_number": cid.number, "phone": phone}
    return await run_idempotent(request, key=idempotency_key, scope="identity.people", payload=payload, work=work,
                                prepare=registry_check)


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
    responses=problem_responses(401, 403, 404, 422),
)
async def record_in_person_verification(
    body: InPersonVerificationCreate, session: SessionDep, rt: RuntimeDep,
    person_id: Annotated[str, Path(max_length=32, description="The person's account id.")],
    principal: Principal = require_roles(WINDOW_CLERK),
) -> InPersonVerificationRead:
    now = utcnow()
    if not principal.service_point:
        raise Forbidden("A window clerk's token names the service point where the card was checked.")
    person = await people.person_by_id(session, person_id)
    if person is None:
        raise NotFound("No registered person has this id.")
    if citizen_id("body.id_number", body.id_number, now.date()).number != person.id_number:
        raise invalid("body.id_number", "card_mismatch", "The number on the card is not this account's ID number.")
    if not assurance.same_name(body.name, person.name):
        raise invalid("body.name", "card_mismatch", "The name on the card is not this account's name.")
    if body.new_password is not None:
        check_new_password("body.new_password", body.new_password, person.name, person.id_number, person.phone)
        person.password_hash, person.password_changed_at = rt.passwords.hash(body.new_password), now
        await revoke_tokens(session, account_kind="person", account_id=person.id, now=now, reason="password_changed")
        await mark_walk_in_claimed(session, person.id, now)
    row = await verify_in_person(session, person, clerk=principal, document=body.document,
                                 note=(body.note or "").strip() or None, now=now)
    return InPersonVerificationRead(person_id=person.id, assurance_level=person.assurance_level,
                                    level_before=row.level_before, password_replaced=body.new_password is not None,
                                    document=row.document, service_point=row.service_point, clerk_id=row.clerk_id,
                                    at=row.at)
