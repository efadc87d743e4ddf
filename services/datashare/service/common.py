"""What datashare's use cases share: the serving app's settings, the caller's context (its token forwarded to
intake, its address, the rate limits), the access log every read goes into and the access watch behind it,
and the purpose an application gives a reader. Everything runs inside the caller's transaction."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.config import DatashareConfig
from services.datashare.domain import anomalies as watch
from services.datashare.domain import certificates as rules
from services.datashare.domain import purpose
from services.datashare.domain.access_log import ChainReport, ChainWalker
from services.datashare.domain.identifiers import (
    certificate_identifier,
    certificate_number,
    new_verification_code,
)
from services.datashare.events.contracts import (
    ACCESS_ANOMALY,
    CERTIFICATE_ISSUED,
    CERTIFICATE_TYPE_UPSERTED,
    AccessAnomaly,
    AccessReader,
    CertificateIssued,
    CertificateTypeUpserted,
)
from services.datashare.store import access_log, items, tasks
from services.datashare.store import anomalies as anomaly_store
from services.datashare.store import certificates as store
from services.datashare.store.intake import IntakeClient
from services.datashare.store.tables import Certificate, CertificateType
from shared.errors import Conflict, Forbidden, Problem
from shared.events import Event
from shared.messaging import emit, publish, service_event
from shared.principal import Principal
from shared.ratelimit import SharedRateLimiter, limiter_for
from shared.types import utcnow

log = logging.getLogger("yimen.datashare")

#: The serving app's settings, set per request (two apps in one process, as in tests, keep their own).
_config: ContextVar[DatashareConfig | None] = ContextVar("datashare_config", default=None)
_DEFAULT = DatashareConfig()


def use_config(config: DatashareConfig) -> None:
    _config.set(config)


def current_config() -> DatashareConfig:
    return _config.get() or _DEFAULT


@dataclass(frozen=True)
class Context:
    """What a use case needs of the request besides its data: intake read with the caller's own token, the
    caller's address (hashed before it is logged) and the rate limits shared by every replica."""

    intake: IntakeClient
    client_address: str
    limiter: Callable[[str, int, float], SharedRateLimiter]


def context(state: Any, *, authorization: str, client_address: str | None) -> Context:
    """The context of one request to the app whose `state` holds the HTTP client, the settings and the limiters."""
    http: httpx.AsyncClient = state.http
    return Context(
        intake=IntakeClient(http, state.settings.platform.service_urls.get("intake", ""), authorization),
        client_address=client_address or "unknown",
        limiter=lambda name, limit, per_seconds: limiter_for(state, name, limit, per_seconds=per_seconds),
    )


def check_holder_level(principal: Principal) -> None:
    """A holder's own data needs a token of the configured assurance level (实名核验), or 403."""
    if why := purpose.holder_level_problem(principal, current_config().holder_min_level):
        raise Forbidden(why, slug="assurance-level-too-low")


async def check_reasoned_lookup(ctx: Context, principal: Principal) -> None:
    """Look-ups without an application (admin, supervisor): at most so many per account per hour, registry and
    certificate look-ups together."""
    await ctx.limiter("reasoned", current_config().reasoned_lookups_per_hour, 3600.0).check(
        principal.subject, "look-ups without an application")

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


def certificate_row(
    cert_type: CertificateType | store.TypeInfo,
    *,
    serial: int,
    key: store.Key,
    holder_id: str,
    holder_kind: str,
    holder_name: str | None,
    fields: dict[str, Any],
    application_id: str | None,
    issued_by: str,
    issued_on: date,
) -> dict[str, Any]:
    """The certificate of this serial as it is inserted: number, identifier, validity, and the signature over
    what is printed on it."""
    values: dict[str, Any] = dict(
        number=certificate_number(cert_type.code, serial),
        identifier=certificate_identifier(cert_type.code, cert_type.issuer_credit_code, serial),
        type_code=cert_type.code, serial=serial, holder_id=holder_id, holder_kind=holder_kind,
        holder_name=holder_name, issuer_department=cert_type.issuer_department,
        issuer_credit_code=cert_type.issuer_credit_code, fields=fields, issued_on=issued_on,
        valid_until=rules.valid_until(issued_on, cert_type.validity_years), application_id=application_id,
        key_id=key.kid, issued_by=issued_by, verification_code=new_verification_code(),
    )
    values["signature"] = rules.sign(key.private_key, signed_content(values, cert_type.name))
    return values


def issued_event(session: AsyncSession, values: dict[str, Any], type_name: str) -> Event:
    """The `certificate.issued` event of a certificate (`values`: its row)."""
    return service_event(session, CERTIFICATE_ISSUED, subject=values["number"], data=CertificateIssued(
        certificate_number=values["number"], type_code=values["type_code"], type_name=type_name,
        holder_id=values["holder_id"], holder_kind=values["holder_kind"], holder_name=values["holder_name"],
        issuer_department=values["issuer_department"], application_id=values["application_id"],
        issued_on=values["issued_on"], valid_until=values["valid_until"],
    ))


