"""Identity's use cases that more than one route runs: revoking an account's tokens everywhere, and raising a
person's assurance level (实名核验) after a registry re-check or an in-person ID-card check at a window.

They run inside the caller's transaction: state change and event commit together (outbox)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain import assurance
from services.identity.domain.tokens import revocation_instant
from services.identity.events.contracts import (
    PERSON_ASSURANCE_RAISED,
    TOKENS_REVOKED,
    PersonAssuranceRaised,
    TokensRevoked,
)
from services.identity.store import accounts, people
from services.identity.store.tables import InPersonVerification, Person
from shared.auth import Principal
from shared.messaging import publish


async def revoke_tokens(session: AsyncSession, *, account_kind: str, account_id: str, now: datetime,
                        reason: str) -> datetime:
    """End every login of the account: its refresh tokens at once, its access tokens wherever they are
    presented (the `tokens_revoked` event reaches every service's verifier within seconds). Returns the
    not-before: tokens issued from then on work."""
    previous = await accounts.revocation_of(session, account_kind, account_id)
    not_before = revocation_instant(now, previous.not_before if previous else None)
    await accounts.revoke_account(session, account_kind, account_id, now)
    await accounts.record_revocation(session, account_kind, account_id, not_before, reason)
    await publish(session, TOKENS_REVOKED, subject=account_id, data=TokensRevoked(
        account_id=account_id, account_kind=account_kind, not_before=not_before, reason=reason))
    return not_before


async def raise_assurance(session: AsyncSession, person: Person, *, level: int, basis: str, now: datetime,
                          service_point: str | None = None) -> bool:
    """Raise (never lower) a person's level; True when it changed, with the event in the same transaction."""
    new = assurance.raised(person.assurance_level, level)
    if new == person.assurance_level and person.assurance_basis == basis:
        return False
    changed = new != person.assurance_level
    person.assurance_level, person.assurance_basis, person.assured_at = new, basis, now
    await session.flush()
    if changed:
        await publish(session, PERSON_ASSURANCE_RAISED, subject=person.id, data=PersonAssuranceRaised(
            person_id=person.id, assurance_level=new, basis=basis, service_point=service_point, at=now))
    return changed


async def verify_in_person(session: AsyncSession, person: Person, *, clerk: Principal, document: str,
                           note: str | None, now: datetime) -> InPersonVerification:
    """A window clerk checked the person's ID card at the counter (现场核验): level 3, recorded with the clerk and
    the service point. A later walk-in registration by a clerk (`POST /walk-ins`) records the same row."""
    assert clerk.service_point, "window clerks always have a service point"
    row = InPersonVerification(
        person_id=person.id, clerk_id=clerk.subject, clerk_name=clerk.name, service_point=clerk.service_point,
        document=document, note=note, level_before=person.assurance_level, at=now,
    )
    await people.add_in_person_verification(session, row)
    await raise_assurance(session, person, level=assurance.IN_PERSON, basis="in_person", now=now,
                          service_point=clerk.service_point)
    return row
