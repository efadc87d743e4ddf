"""Organisations (keyed by credit code), their agents (经办人) and delegations (委托代办)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.api.common import citizen_id
from services.identity.api.schemas import (
    AgentAppoint,
    AgentRead,
    DelegationCreate,
    DelegationRead,
    OrganisationCreate,
    OrganisationRead,
    PrincipalOut,
)
from services.identity.domain import assurance
from services.identity.domain.delegation import normalise_items
from services.identity.domain.numbers import NumberInvalid, parse_credit_code
from services.identity.events.contracts import (
    DELEGATION_GRANTED,
    DELEGATION_REVOKED,
    ORGANISATION_REGISTERED,
    DelegationChanged,
    OrganisationRegistered,
    PrincipalRef,
)
from services.identity.registry import RegistryClient
from services.identity.store import people
from services.identity.store.tables import Delegation, Organisation, Person
from shared.auth import CurrentPrincipal, Principal
from shared.db import SessionDep
from shared.errors import Conflict, FieldError, Forbidden, NotFound, invalid
from shared.http_errors import problem_responses
from shared.idempotency import run_idempotent
from shared.messaging import publish
from shared.privacy import mask_id_number
from shared.types import utcnow

router = APIRouter(tags=["organisations and delegation"])


async def acting_person(session: AsyncSession, principal: Principal) -> Person:
    """The person behind a token who acts in their own name (not as someone's delegate)."""
    if principal.kind != "person":
        raise Forbidden("Only a person can do this.")
    if principal.acting_for is not None:
        raise Forbidden("A token used under a delegation cannot do this; log in in your own name.")
    person = await people.person_by_id(session, principal.subject)
    if person is None:
        raise Forbidden("The account behind this token no longer exists.")
    return person


def credit_code(field: str, raw: str) -> str:
    try:
        return parse_credit_code(raw)
    except NumberInvalid as exc:
        raise invalid(field, exc.rule, exc.message) from None


async def organisation_led_by(session: AsyncSession, code_raw: str, person: Person) -> Organisation:
    code = credit_code("path.credit_code", code_raw)
    org = await people.organisation_by_credit_code(session, code)
    if org is None:
        raise NotFound(f"No registered organisation {code}.")
    if org.legal_representative_id != person.id:
        raise Forbidden("Only the legal representative can do this.")
    return org


async def registered_person(session: AsyncSession, field: str, raw: str, now: datetime) -> Person:
    cid = citizen_id(field, raw, now.date())
    person = await people.person_by_id_number(session, cid.number)
    if person is None:
        raise invalid(field, "not_registered", "Nobody with this ID number has registered.")
    return person


def org_read(org: Organisation, capacity: str | None = None) -> OrganisationRead:
    return OrganisationRead(id=org.id, name=org.name, credit_code=org.credit_code,
                            legal_representative_id=org.legal_representative_id, registered_at=org.registered_at,
                            capacity=capacity)  # type: ignore[arg-type]


@router.post(
    "/organisations", status_code=201, response_model=OrganisationRead,
    summary="Register an organisation (法人注册), checked against the legal-person registry",
    description="""The caller registers in their own name (not under a delegation), with a real-name account
(`assurance_level` ≥ 2, else 403 `assurance-level-too-low`), and `legal_representative_id_number` must be the
caller's own ID number (403 otherwise). The credit code is checked by GB 32100 (rules `length`, `format`,
`check_digit`), then against the legal-person registry through datashare (logged for the organisation with the
purpose `实名核验 organisation registration`):

* the registry does not hold the credit code → 422 on `body.credit_code`, rule `not_in_registry`;
* it holds it under another name → 422 on `body.name`, rule `registry_mismatch`;
* it is deregistered or revoked → 422 on `body.credit_code`, rule `inactive`;
* it names someone else as legal representative → 403 `not-legal-representative`;
* the registry cannot be reached → 503 `registry-unavailable`.

Nothing is created unless all of it holds. Publishes `yimen.identity.organisation.registered`.""",
    responses=problem_responses(401, 403, 409, 422, 503),
)
async def register_organisation(
    body: OrganisationCreate, request: Request, principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    now = utcnow()
    code = credit_code("body.credit_code", body.credit_code)
    name = body.name.strip()
    if not name:
        raise invalid("body.name", "missing", "The name is empty.")

    async def registry_check() -> None:
        # Who may register is settled before the registry is asked, in a read of its own: no HTTP call while the
        # registration's transaction is open.
        async with request.app.state.db.transaction() as session:
            caller = await _representative(session, body, principal, now)
            if await people.organisation_by_credit_code(session, code) is not None:
                raise Conflict("An organisation with this credit code is already registered.",
                               slug="organisation-exists")
        verdict = await RegistryClient.of(request).match_organisation(
            credit_code=code, name=name, representative_id_number=caller.id_number)
        if verdict != "match":
            status, field, rule, message = assurance.ORGANISATION_REFUSALS.get(
                verdict, (422, "body.credit_code", "registry_mismatch", "法人库核验未通过。"))
            if status == 403:
                raise Forbidden(message, slug="not-legal-representative", errors=[
                    FieldError(field=field, rule=rule, message=message)])
            raise invalid(field, rule, message)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        return 201, (await _register_organisation(session, body, principal, code, name)).model_dump(mode="json")

    return await run_idempotent(request, key=idempotency_key, scope=f"identity.organisations:{principal.subject}",
                                payload=body.model_dump(mode="json"), work=work, prepare=registry_check)


async def _representative(session: AsyncSession, body: OrganisationCreate, principal: Principal,
                          now: datetime) -> Person:
    """The caller, if they may register an organisation at all: a real-name person naming themself."""
    caller = await acting_person(session, principal)
    rep = await registered_person(session, "body.legal_representative_id_number", body.legal_representative_id_number,
                                  now)
    if rep.id != caller.id:
        raise Forbidden("Only the legal representative can register the organisation, in their own name.",
                        slug="not-legal-representative")
    if caller.assurance_level < assurance.REAL_NAME:
        raise Forbidden("注册单位需要实名核验（二级及以上）的账户：你的身份证号码未在人口库中核验。请到政务服务窗口现场核验后再注册。"
                        "Registering an organisation needs an account matched against the population registry "
                        "(level 2) or verified at a window (level 3).", slug="assurance-level-too-low",
                        required_level=assurance.REAL_NAME, current_level=caller.assurance_level)
    return caller


async def _register_organisation(session: AsyncSession, body: OrganisationCreate, principal: Principal,
                                 code: str, name: str) -> OrganisationRead:
    now = utcnow()
    rep = await _representative(session, body, principal, now)
    org = Organisation(id=uuid.uuid4().hex, credit_code=code, name=name, legal_representative_id=rep.id,
                       registered_at=now)
    if await people.organisation_by_credit_code(session, code) is not None:
        raise Conflict("An organisation with this credit code is already registered.", slug="organisation-exists")
    try:
        await people.add_unique(session, org)
    except people.Duplicate:
        raise Conflict("An organisation with this credit code is already registered.",
                       slug="organisation-exists") from None
    await publish(session, ORGANISATION_REGISTERED, subject=org.id, data=OrganisationRegistered(
        organisation_id=org.id, name=org.name, credit_code=org.credit_code, legal_representative_id=rep.id))
    return org_read(org, "legal_representative")


@router.post(
    "/organisations/{credit_code}/agents", status_code=201, response_model=AgentRead,
    summary="Appoint an agent (经办人) of the organisation (legal representative only)",
    description="The agent then logs in with `organisation=<credit code>` and gets `roles=[org_agent]`, `org`.",
    responses=problem_responses(401, 403, 404, 422),
)
async def appoint_agent(credit_code: str, body: AgentAppoint, session: SessionDep,
                        principal: CurrentPrincipal) -> AgentRead:
    now = utcnow()
    org = await organisation_led_by(session, credit_code, await acting_person(session, principal))
    agent = await registered_person(session, "body.id_number", body.id_number, now)
    if agent.id == org.legal_representative_id:
        raise invalid("body.id_number", "self", "The legal representative acts for the organisation already.")
    row = await people.appoint_agent(session, org.id, agent.id, now)
    return AgentRead(person_id=agent.id, name=agent.name, id_number=mask_id_number(agent.id_number) or "",
                     appointed_at=row.appointed_at)


@router.get(
    "/organisations/{credit_code}/agents", response_model=list[AgentRead],
    summary="The organisation's agents (legal representative only)", responses=problem_responses(401, 403, 404, 422),
)
async def list_agents(credit_code: str, session: SessionDep, principal: CurrentPrincipal) -> list[AgentRead]:
    org = await organisation_led_by(session, credit_code, await acting_person(session, principal))
    return [AgentRead(person_id=p.id, name=p.name, id_number=mask_id_number(p.id_number) or "",
                      appointed_at=a.appointed_at) for a, p in await people.agents_of(session, org.id)]


@router.delete(
    "/organisations/{credit_code}/agents/{person_id}", status_code=204,
    summary="Withdraw an agent's appointment (legal representative only)", responses=problem_responses(401, 403, 404),
)
async def remove_agent(credit_code: str, person_id: str, session: SessionDep, principal: CurrentPrincipal) -> Response:
    org = await organisation_led_by(session, credit_code, await acting_person(session, principal))
    row = await people.active_agent(session, org.id, person_id)
    if row is None:
        raise NotFound("This person is not an agent of the organisation.")
    row.revoked_at = utcnow()
    return Response(status_code=204)


def delegation_read(d: Delegation) -> DelegationRead:
    return DelegationRead(id=d.id, principal=PrincipalOut(kind=d.principal_kind, id=d.principal_id),  # type: ignore[arg-type]
                          agent_id=d.agent_id, items=d.items, valid_until=d.valid_until, granted_at=d.granted_at,
                          revoked_at=d.revoked_at)


def delegation_event(d: Delegation) -> DelegationChanged:
    return DelegationChanged(delegation_id=d.id, principal=PrincipalRef(kind=d.principal_kind, id=d.principal_id),
                             agent_id=d.agent_id, items=d.items, valid_until=d.valid_until)


@router.post(
    "/delegations", status_code=201, response_model=DelegationRead, summary="Grant a delegation (委托代办)",
    description="A person grants another registered person the right to act for them (or, with `organisation`, "
    "the legal representative grants it for the organisation), for the listed items or all (`items: null`), "
    "until `valid_until`. The agent logs in with `delegation=<id>` and the token's `act` names the principal, "
    "so every act records both identities. Publishes `yimen.identity.delegation.granted`; the principal is "
    "`{kind: person, id: account id}` or `{kind: organisation, id: credit code}`.",
    responses=problem_responses(401, 403, 404, 422),
)
async def grant_delegation(
    body: DelegationCreate, request: Request, principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    async def work(session: AsyncSession) -> tuple[int, Any]:
        return 201, (await _grant_delegation(session, body, principal)).model_dump(mode="json")

    return await run_idempotent(request, key=idempotency_key, scope=f"identity.delegations:{principal.subject}",
                                payload=body.model_dump(mode="json"), work=work)


async def _grant_delegation(session: AsyncSession, body: DelegationCreate, principal: Principal) -> DelegationRead:
    now = utcnow()
    caller = await acting_person(session, principal)
    if body.valid_until.tzinfo is None:
        raise invalid("body.valid_until", "timezone", "Give the time with an offset, e.g. +08:00.")
    if body.valid_until <= now:
        raise invalid("body.valid_until", "future", "The delegation must end in the future.")
    agent = await registered_person(session, "body.agent_id_number", body.agent_id_number, now)
    if body.organisation:
        org = await organisation_led_by(session, body.organisation, caller)
        kind, principal_id = "organisation", org.credit_code
    else:
        kind, principal_id = "person", caller.id
    if agent.id == caller.id:
        raise invalid("body.agent_id_number", "self", "You cannot delegate to yourself.")
    items = normalise_items(body.items)
    if items is not None and not items:
        raise invalid("body.items", "empty", "List at least one item code, or null for all items.")
    d = Delegation(id=uuid.uuid4().hex, principal_kind=kind, principal_id=principal_id, granted_by=caller.id,
                   agent_id=agent.id, items=items, valid_until=body.valid_until, granted_at=now)
    session.add(d)
    await session.flush()
    await publish(session, DELEGATION_GRANTED, subject=d.id, data=delegation_event(d))
    return delegation_read(d)


@router.get("/delegations", response_model=list[DelegationRead],
            summary="Delegations I granted (also for organisations I represent) or received",
            responses=problem_responses(401, 403))
async def list_delegations(session: SessionDep, principal: CurrentPrincipal) -> list[DelegationRead]:
    caller = await acting_person(session, principal)
    led = [o.credit_code for o, cap in await people.organisations_of(session, caller.id) if cap == "legal_representative"]
    return [delegation_read(d) for d in await people.delegations_involving(session, caller.id, [caller.id, *led])]


@router.get("/delegations/{delegation_id}", response_model=DelegationRead,
            summary="One delegation (its principal or agent)", responses=problem_responses(401, 403, 404))
async def get_delegation(delegation_id: str, session: SessionDep, principal: CurrentPrincipal) -> DelegationRead:
    caller = await acting_person(session, principal)
    d = await people.delegation_by_id(session, delegation_id)
    if d is None:
        raise NotFound("No such delegation.")
    if caller.id not in (d.agent_id, d.granted_by, d.principal_id) and not await _leads(session, d, caller):
        raise NotFound("No such delegation.")  # not yours: indistinguishable from absent
    return delegation_read(d)


async def _leads(session: AsyncSession, d: Delegation, caller: Person) -> bool:
    if d.principal_kind != "organisation":
        return False
    org = await people.organisation_by_credit_code(session, d.principal_id)
    return org is not None and org.legal_representative_id == caller.id


async def _revoke(session: AsyncSession, delegation_id: str, principal: Principal) -> DelegationRead:
    caller = await acting_person(session, principal)
    d = await people.delegation_by_id(session, delegation_id)
    if d is None:
        raise NotFound("No such delegation.")
    may = d.granted_by == caller.id or (d.principal_kind == "person" and d.principal_id == caller.id)
    if not may and not await _leads(session, d, caller):
        raise Forbidden("Only the principal can revoke a delegation.")
    now = utcnow()
    if await people.revoke_delegation(session, d.id, now):
        await publish(session, DELEGATION_REVOKED, subject=d.id, data=delegation_event(d))
    await session.refresh(d)
    return delegation_read(d)


@router.post("/delegations/{delegation_id}/revocation", response_model=DelegationRead,
             summary="Revoke a delegation (idempotent)", responses=problem_responses(401, 403, 404))
async def revoke_delegation(delegation_id: str, session: SessionDep, principal: CurrentPrincipal) -> DelegationRead:
    return await _revoke(session, delegation_id, principal)


@router.delete("/delegations/{delegation_id}", response_model=DelegationRead,
               summary="Revoke a delegation (same as POST …/revocation)", responses=problem_responses(401, 403, 404))
async def delete_delegation(delegation_id: str, session: SessionDep, principal: CurrentPrincipal) -> DelegationRead:
    return await _revoke(session, delegation_id, principal)
