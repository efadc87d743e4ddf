"""People: registration matched against the population registry (实名注册, 实名核验), the window look-up, the
in-person ID-card check (level 3) and the re-check of a level-1 account, the walk-in a clerk registers at the
counter (窗口代录) with its later claim online, and the caller's own account.

State change and event commit together (outbox). Flows that ask the registry do it before their transaction
and outside any other (no HTTP call while a row is locked)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain import assurance, walkin
from services.identity.domain.passwords import NO_PASSWORD
from services.identity.domain.roles import LOOKUP_ROLES
from services.identity.events.contracts import (
    PERSON_ASSURANCE_RAISED,
    PERSON_REGISTERED,
    PersonAssuranceRaised,
    PersonRegistered,
)
from services.identity.runtime import IdentityRuntime
from services.identity.service.common import (
    Context,
    acting_person,
    check_new_password,
    citizen_id,
    non_empty_name,
    phone_number,
)
from services.identity.service.tokens import revoke_tokens
from services.identity.store import accounts, people
from services.identity.store.tables import (
    DepartmentClient,
    InPersonVerification,
    Organisation,
    Person,
    PersonLookup,
    Staff,
    WalkInRegistration,
)
from shared.errors import Conflict, Forbidden, NotFound, invalid
from shared.messaging import publish
from shared.principal import WINDOW_CLERK, Principal
from shared.privacy import mask_id_number


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


# ---- registration -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Registration:
    """A registration checked by rule, before the registry is asked."""

    name: str
    id_number: str
    birth_date: date
    sex: str
    phone: str
    password: str

    @property
    def fingerprint(self) -> dict[str, str]:
        """What identifies a retry (`Idempotency-Key`): the password stays out of it."""
        return {"name": self.name, "id_number": self.id_number, "phone": self.phone}


def registration(*, name: str, id_number: str, phone: str, password: str, today: date) -> Registration:
    """Name, number (GB 11643), phone and password policy, checked before anything is asked or written."""
    name = non_empty_name("body.name", name)
    cid = citizen_id("body.id_number", id_number, today)
    number = phone_number("body.phone", phone)
    check_new_password("body.password", password, name, cid.number, number)
    return Registration(name, cid.number, cid.birth_date, cid.sex, number, password)


async def match_registration(ctx: Context, reg: Registration) -> assurance.Assurance:
    """The population registry's verdict on a new registration: the level it earns, or 422 on `name`. An
    already registered number is refused first, so the registry is not asked in vain."""
    async with ctx.db.transaction() as session:
        if await people.person_by_id_number(session, reg.id_number) is not None:
            raise Conflict("A person with this ID number is already registered (an account a window opened is "
                           "claimed at `POST /people/claims` with the code on the slip).", slug="person-exists")
    verdict = await ctx.registry.match_person(id_number=reg.id_number, name=reg.name)
    try:
        return assurance.from_population_match(verdict)
    except assurance.NameMismatch:
        raise invalid("body.name", "registry_mismatch", "姓名与人口库中该身份证号码登记的姓名不一致，请按居民身份证填写。"
                      "The name does not match the population registry's record for this ID number.") from None


async def register(session: AsyncSession, rt: IdentityRuntime, reg: Registration, level: assurance.Assurance, *,
                   now: datetime) -> Person:
    """实名注册: the account at the level the registry gave, `person.registered` in the same transaction."""
    if await people.person_by_id_number(session, reg.id_number) is not None:
        raise Conflict("A person with this ID number is already registered.", slug="person-exists")
    person = Person(
        id=uuid.uuid4().hex, id_number=reg.id_number, name=reg.name, phone=reg.phone, birth_date=reg.birth_date,
        sex=reg.sex, password_hash=rt.passwords.hash(reg.password), registered_at=now, password_changed_at=now,
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
    return person


# ---- staff reading people -----------------------------------------------------------------------------------

async def look_up(session: AsyncSession, staff: Principal, *, id_number: str, reason: str,
                  now: datetime) -> tuple[Person | None, bool]:
    """A window look-up by ID number, audited whether or not someone was found (the caller commits the audit
    row before it answers 404). Returns the person and whether it counts as window-assisted."""
    if not staff.has(*LOOKUP_ROLES):
        raise Forbidden("Looking people up is for window clerks and supervisors.")
    cid = citizen_id("query.id_number", id_number, now.date())
    person = await people.person_by_id_number(session, cid.number)
    assisted = staff.has(WINDOW_CLERK)
    await people.record_lookup(session, PersonLookup(
        staff_id=staff.subject, staff_roles=sorted(staff.roles), service_point=staff.service_point,
        person_id=person.id if person else None, reason=reason.strip(), assisted=assisted, found=person is not None,
        at=now,
    ))
    return person, assisted


async def record_in_person_check(session: AsyncSession, rt: IdentityRuntime, clerk: Principal, person_id: str, *,
                                 id_number: str, name: str, document: str, note: str | None,
                                 new_password: str | None, now: datetime) -> tuple[Person, InPersonVerification]:
    """现场核验 at a window: the card must be the account's; level 3; a password typed at the counter replaces
    the old one (and every earlier token)."""
    if not clerk.service_point:
        raise Forbidden("A window clerk's token names the service point where the card was checked.")
    person = await people.person_by_id(session, person_id)
    if person is None:
        raise NotFound("No registered person has this id.")
    if citizen_id("body.id_number", id_number, now.date()).number != person.id_number:
        raise invalid("body.id_number", "card_mismatch", "The number on the card is not this account's ID number.")
    if not assurance.same_name(name, person.name):
        raise invalid("body.name", "card_mismatch", "The name on the card is not this account's name.")
    if new_password is not None:
        check_new_password("body.new_password", new_password, person.name, person.id_number, person.phone)
        person.password_hash, person.password_changed_at = rt.passwords.hash(new_password), now
        await revoke_tokens(session, account_kind="person", account_id=person.id, now=now, reason="password_changed")
        await mark_walk_in_claimed(session, person.id, now)
    row = await verify_in_person(session, person, clerk=clerk, document=document,
                                 note=(note or "").strip() or None, now=now)
    return person, row


# ---- walk-ins -----------------------------------------------------------------------------------------------

async def file_walk_in(ctx: Context, clerk: Principal, *, id_number: str, name: str, phone: str, document: str,
                       note: str | None, now: datetime) -> WalkIn:
    """窗口代录 from the card to the slip: a number without an account is matched against the registry first
    (outside any transaction), then `register_walk_in` runs in one."""
    if not clerk.service_point:
        raise Forbidden("A window clerk's token names the service point where the card was checked.")
    name = non_empty_name("body.name", name)
    cid = citizen_id("body.id_number", id_number, now.date())
    number = phone_number("body.phone", phone)
    async with ctx.db.transaction() as session:
        known = await people.person_by_id_number(session, cid.number) is not None
    verdict: str | None = None
    if not known:
        verdict = await ctx.registry.match_person(id_number=cid.number, name=name)
        if verdict == "name_mismatch":
            raise invalid("body.name", "registry_mismatch", "姓名与人口库中该身份证号码登记的姓名不一致，请核对身份证。"
                          "The name does not match the population registry's record for this ID number.")
    async with ctx.db.transaction() as session:
        return await register_walk_in(
            session, clerk=clerk, id_number=cid.number, birth_date=cid.birth_date, sex=cid.sex, name=name,
            phone=number, document=document, note=(note or "").strip() or None, registry_verdict=verdict, now=now)


async def claim(ctx: Context, *, id_number: str, name: str, code: str, password: str, now: datetime) -> Person:
    """The person claims online the account a clerk opened, with the code on the slip; one refusal for all."""
    cid = citizen_id("body.id_number", id_number, now.date())
    check_new_password("body.password", password, name, cid.number)
    # Hashed before the look-up: a refusal takes as long as a success.
    hashed = ctx.runtime.passwords.hash(password)
    async with ctx.db.transaction() as session:
        person = await claim_walk_in(session, id_number=cid.number, name=name.strip(), code=code,
                                     password_hash=hashed, now=now)
    # The wrong try is committed (it counts against the code) before the refusal.
    if person is None:
        raise invalid("body.claim_code", "claim_refused", walkin.REFUSED)
    return person


# ---- the caller's own account -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Me:
    principal: Principal
    person: Person | None = None
    organisations: list[tuple[Organisation, str]] | None = None
    staff: Staff | None = None
    client: DepartmentClient | None = None


async def me(session: AsyncSession, principal: Principal) -> Me:
    if principal.kind == "person":
        person = await people.person_by_id(session, principal.subject)
        if person is None:
            raise NotFound("The account behind this token no longer exists.")
        return Me(principal, person=person, organisations=await people.organisations_of(session, person.id))
    if principal.kind == "staff":
        staff = await accounts.staff_by_id(session, principal.subject)
        if staff is None:
            raise NotFound("The account behind this token no longer exists.")
        return Me(principal, staff=staff)
    client = await accounts.client_by_id(session, principal.subject)
    if client is None:
        raise NotFound("The account behind this token no longer exists.")
    return Me(principal, client=client)


async def my_lookups(session: AsyncSession, principal: Principal) -> list[PersonLookup]:
    person = await acting_person(session, principal)
    return await people.lookups_of(session, person.id)


async def recheck_registry(ctx: Context, principal: Principal, *, now: datetime) -> Person:
    """A level-1 account matched against the population registry again: `match` raises it to 2."""
    async with ctx.db.transaction() as session:
        person = await acting_person(session, principal)
    if person.assurance_level >= assurance.REGISTRY_MATCHED:
        return person
    # The registry is asked outside any transaction (no HTTP call while a row is locked).
    verdict = await ctx.registry.match_person(id_number=person.id_number, name=person.name)
    if verdict == "name_mismatch":
        raise Conflict("人口库中该身份证号码登记的姓名与本账户不一致，请携带居民身份证到政务服务窗口现场核验。The registry holds "
                       "this number under another name; an in-person check at a window settles it.",
                       slug="registry-name-mismatch")
    async with ctx.db.transaction() as session:
        person = await acting_person(session, principal)
        if verdict == "match":
            await raise_assurance(session, person, level=assurance.REGISTRY_MATCHED, basis="population_registry",
                                  now=now)
    return person
