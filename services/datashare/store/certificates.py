"""Queries on the certificate directory, certificates and signing keys."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.domain import certificates as rules
from services.datashare.domain.identifiers import new_serial_key, permuted_serial
from services.datashare.store.tables import Certificate, CertificateType, SigningKey
from shared.messaging import insert_ignore
from shared.types import utcnow


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


async def next_serial(session: AsyncSession, type_code: str) -> int:
    """Take the type's next serial; the UPDATE locks the type's row until the transaction ends. The printed
    serial is the count through the type's keyed permutation; a serial that a certificate numbered before the
    permutation already carries is skipped."""
    while True:
        res = await session.execute(
            update(CertificateType)
            .where(CertificateType.code == type_code)
            .values(last_serial=CertificateType.last_serial + 1)
            .returning(CertificateType.last_serial, CertificateType.serial_key)
        )
        count, key = res.one()
        if key is None:  # a type created between the migration and this code: give it its key now
            key = new_serial_key()
            await session.execute(update(CertificateType).where(CertificateType.code == type_code)
                                  .values(serial_key=key))
        serial = permuted_serial(key, type_code, int(count))
        taken = await session.execute(
            select(Certificate.number).where(Certificate.type_code == type_code, Certificate.serial == serial))
        if taken.first() is None:
            return serial


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


async def add_certificate(session: AsyncSession, **values: Any) -> Certificate:
    row = Certificate(**values, status="valid", created_at=utcnow())
    session.add(row)
    await session.flush()
    return row


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
