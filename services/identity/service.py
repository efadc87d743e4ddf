"""Identity's use cases that more than one route runs: revoking an account's tokens everywhere, raising a
person's assurance level (实名核验) after a registry re-check or an in-person ID-card check at a window, and the
walk-in a clerk registers at the counter (窗口代录) with its later claim online.

They run inside the caller's transaction: state change and event commit together (outbox)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain import assurance, walkin
from services.identity.domain.passwords import NO_PASSWORD
from services.identity.domain.tokens import revocation_instant
from services.identity.events.contracts import (
    PERSON_ASSURANCE_RAISED,
    PERSON_REGISTERED,
    TOKENS_REVOKED,
    PersonAssuranceRaised,
    PersonRegistered,
    TokensRevoked,
)
from services.identity.store import accounts, people
from services.identity.store.tables import InPersonVerification, Person, PersonLookup, WalkInRegistration
from shared.auth import Principal
from shared.errors import Conflict, invalid
from shared.messaging import publish
from shared.privacy import mask_id_number


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


@dataclass(frozen=True)
class WalkIn:
    person: Person
    created: bool
    #: The one-time claim code to print on the slip: for a new account, and again for one still unclaimed.
    claim_code: str | None
    claim_expires_at: datetime | None
    registry_verdict: str | None


async def register_walk_in(session: AsyncSession, *, clerk: Principal, id_number: str, birth_date: date, sex: str,
                           name: str, phone: str, document: str, note: str | None, registry_verdict: str | None,
                           now: datetime) -> WalkIn:
    """窗口代录: a window clerk, ID card in hand, files for the person at the counter. Someone with an account is
    checked in person (level 3) and filed for; someone without one gets an account now — level 3, no password, a
    claim code for the slip — matched against the population registry like a registration (`registry_verdict`,
    asked by the caller before the transaction: `match` or `not_found`; a name the registry holds otherwise is
    refused before this runs). Audited: the in-person check (clerk, point, document) and a look-up row the person
    reads at `GET /me/lookups`."""
    assert clerk.service_point, "window clerks always have a service point"
    person = await people.person_by_id_number(session, id_number)
    created = person is None
    code: str | None = None
    expires_at: datetime | None = None
    if person is None:
        level = assurance.from_population_match(registry_verdict or "not_found")
        person = Person(
            id=uuid.uuid4().hex, id_number=id_number, name=name, phone=phone, birth_date=birth_date, sex=sex,
            password_hash=NO_PASSWORD, registered_at=now, password_changed_at=now, assurance_level=level.level,
            assurance_basis=level.basis, assured_at=now,
        )
        try:
            await people.add_unique(session, person)
        except people.Duplicate:
            raise Conflict("A person with this ID number was registered meanwhile; file again.",
                           slug="person-exists") from None
        code, expires_at = walkin.new_claim_code(), walkin.expires(now)
        await people.add_walk_in(session, WalkInRegistration(
            person_id=person.id, clerk_id=clerk.subject, clerk_name=clerk.name, service_point=clerk.service_point,
            registry_verdict=registry_verdict or "not_found", created_at=now, claim_code_hash=walkin.code_hash(code),
            claim_expires_at=expires_at, claim_failures=0))
        await publish(session, PERSON_REGISTERED, subject=person.id, data=PersonRegistered(
            person_id=person.id, name=person.name, id_number_masked=mask_id_number(person.id_number) or "",
            registered_at=now, assurance_level=person.assurance_level))
    else:
        if not assurance.same_name(name, person.name):
            raise invalid("body.name", "card_mismatch", "The name on the card is not the name of the account "
                          "registered with this ID number.")
        row = await people.walk_in_of(session, person.id, for_update=True)
        if row is not None and row.claimed_at is None and person.password_hash == NO_PASSWORD:
            # Still unclaimed: a new slip carries a new code (the old one may be lost); the old one is void.
            code, expires_at = walkin.new_claim_code(), walkin.expires(now)
            row.claim_code_hash, row.claim_expires_at, row.claim_failures = walkin.code_hash(code), expires_at, 0
            await session.flush()
    await verify_in_person(session, person, clerk=clerk, document=document, note=note, now=now)
    await people.record_lookup(session, PersonLookup(
        staff_id=clerk.subject, staff_roles=sorted(clerk.roles), service_point=clerk.service_point,
        person_id=person.id, reason="窗口代录 walk-in filing", assisted=True, found=True, at=now))
    return WalkIn(person, created, code, expires_at, registry_verdict if created else None)


async def claim_walk_in(session: AsyncSession, *, id_number: str, name: str, code: str, password_hash: str,
                        now: datetime) -> Person | None:
    """The person claims online the account a clerk opened for them, with the code on their slip; None when
    refused (a wrong code counts against it and may void it: the caller commits that and then refuses). Every
    refusal is the same, whether or not the number has an account."""
    person = await people.person_by_id_number(session, id_number)
    row = await people.walk_in_of(session, person.id, for_update=True) if person else None
    if person is None or row is None:
        return None
    state = walkin.ClaimState(row.claim_code_hash, row.claim_expires_at, row.claim_failures, row.claimed_at)
    if person.password_hash != NO_PASSWORD or not assurance.same_name(name, person.name) \
            or not walkin.code_opens(state, code, now):
        if row.claimed_at is None and row.claim_code_hash is not None:
            row.claim_failures += 1
            if walkin.void_after_failure(row.claim_failures):
                row.claim_code_hash = None
            await session.flush()
        return None
    person.password_hash, person.password_changed_at = password_hash, now
    row.claimed_at, row.claim_code_hash = now, None
    await session.flush()
    return person


async def mark_walk_in_claimed(session: AsyncSession, person_id: str, now: datetime) -> None:
    """The person typed a password at a window (in-person check): an account opened for them is theirs now."""
    row = await people.walk_in_of(session, person_id, for_update=True)
    if row is not None and row.claimed_at is None:
        row.claimed_at, row.claim_code_hash = now, None
        await session.flush()
