"""Queries on people, organisations, agents, delegations and the look-up audit (flush, never commit)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.store.tables import (
    Delegation,
    InPersonVerification,
    Organisation,
    OrganisationAgent,
    Person,
    PersonLookup,
    WalkInRegistration,
)


class Duplicate(Exception):
    """A unique key is already taken."""


async def add_unique(session: AsyncSession, row: object) -> None:
    """Insert a row whose unique key may race with another request: a savepoint turns the clash into
    `Duplicate` without spoiling the surrounding transaction."""
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError as exc:
        raise Duplicate from exc


async def person_by_id_number(session: AsyncSession, id_number: str) -> Person | None:
    return (await session.execute(select(Person).where(Person.id_number == id_number))).scalar_one_or_none()


async def person_by_id(session: AsyncSession, person_id: str) -> Person | None:
    return await session.get(Person, person_id)


async def organisation_by_credit_code(session: AsyncSession, credit_code: str) -> Organisation | None:
    q = select(Organisation).where(Organisation.credit_code == credit_code)
    return (await session.execute(q)).scalar_one_or_none()


async def active_agent(session: AsyncSession, organisation_id: str, person_id: str) -> OrganisationAgent | None:
    q = select(OrganisationAgent).where(
        OrganisationAgent.organisation_id == organisation_id,
        OrganisationAgent.person_id == person_id,
        OrganisationAgent.revoked_at.is_(None),
    )
    return (await session.execute(q)).scalar_one_or_none()


async def appoint_agent(session: AsyncSession, organisation_id: str, person_id: str, now: datetime) -> OrganisationAgent:
    row = await session.get(OrganisationAgent, (organisation_id, person_id))
    if row is None:
        row = OrganisationAgent(organisation_id=organisation_id, person_id=person_id, appointed_at=now)
        session.add(row)
    else:
        row.appointed_at, row.revoked_at = now, None
    await session.flush()
    return row


async def agents_of(session: AsyncSession, organisation_id: str) -> list[tuple[OrganisationAgent, Person]]:
    q = (
        select(OrganisationAgent, Person)
        .join(Person, Person.id == OrganisationAgent.person_id)
        .where(OrganisationAgent.organisation_id == organisation_id, OrganisationAgent.revoked_at.is_(None))
        .order_by(OrganisationAgent.appointed_at)
    )
    return [(a, p) for a, p in (await session.execute(q)).all()]


async def organisations_of(session: AsyncSession, person_id: str) -> list[tuple[Organisation, str]]:
    """Organisations a person may act for, with the capacity: `legal_representative` or `agent`."""
    rep = select(Organisation).where(Organisation.legal_representative_id == person_id)
    out = [(o, "legal_representative") for o in (await session.execute(rep)).scalars()]
    agent = (
        select(Organisation)
        .join(OrganisationAgent, OrganisationAgent.organisation_id == Organisation.id)
        .where(OrganisationAgent.person_id == person_id, OrganisationAgent.revoked_at.is_(None))
    )
    out += [(o, "agent") for o in (await session.execute(agent)).scalars()]
    return out


async def delegation_by_id(session: AsyncSession, delegation_id: str) -> Delegation | None:
    return await session.get(Delegation, delegation_id)


async def delegations_involving(session: AsyncSession, person_id: str, principal_ids: list[str]) -> list[Delegation]:
    q = (
        select(Delegation)
        .where(or_(Delegation.agent_id == person_id, Delegation.principal_id.in_(principal_ids)))
        .order_by(Delegation.granted_at.desc(), Delegation.id)
    )
    return list((await session.execute(q)).scalars())


async def revoke_delegation(session: AsyncSession, delegation_id: str, now: datetime) -> bool:
    """True when this call revoked it (False when it already was)."""
    res = await session.execute(
        update(Delegation).where(Delegation.id == delegation_id, Delegation.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(res.rowcount)


async def record_lookup(session: AsyncSession, row: PersonLookup) -> None:
    session.add(row)
    await session.flush()


async def lookups_of(session: AsyncSession, person_id: str, limit: int = 100) -> list[PersonLookup]:
    q = select(PersonLookup).where(PersonLookup.person_id == person_id).order_by(PersonLookup.at.desc()).limit(limit)
    return list((await session.execute(q)).scalars())


async def add_in_person_verification(session: AsyncSession, row: InPersonVerification) -> None:
    session.add(row)
    await session.flush()


async def in_person_verifications_of(session: AsyncSession, person_id: str) -> list[InPersonVerification]:
    q = (select(InPersonVerification).where(InPersonVerification.person_id == person_id)
         .order_by(InPersonVerification.at.desc()))
    return list((await session.execute(q)).scalars())


async def walk_in_of(session: AsyncSession, person_id: str, *, for_update: bool = False) -> WalkInRegistration | None:
    stmt = select(WalkInRegistration).where(WalkInRegistration.person_id == person_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_walk_in(session: AsyncSession, row: WalkInRegistration) -> None:
    session.add(row)
    await session.flush()


async def add_delegation(session: AsyncSession, row: Delegation) -> None:
    session.add(row)
    await session.flush()
