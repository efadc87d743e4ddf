"""Queries on the certificate directory, certificates and signing keys."""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, Text, bindparam, exists, func, literal_column, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.domain import certificates as rules
from services.datashare.domain.identifiers import new_serial_key, permuted_serial
from services.datashare.store import archive
from services.datashare.store.tables import ArchivedApplication, Certificate, CertificateType, SigningKey
from shared.db import affected, dialect_of
from shared.events import Event
from shared.messaging import emit, insert_ignore, outbox_row
from shared.types import UTCDateTime, utcnow


@dataclass(frozen=True)
class TypeInfo:
    """What a certificate type prints and signs: a type is never changed once added (only its serial counter
    moves), so it is kept in process after its first read."""

    code: str
    name: str
    issuer_department: str
    issuer_credit_code: str
    field_schema: dict[str, Any]
    validity_years: int | None


@dataclass(frozen=True)
class Key:
    kid: str
    private_key: str


#: Per database (two apps in one process, as in tests, have their own): types by code.
_types: weakref.WeakKeyDictionary[Engine, dict[str, TypeInfo]] = weakref.WeakKeyDictionary()
#: Signing keys by kid: a kid names one key pair for good (it is the public key's prefix).
_keys: dict[str, Key] = {}


def _engine(session: AsyncSession) -> Engine | None:
    return session.bind.sync_engine if session.bind is not None else None  # type: ignore[union-attr]


async def type_info(session: AsyncSession, code: str) -> TypeInfo | None:
    """The type, read from the database once per process (an unknown code is asked again each time)."""
    engine = _engine(session)
    cached = _types.get(engine, {}).get(code) if engine is not None else None
    if cached is not None:
        return cached
    row = (await session.execute(select(
        CertificateType.code, CertificateType.name, CertificateType.issuer_department,
        CertificateType.issuer_credit_code, CertificateType.field_schema, CertificateType.validity_years,
    ).where(CertificateType.code == code))).first()
    if row is None:
        return None
    info = TypeInfo(*row)
    if engine is not None:
        _types.setdefault(engine, {})[code] = info
    return info


async def count_types(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(CertificateType))).scalar_one()


async def list_types(session: AsyncSession) -> list[CertificateType]:
    return list((await session.execute(select(CertificateType).order_by(CertificateType.code))).scalars())


async def get_type(session: AsyncSession, code: str) -> CertificateType | None:
    return await session.get(CertificateType, code)


async def add_type(session: AsyncSession, **values: Any) -> CertificateType:
    row = CertificateType(**values, last_serial=0, serial_key=new_serial_key(), created_at=utcnow())
    session.add(row)
    await session.flush()
    return row


async def add_type_if_absent(session: AsyncSession, **values: Any) -> None:
    """For seeding: two replicas starting together must not fail on each other's rows."""
    await session.execute(
        insert_ignore(session, CertificateType.__table__).values(**values, last_serial=0, serial_key=new_serial_key(),
                                                                 created_at=utcnow())
    )


def _serial_taken() -> Any:
    """The UPDATE that takes a type's next serial (parameter `b_type`), returning the count, the type's
    permutation key and the newest signing key's kid; it locks the type's row until the transaction ends."""
    newest_kid = select(SigningKey.kid).order_by(SigningKey.created_at.desc()).limit(1).scalar_subquery()
    t = CertificateType.__table__
    return (update(t).where(t.c.code == bindparam("b_type", type_=t.c.code.type))
            .values(last_serial=t.c.last_serial + 1)
            .returning(t.c.last_serial, t.c.serial_key, newest_kid.label("kid")))


_SERIAL_TAKEN = _serial_taken()


async def _permuted(session: AsyncSession, type_code: str, count: int, key: str | None) -> int:
    if key is None:  # a type created between the migration and this code: give it its key now
        key = new_serial_key()
        await session.execute(update(CertificateType).where(CertificateType.code == type_code)
                              .values(serial_key=key))
    return permuted_serial(key, type_code, int(count))


async def next_serial(session: AsyncSession, type_code: str) -> tuple[int, str | None]:
    """Take the type's next serial, and the newest signing key's kid in the same statement; the UPDATE locks
    the type's row until the transaction ends. The printed serial is the count through the type's keyed
    permutation. A serial that a certificate numbered before the permutation already carries is found by the
    certificate's insert (`add_certificate`), which then asks for the next one."""
    count, key, kid = (await session.execute(_SERIAL_TAKEN, {"b_type": type_code})).one()
    return await _permuted(session, type_code, count, key), kid


