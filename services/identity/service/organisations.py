"""Organisations (keyed by credit code), their agents (经办人) and delegations (委托代办)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain import assurance
from services.identity.domain.delegation import normalise_items
from services.identity.events.contracts import (
    DELEGATION_GRANTED,
    DELEGATION_REVOKED,
    ORGANISATION_REGISTERED,
    DelegationChanged,
    OrganisationRegistered,
    PrincipalRef,
)
from services.identity.service.common import (
    Context,
    acting_person,
    credit_code,
    non_empty_name,
    organisation_led_by,
    registered_person,
)
from services.identity.store import people
from services.identity.store.tables import Delegation, Organisation, OrganisationAgent, Person
from shared.errors import Conflict, FieldError, Forbidden, NotFound, invalid
from shared.messaging import publish
from shared.principal import Principal


@dataclass(frozen=True)
class OrganisationRegistration:
    """An organisation registration checked by rule, before the registry is asked."""

    credit_code: str
    name: str
    legal_representative_id_number: str


def organisation_registration(*, credit_code_raw: str, name: str,
                              legal_representative_id_number: str) -> OrganisationRegistration:
    return OrganisationRegistration(credit_code("body.credit_code", credit_code_raw), non_empty_name("body.name", name),
                                    legal_representative_id_number)


async def _representative(session: AsyncSession, reg: OrganisationRegistration, principal: Principal,
                          now: datetime) -> Person:
    """The caller, if they may register an organisation at all: a real-name person naming themself."""
    caller = await acting_person(session, principal)
    rep = await registered_person(session, "body.legal_representative_id_number", reg.legal_representative_id_number,
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


async def check_with_registry(ctx: Context, reg: OrganisationRegistration, principal: Principal, *,
                              now: datetime) -> None:
    """Who may register is settled before the registry is asked, in a read of its own; then the legal-person
    registry must hold the code under this name with the caller as legal representative. No HTTP call while
    the registration's transaction is open."""
    async with ctx.db.transaction() as session:
        caller = await _representative(session, reg, principal, now)
        if await people.organisation_by_credit_code(session, reg.credit_code) is not None:
            raise Conflict("An organisation with this credit code is already registered.", slug="organisation-exists")
    verdict = await ctx.registry.match_organisation(
        credit_code=reg.credit_code, name=reg.name, representative_id_number=caller.id_number)
    if verdict != "match":
        status, field, rule, message = assurance.ORGANISATION_REFUSALS.get(
            verdict, (422, "body.credit_code", "registry_mismatch", "法人库核验未通过。"))
        if status == 403:
            raise Forbidden(message, slug="not-legal-representative", errors=[
                FieldError(field=field, rule=rule, message=message)])
        raise invalid(field, rule, message)


async def register(session: AsyncSession, reg: OrganisationRegistration, principal: Principal, *,
                   now: datetime) -> Organisation:
    """法人注册 once the registry agreed: `organisation.registered` in the same transaction."""
    rep = await _representative(session, reg, principal, now)
    org = Organisation(id=uuid.uuid4().hex, credit_code=reg.credit_code, name=reg.name,
                       legal_representative_id=rep.id, registered_at=now)
    if await people.organisation_by_credit_code(session, reg.credit_code) is not None:
        raise Conflict("An organisation with this credit code is already registered.", slug="organisation-exists")
    try:
        await people.add_unique(session, org)
    except people.Duplicate:
        raise Conflict("An organisation with this credit code is already registered.",
                       slug="organisation-exists") from None
    await publish(session, ORGANISATION_REGISTERED, subject=org.id, data=OrganisationRegistered(
        organisation_id=org.id, name=org.name, credit_code=org.credit_code, legal_representative_id=rep.id))
    return org


# ---- agents -------------------------------------------------------------------------------------------------

async def appoint_agent(session: AsyncSession, principal: Principal, code: str, *, id_number: str,
                        now: datetime) -> tuple[Person, OrganisationAgent]:
    org = await organisation_led_by(session, code, await acting_person(session, principal))
    agent = await registered_person(session, "body.id_number", id_number, now)
    if agent.id == org.legal_representative_id:
        raise invalid("body.id_number", "self", "The legal representative acts for the organisation already.")
    return agent, await people.appoint_agent(session, org.id, agent.id, now)