async def issue_certificate(
    session: AsyncSession,
    cert_type: CertificateType | store.TypeInfo,
    *,
    holder_id: str,
    holder_kind: str,
    holder_name: str | None,
    fields: dict[str, Any],
    application_id: str | None,
    issued_by: str,
    issued_on: date | None = None,
) -> Certificate:
    """Number, identifier, validity and signature; the `certificate.issued` event in the same transaction. 409
    when the application has its certificate of this type already (a concurrent issue got there first)."""
    issued_on = issued_on or today()
    while True:
        serial, kid = await store.next_serial(session, cert_type.code)
        key = await store.key_for_signing(session, kid)
        values = certificate_row(cert_type, serial=serial, key=key, holder_id=holder_id, holder_kind=holder_kind,
                                 holder_name=holder_name, fields=fields, application_id=application_id,
                                 issued_by=issued_by, issued_on=issued_on)
        cert = await store.add_certificate(session, **values)
        if cert is not None:
            break
        if application_id and await store.certificate_for_application(session, application_id, cert_type.code):
            raise AlreadyIssued("This application already has a certificate of this type.")
        # Else the serial was given before the permutation existed: take the next one.
    await emit(session, issued_event(session, values, cert_type.name))
    return cert


class AlreadyIssued(Conflict):
    """The application's certificate of the type exists already."""


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


def client_key(address: str | None) -> str:
    """A public client, as the access log and the watch name it: a hash of its address, not the address."""
    return "client:" + hashlib.sha256((address or "unknown").encode()).hexdigest()[:16]


async def log_access(
    session: AsyncSession,
    principal: Principal | None,
    *,
    action: str,
    target: str,
    holder_id: str | None,
    outcome: str,
    service: str | None = None,
    client: str | None = None,
    **extra: Any,
) -> None:
    """Append the read to the hash chain, then let the access watch look at the reader's recent reads."""
    subject = principal.subject if principal else (client or "anonymous")
    await access_log.append(
        session,
        accessor_subject=subject,
        accessor_kind=principal.kind if principal else "public",
        accessor_department=principal.department if principal else None,
        service=service or caller_service(principal),
        action=action, target=target, holder_id=holder_id, outcome=outcome, **extra,
    )
    # The watch looks at staff and systems, and at anyone refused or presenting wrong verification codes; a holder
    # reading their own data is not watched (and the hot path of intake's fetch stays one insert).
    staff = principal is not None and principal.kind in ("staff", "department_system")
    if not staff and outcome not in ("code_mismatch", "refused"):
        return
    await watch_reader(session, subject, kind=principal.kind if principal else "public",
                       department=principal.department if principal else None)


async def refuse(session: AsyncSession, principal: Principal | None, problem: Problem, *, action: str, target: str,
                 holder_id: str | None, **extra: Any) -> Problem:
    """A refused read is recorded too (the watch counts bursts of them), so the problem is returned, not raised:
    raising would roll the record back with the transaction. The route renders it."""
    await log_access(session, principal, action=action, target=target, holder_id=holder_id, outcome="refused",
                     **extra)
    return problem


def thresholds(config: DatashareConfig) -> watch.Thresholds:
    return watch.Thresholds(
        window=timedelta(minutes=config.watch_window_minutes),
        outside_case_holders=config.watch_outside_case_holders, refused_reads=config.watch_refused_reads,
        failed_verifications=config.watch_failed_verifications, night_reads=config.watch_night_reads,
        night_starts_hour=config.night_starts_hour, night_ends_hour=config.night_ends_hour,
    )


async def watch_reader(session: AsyncSession, reader: str, *, kind: str, department: str | None) -> list[str]:
    """安全监控: check the reader's reads in the window against the rules; each new anomaly is recorded once and
    published (efficacy opens a supervision item for the data office). Returns the new anomalies' ids."""
    config = current_config()
    t = thresholds(config)
    now = utcnow()
    rows = await anomaly_store.recent_rows(session, reader, now - t.window)
    opened: list[str] = []
    for a in watch.detect(rows, now, t, staff_reader=kind in ("staff", "department_system")):
        anomaly_id = await anomaly_store.record(
            session, f"{a.kind}:{reader}:{a.bucket}", kind=a.kind, reader=reader, reader_kind=kind,
            reader_department=department, count=a.count, threshold=a.threshold, window_start=a.window_start,
            window_end=a.window_end, entry_seqs=list(a.entry_seqs), detected_at=now,
        )
        if anomaly_id is None:
            continue
        log.warning("access anomaly %s by %s: %d (threshold %d)", a.kind, reader, a.count, a.threshold)
        await publish(session, ACCESS_ANOMALY, subject=anomaly_id, data=AccessAnomaly(
            anomaly_id=anomaly_id, kind=a.kind, reader=AccessReader(subject=reader, kind=kind, department=department),
            count=a.count, threshold=a.threshold, window_start=a.window_start, window_end=a.window_end,
            entry_seqs=list(a.entry_seqs), data_office=config.data_office, detected_at=now,
        ))
        opened.append(anomaly_id)
    return opened


async def grant_for_application(
    session: AsyncSession, principal: Principal, application: dict[str, Any], *, holder_id: str,
    registry: str | None = None, certificate_type: str | None = None, material_code: str | None = None,
) -> purpose.Grant:
    """用途绑定: what a staff member or department system may read of `holder_id` for this application (as
    intake answered it to the reader's own token), or 403."""
    application_id = str(application.get("id") or application.get("application_id") or "")
    basis = purpose.task_basis(principal, application, await tasks.open_departments(session, application_id))
    version = application.get("item_version")
    content = (await items.item_content(session, str(application.get("item_code") or ""), int(version))
               if version else None)
    if content is None:
        raise Forbidden("The application's item version is not known here; it names no source.",
                        slug="source-not-named")
    codes, fields = purpose.sources_named(content, registry=registry, certificate_type=certificate_type,
                                          material_code=material_code)
    if not purpose.holder_in_application(holder_id, application):
        raise Forbidden("The person or organisation asked about is neither the applicant nor named in the "
                        "application.", slug="holder-not-in-application")
    return purpose.grant_for_application(principal, basis, codes, fields)
