"""Use cases that more than one entry point runs (routes and event handlers): they combine the domain's
rules with the store's queries inside the caller's transaction."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.domain import certificates as rules
from services.datashare.domain.access_log import ChainReport, ChainWalker
from services.datashare.domain.identifiers import certificate_identifier, certificate_number
from services.datashare.events.contracts import (
    CERTIFICATE_ISSUED,
    CERTIFICATE_TYPE_UPSERTED,
    CertificateIssued,
    CertificateTypeUpserted,
)
from services.datashare.store import access_log
from services.datashare.store import certificates as store
from services.datashare.store.tables import Certificate, CertificateType
from shared.auth import Principal
from shared.messaging import publish

CITY_TZ = ZoneInfo("Asia/Shanghai")


def today() -> date:
    return datetime.now(CITY_TZ).date()


SIGNED_FIELDS = (
    "number", "identifier", "type_code", "holder_id", "holder_kind", "holder_name", "issuer_department",
    "issuer_credit_code", "fields", "issued_on", "valid_until", "application_id",
)


def signed_content(values: dict[str, Any], type_name: str) -> dict[str, Any]:
    """What the signature covers: everything printed on the certificate, nothing that changes later."""
    out = {k: values[k] for k in SIGNED_FIELDS}
    out["type_name"] = type_name
    for k in ("issued_on", "valid_until"):
        out[k] = out[k].isoformat() if isinstance(out[k], date) else out[k]
    return out


def certificate_values(cert: Certificate) -> dict[str, Any]:
    return {k: getattr(cert, k) for k in SIGNED_FIELDS}


async def seed_reference_data(session: AsyncSession) -> None:
    """The access log's head, a signing key, and the demo certificate directory when it is empty."""
    await access_log.ensure_head(session)
    await store.signing_key(session)
    if await store.count_types(session):
        return
    for t in rules.SEED_TYPES:
        await store.add_type_if_absent(
            session, code=t.code, name=t.name, issuer_department=t.department,
            issuer_credit_code=rules.DEPARTMENT_CREDIT_CODES[t.department], field_schema=t.field_schema,
            validity_years=t.validity_years,
        )
        await announce_type(session, code=t.code, name=t.name, issuer_department=t.department,
                            field_schema=t.field_schema)


async def announce_type(session: AsyncSession, *, code: str, name: str, issuer_department: str,
                        field_schema: dict[str, Any]) -> None:
    """Tell catalog which fields a type defines and requires (it refuses items that would issue it empty)."""
    await publish(session, CERTIFICATE_TYPE_UPSERTED, subject=code, data=CertificateTypeUpserted(
        code=code, name=name, issuer_department=issuer_department,
        fields=sorted((field_schema.get("properties") or {}).keys()), required=list(field_schema.get("required") or [])))


async def issue_certificate(
    session: AsyncSession,
    cert_type: CertificateType,
    *,
    holder_id: str,
    holder_kind: str,
    holder_name: str | None,
    fields: dict[str, Any],
    application_id: str | None,
    issued_by: str,
    issued_on: date | None = None,
) -> Certificate:
    """Number, identifier, validity and signature; the `certificate.issued` event in the same transaction."""
    issued_on = issued_on or today()
    serial = await store.next_serial(session, cert_type.code)
    key = await store.signing_key(session)
    values: dict[str, Any] = dict(
        number=certificate_number(cert_type.code, serial),
        identifier=certificate_identifier(cert_type.code, cert_type.issuer_credit_code, serial),
        type_code=cert_type.code, serial=serial, holder_id=holder_id, holder_kind=holder_kind,
        holder_name=holder_name, issuer_department=cert_type.issuer_department,
        issuer_credit_code=cert_type.issuer_credit_code, fields=fields, issued_on=issued_on,
        valid_until=rules.valid_until(issued_on, cert_type.validity_years), application_id=application_id,
        key_id=key.kid, issued_by=issued_by,
    )
    values["signature"] = rules.sign(key.private_key, signed_content(values, cert_type.name))
    cert = await store.add_certificate(session, **values)
    await publish(
        session, CERTIFICATE_ISSUED, subject=cert.number,
        data=CertificateIssued(
            certificate_number=cert.number, type_code=cert.type_code, type_name=cert_type.name,
            holder_id=cert.holder_id, holder_kind=cert.holder_kind, holder_name=cert.holder_name,
            issuer_department=cert.issuer_department, application_id=cert.application_id,
            issued_on=cert.issued_on, valid_until=cert.valid_until,
        ),
    )
    return cert


async def verify_access_log(session: AsyncSession) -> tuple[ChainReport, int | None]:
    """Walk the whole chain in batches; the report names the first broken row."""
    walker = ChainWalker()
    async for row in access_log.chain_rows(session):
        if not walker.feed(row):
            break
    head = await access_log.head(session)
    head_seq = head.last_seq if head else None
    return walker.report(head_seq), head_seq


def caller_service(principal: Principal | None) -> str:
    """Which service or department a read came through, as the data subject will see it."""
    if principal is None:
        return "public"
    if principal.kind in ("staff", "department_system"):
        return principal.department or principal.kind
    return "intake"


async def log_access(
    session: AsyncSession,
    principal: Principal | None,
    *,
    action: str,
    target: str,
    holder_id: str | None,
    outcome: str,
    service: str | None = None,
    **extra: Any,
) -> None:
    await access_log.append(
        session,
        accessor_subject=principal.subject if principal else "anonymous",
        accessor_kind=principal.kind if principal else "public",
        accessor_department=principal.department if principal else None,
        service=service or caller_service(principal),
        action=action, target=target, holder_id=holder_id, outcome=outcome, **extra,
    )