async def agents(session: AsyncSession, principal: Principal, code: str) -> list[tuple[OrganisationAgent, Person]]:
    org = await organisation_led_by(session, code, await acting_person(session, principal))
    return await people.agents_of(session, org.id)


async def remove_agent(session: AsyncSession, principal: Principal, code: str, person_id: str, *,
                       now: datetime) -> None:
    org = await organisation_led_by(session, code, await acting_person(session, principal))
    row = await people.active_agent(session, org.id, person_id)
    if row is None:
        raise NotFound("This person is not an agent of the organisation.")
    row.revoked_at = now


# ---- delegations --------------------------------------------------------------------------------------------

def delegation_event(d: Delegation) -> DelegationChanged:
    return DelegationChanged(delegation_id=d.id, principal=PrincipalRef(kind=d.principal_kind, id=d.principal_id),
                             agent_id=d.agent_id, items=d.items, valid_until=d.valid_until)


async def grant_delegation(session: AsyncSession, principal: Principal, *, agent_id_number: str,
                           items: list[str] | None, valid_until: datetime, organisation: str | None,
                           now: datetime) -> Delegation:
    """委托代办: `delegation.granted` in the same transaction."""
    caller = await acting_person(session, principal)
    if valid_until.tzinfo is None:
        raise invalid("body.valid_until", "timezone", "Give the time with an offset, e.g. +08:00.")
    if valid_until <= now:
        raise invalid("body.valid_until", "future", "The delegation must end in the future.")
    agent = await registered_person(session, "body.agent_id_number", agent_id_number, now)
    if organisation:
        org = await organisation_led_by(session, organisation, caller)
        kind, principal_id = "organisation", org.credit_code
    else:
        kind, principal_id = "person", caller.id
    if agent.id == caller.id:
        raise invalid("body.agent_id_number", "self", "You cannot delegate to yourself.")
    normalised = normalise_items(items)
    if normalised is not None and not normalised:
        raise invalid("body.items", "empty", "List at least one item code, or null for all items.")
    d = Delegation(id=uuid.uuid4().hex, principal_kind=kind, principal_id=principal_id, granted_by=caller.id,
                   agent_id=agent.id, items=normalised, valid_until=valid_until, granted_at=now)
    await people.add_delegation(session, d)
    await publish(session, DELEGATION_GRANTED, subject=d.id, data=delegation_event(d))
    return d


async def delegations(session: AsyncSession, principal: Principal) -> list[Delegation]:
    """Granted (also for organisations the caller represents) or received."""
    caller = await acting_person(session, principal)
    led = [o.credit_code for o, cap in await people.organisations_of(session, caller.id) if cap == "legal_representative"]
    return await people.delegations_involving(session, caller.id, [caller.id, *led])


async def _leads(session: AsyncSession, d: Delegation, caller: Person) -> bool:
    if d.principal_kind != "organisation":
        return False
    org = await people.organisation_by_credit_code(session, d.principal_id)
    return org is not None and org.legal_representative_id == caller.id


async def delegation(session: AsyncSession, principal: Principal, delegation_id: str) -> Delegation:
    caller = await acting_person(session, principal)
    d = await people.delegation_by_id(session, delegation_id)
    if d is None:
        raise NotFound("No such delegation.")
    if caller.id not in (d.agent_id, d.granted_by, d.principal_id) and not await _leads(session, d, caller):
        raise NotFound("No such delegation.")  # not yours: indistinguishable from absent
    return d


async def revoke_delegation(session: AsyncSession, principal: Principal, delegation_id: str, *,
                            now: datetime) -> Delegation:
    """Idempotent: `delegation.revoked` the first time only."""
    caller = await acting_person(session, principal)
    d = await people.delegation_by_id(session, delegation_id)
    if d is None:
        raise NotFound("No such delegation.")
    may = d.granted_by == caller.id or (d.principal_kind == "person" and d.principal_id == caller.id)
    if not may and not await _leads(session, d, caller):
        raise Forbidden("Only the principal can revoke a delegation.")
    if await people.revoke_delegation(session, d.id, now):
        await publish(session, DELEGATION_REVOKED, subject=d.id, data=delegation_event(d))
    await session.refresh(d)
    return d
