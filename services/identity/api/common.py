"""Helpers the identity routes share: turning rule breaks into 422s and the reads of a person."""

from __future__ import annotations

from datetime import date

from services.identity.api.schemas import PersonRead
from services.identity.domain.assurance import note_for
from services.identity.domain.numbers import CitizenId, NumberInvalid, parse_citizen_id
from services.identity.domain.passwords import password_problem
from services.identity.domain.roles import shown_id_number, shown_phone
from services.identity.store.tables import Person
from shared.errors import invalid


def citizen_id(field: str, raw: str, today: date) -> CitizenId:
    try:
        return parse_citizen_id(raw, today=today)
    except NumberInvalid as exc:
        raise invalid(field, exc.rule, exc.message) from None


def check_new_password(field: str, password: str, *personal: str | None) -> None:
    """`personal`: what a guesser knows of the account (name, ID number, phone, login name)."""
    extra = [p[6:14] for p in personal if p and len(p) == 18 and p[:17].isdigit()]  # the birth date in an ID number
    if why := password_problem(password, [*personal, *extra]):
        raise invalid(field, "password_policy", why)


def person_read(person: Person, *, is_self: bool, roles: frozenset[str] = frozenset()) -> PersonRead:
    return PersonRead(
        id=person.id, name=person.name, id_number=shown_id_number(person.id_number, is_self=is_self),
        phone=shown_phone(person.phone, is_self=is_self, roles=roles), birth_date=person.birth_date,
        sex=person.sex,  # type: ignore[arg-type]
        registered_at=person.registered_at, assurance_level=person.assurance_level,
        assurance_note=note_for(person.assurance_level, person.assurance_basis),
    )