@dataclass(frozen=True)
class SerialForDecision:
    """A serial taken for a decision's certificate (`count`: the type's counter it took), with what the archive
    holds of the application: when it was accepted (None: not yet archived) and its form."""

    count: int
    serial: int
    kid: str | None
    accepted_at: datetime | None
    form: dict[str, Any]


@functools.cache
def _serial_and_archive() -> Any:
    """PostgreSQL: the serial's UPDATE as a data-modifying CTE, the application's archive row beside it."""
    taken = _SERIAL_TAKEN.cte("taken")
    a = ArchivedApplication.__table__
    return (select(taken.c.last_serial, taken.c.serial_key, taken.c.kid, a.c.accepted_at, a.c.form)
            .select_from(taken.outerjoin(a, a.c.application_id == bindparam("b_application_id",
                                                                            type_=a.c.application_id.type))))


async def serial_for_decision(session: AsyncSession, type_code: str, application_id: str) -> SerialForDecision:
    """Take the type's next serial and read the accepted application in one statement (PostgreSQL; two on
    SQLite). The type must exist (`type_info`). Taken before the certificate is known to be issued: a caller
    that then issues none gives it back (`give_back_serial`), in the same transaction."""
    a = ArchivedApplication.__table__
    if dialect_of(session) == "postgresql":
        count, key, kid, accepted_at, form = (await session.execute(
            _serial_and_archive(), {"b_type": type_code, "b_application_id": application_id})).one()
    else:
        count, key, kid = (await session.execute(_SERIAL_TAKEN, {"b_type": type_code})).one()
        row = (await session.execute(select(a.c.accepted_at, a.c.form)
                                     .where(a.c.application_id == application_id))).first()
        accepted_at, form = row if row is not None else (None, None)
    return SerialForDecision(count=int(count), serial=await _permuted(session, type_code, count, key), kid=kid,
                             accepted_at=accepted_at, form=form or {})


async def give_back_serial(session: AsyncSession, type_code: str, count: int) -> None:
    """Return the serial `serial_for_decision` took, unused: the type's row is still locked by this transaction
    (PostgreSQL; SQLite has one writer), so nobody took one after it and the count stays without gaps."""
    t = CertificateType.__table__
    await session.execute(update(t).where(t.c.code == type_code, t.c.last_serial == count)
                          .values(last_serial=t.c.last_serial - 1))


_CERTIFICATE_VALUES = tuple(c.name for c in Certificate.__table__.c if c.name not in ("revoked_at", "revocation_reason"))
_OUTBOX_VALUES = ("event_id", "type", "payload", "created_at")


@functools.cache
def _issue_with_decision(outbox: Any) -> Any:
    """PostgreSQL: the certificate's insert, the decision's archive write with the certificate's number (the row's
    own when nothing was inserted), and the `certificate.issued` event only when it was, in one statement."""
    c = Certificate.__table__
    issued = (postgresql.insert(c).values({k: bindparam(f"c_{k}", type_=c.c[k].type) for k in _CERTIFICATE_VALUES})
              .on_conflict_do_nothing().returning(c.c.number).cte("issued"))
    archived = archive.decision_upsert("postgresql", select(issued.c.number).scalar_subquery()).cte("archived")
    # The event is written by this statement rather than with the transaction's pending ones at its commit (one
    # statement fewer); the events of the certificates a batch issues need no order among themselves.
    announced = postgresql.insert(outbox).from_select(
        list(_OUTBOX_VALUES),
        select(bindparam("e_event_id", type_=outbox.c.event_id.type), bindparam("e_type", type_=outbox.c.type.type),
               bindparam("e_payload", type_=Text), bindparam("e_created_at", type_=UTCDateTime()))
        .where(exists(select(literal_column("1")).select_from(issued))),
    ).cte("announced")
    return select(issued.c.number).add_cte(archived, announced)


async def issue_with_decision(session: AsyncSession, certificate: dict[str, Any], decision: dict[str, Any],
                              event: Event) -> bool:
    """Insert the certificate (`certificate`: its values), archive the decision (`archive.decision_params`)
    with the certificate's number, and emit `event` (`certificate.issued`), one statement on PostgreSQL; False
    when a unique key of the certificate was taken (as `add_certificate`): then the decision is archived all
    the same, with the number its row had, and no event is written."""
    values = dict(certificate, status="valid", created_at=utcnow())
    if dialect_of(session) == "postgresql":
        row = outbox_row(session, event)
        res = await session.execute(_issue_with_decision(session.info["messaging"].outbox), {
            **{f"c_{k}": values.get(k) for k in _CERTIFICATE_VALUES}, **decision,
            **{f"e_{k}": row[k] for k in _OUTBOX_VALUES}})
        return res.first() is not None
    inserted = affected(await session.execute(insert_ignore(session, Certificate.__table__).values(**values))) == 1
    await archive.record_decision(session, {**decision, "a_certificate_number": values["number"] if inserted
                                            else None})
    if inserted:
        await emit(session, event)
    return inserted


