"""What identity's use cases share: their dependencies (database, runtime, the registry client) and the checks
every flow starts with: who the caller is, and which numbers and passwords are acceptable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.numbers import (
    CitizenId,
    NumberInvalid,
    normalise_phone,
    parse_citizen_id,
    parse_credit_code,
)
from services.identity.domain.passwords import password_problem
from services.identity.runtime import IdentityRuntime
from services.identity.store import people
from services.identity.store.registry import RegistryClient
from services.identity.store.tables import Organisation, Person
from shared.db import Database
from shared.errors import Forbidden, NotFound, invalid
from shared.principal import Principal


@dataclass(frozen=True)
class Context:
    """What a use case needs beyond the request's own transaction: the database (flows that ask the registry
    commit in steps, never holding a row while they wait), the runtime, the registry client."""

    db: Database
    runtime: IdentityRuntime
    registry: RegistryClient


def context(state: Any) -> Context:
    """The context of the app whose `state` holds the database, the HTTP client, the settings and the runtime."""
    runtime: IdentityRuntime = state.identity
    registry = RegistryClient(state.http, state.settings.platform.service_urls.get("datashare", ""), state.db, runtime)
    return Context(db=state.db, runtime=runtime, registry=registry)


def citizen_id(field: str, raw: str, today: date) -> CitizenId:
    try:
        return parse_citizen_id(raw, today=today)
    except NumberInvalid as exc:
        raise invalid(field, exc.rule, exc.message) from None


def phone_number(field: str, raw: str) -> str:
    try:
        return normalise_phone(raw)
    except NumberInvalid as exc:
        raise invalid(field, exc.rule, exc.message) from None


def credit_code(field: str, raw: str) -> str:
    try:
        return parse_credit_code(raw)
    except NumberInvalid as exc:
        raise invalid(field, exc.rule, exc.message) from None


def check_new_password(field: str, password: str, *personal: str | None) -> None:
    """`personal`: what a guesser knows of the account (name, ID number, phone, login name)."""
    extra = [p[6:14] for p in personal if p and len(p) == 18 and p[:17].isdigit()]  # the birth date in an ID number
    if why := password_problem(password, [*personal, *extra]):
        raise invalid(field, "password_policy", why)


def non_empty_name(field: str, raw: str) -> str:
    name = raw.strip()
    if not name:
        raise invalid(field, "missing", "The name is empty.")
    return name


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