async def key_for_signing(session: AsyncSession, kid: str | None) -> Key:
    """The key `kid` names (the newest, as `next_serial` found it), from memory after its first use."""
    if kid is not None and (cached := _keys.get(kid)) is not None:
        return cached
    row = await session.get(SigningKey, kid) if kid is not None else None
    if row is None:
        row = await signing_key(session)
    key = Key(kid=row.kid, private_key=row.private_key)
    _keys[key.kid] = key
    return key


async def signing_key(session: AsyncSession) -> SigningKey:
    """The newest key, created on first use."""
    key = (await session.execute(select(SigningKey).order_by(SigningKey.created_at.desc()).limit(1))).scalar()
    if key is None:
        private, public = rules.new_signing_key()
        key = SigningKey(kid=public[:16], private_key=private, public_key=public, created_at=utcnow())
        session.add(key)
        await session.flush()
    return key


async def verification_keys(session: AsyncSession) -> list[SigningKey]:
    return list((await session.execute(select(SigningKey).order_by(SigningKey.created_at))).scalars())


async def add_certificate(session: AsyncSession, **values: Any) -> Certificate | None:
    """One INSERT, nothing read back; None when a unique key is taken (the number: a serial given before the
    permutation; or the application has its certificate of this type already) and nothing was written. The
    returned certificate is not in the session."""
    values = dict(values, status="valid", created_at=utcnow())
    res = await session.execute(insert_ignore(session, Certificate.__table__).values(**values))
    return Certificate(**values) if affected(res) == 1 else None


async def get_certificate(session: AsyncSession, number: str) -> Certificate | None:
    return await session.get(Certificate, number)


async def mark_revoked(session: AsyncSession, number: str, reason: str, at: datetime) -> bool:
    """Revoke a valid certificate; False when it was revoked already. One conditional UPDATE, so of two
    concurrent revocations exactly one wins (and only it emits the event)."""
    res = await session.execute(
        update(Certificate.__table__)
        .where(Certificate.__table__.c.number == number, Certificate.__table__.c.status == "valid")
        .values(status="revoked", revoked_at=at, revocation_reason=reason)
    )
    return res.rowcount == 1


async def certificate_for_application(session: AsyncSession, application_id: str, type_code: str) -> Certificate | None:
    q = select(Certificate).where(Certificate.application_id == application_id, Certificate.type_code == type_code)
    return (await session.execute(q)).scalar()


async def current_certificate(session: AsyncSession, holder_id: str, type_code: str, today: date) -> Certificate | None:
    """The holder's newest certificate of a type that is neither revoked nor expired."""
    q = (
        select(Certificate)
        .where(Certificate.holder_id == holder_id, Certificate.type_code == type_code, Certificate.status == "valid")
        .where((Certificate.valid_until.is_(None)) | (Certificate.valid_until >= today))
        .order_by(Certificate.issued_on.desc(), Certificate.serial.desc())
        .limit(1)
    )
    return (await session.execute(q)).scalar()


async def holder_certificates(session: AsyncSession, holder_id: str, type_code: str) -> list[Certificate]:
    q = (
        select(Certificate)
        .where(Certificate.holder_id == holder_id, Certificate.type_code == type_code)
        .order_by(Certificate.issued_on.desc(), Certificate.serial.desc())
    )
    return list((await session.execute(q)).scalars())


def holder_certificates_query(holder_ids: set[str]):  # type: ignore[no-untyped-def]
    return select(Certificate).where(Certificate.holder_id.in_(holder_ids))


async def known_holder_name(session: AsyncSession, holder_id: str) -> str | None:
    """The name a holder's latest earlier certificate was issued under (e.g. the business licence's)."""
    return (await session.execute(
        select(Certificate.holder_name).where(Certificate.holder_id == holder_id, Certificate.holder_name.is_not(None))
        .order_by(Certificate.issued_on.desc()).limit(1)
    )).scalar()
