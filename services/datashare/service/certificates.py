"""Use cases of the certificate directory (电子证照目录) and of electronic certificates (电子证照): issue, revoke,
read for a purpose, verify (publicly by number and code, or by holder for staff), check a signed copy."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.domain import certificates as rules
from services.datashare.domain import purpose
from services.datashare.domain.identifiers import (
    HOLDER_KIND_ORGANISATION,
    HOLDER_KIND_PERSON,
    holder_problem,
    normalise_holder_kind,
    verification_code_matches,
)
from services.datashare.events.contracts import CERTIFICATE_REVOKED, ApplicationDecided, CertificateRevoked
from services.datashare.service.common import (
    CITY_TZ,
    AlreadyIssued,
    Context,
    announce_type,
    certificate_row,
    certificate_values,
    check_holder_level,
    check_reasoned_lookup,
    client_key,
    current_config,
    grant_for_application,
    issue_certificate,
    issued_event,
    log_access,
    refuse,
    signed_content,
    today,
)
from services.datashare.store import access_log, archive, items, registries
from services.datashare.store import certificates as store
from services.datashare.store.tables import Certificate, CertificateType
from shared.bus import AwaitingEarlierEvent
from shared.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    Problem,
    TooManyRequests,
    ValidationProblem,
    invalid,
)
from shared.messaging import publish
from shared.pagination import PageParams, paginate
from shared.principal import WINDOW_CLERK, Principal
from shared.privacy import mask_id_number
from shared.types import utcnow

log = logging.getLogger("yimen.datashare")


@dataclass(frozen=True)
class SignedCopy:
    content: dict[str, Any]
    signature: str
    key_id: str


@dataclass(frozen=True)
class CertificateView:
    """A certificate as one reader may see it (masked, narrowed, with or without the signed copy)."""

    number: str
    identifier: str
    type_code: str
    type_name: str
    holder_id: str
    holder_kind: str
    holder_name: str | None
    issuer_department: str
    issuer_credit_code: str
    fields: dict[str, Any]
    issued_on: date
    valid_until: date | None
    application_id: str | None
    status: str
    revoked_at: datetime | None
    revocation_reason: str | None
    verification_code: str | None
    document: SignedCopy | None


@dataclass(frozen=True)
class Verification:
    number: str
    status: str
    type_code: str
    type_name: str
    issuer: str
    issuer_department: str
    holder: str | None
    valid_until: date | None
    code_valid: bool | None
    holder_matches: bool | None


@dataclass(frozen=True)
class DocumentVerdict:
    valid: bool
    signature_valid: bool
    status: str | None
    number: str | None
    reason: str | None = None


def certificate_view(c: Certificate, type_name: str, *, full: bool = True,
                     grant: purpose.Grant | None = None) -> CertificateView:
    """`full`: the holder's own view (and the issuer's answer to the issue). Anyone else sees the holder's ID
    number and every phone or ID number in the fields masked, no signed copy and no verification code; a grant
    for an application narrows the fields to those its materials need."""
    fields = c.fields if grant is None else {f: c.fields[f] for f in (grant.fields or ()) if f in c.fields}
    person = c.holder_kind == HOLDER_KIND_PERSON
    return CertificateView(
        number=c.number, identifier=c.identifier, type_code=c.type_code, type_name=type_name,
        holder_id=c.holder_id if full or not person else (mask_id_number(c.holder_id) or ""),
        holder_kind=c.holder_kind, holder_name=c.holder_name,
        issuer_department=c.issuer_department, issuer_credit_code=c.issuer_credit_code,
        fields=fields if full or (grant is not None and grant.unmasked) else purpose.mask_values(fields),
        issued_on=c.issued_on, valid_until=c.valid_until, application_id=c.application_id,
        status=rules.status_on(c.status, c.valid_until, today()), revoked_at=c.revoked_at,
        revocation_reason=c.revocation_reason, verification_code=c.verification_code if full else None,
        document=SignedCopy(content=signed_content(certificate_values(c), type_name), signature=c.signature,
                            key_id=c.key_id) if full else None,
    )


def verification(cert: Certificate, type_name: str, matches: bool | None, *, code_valid: bool | None = None,
                 show_holder: bool = True) -> Verification:
    return Verification(
        number=cert.number, status=rules.status_on(cert.status, cert.valid_until, today()),
        type_code=cert.type_code, type_name=type_name, issuer=cert.issuer_credit_code,
        issuer_department=cert.issuer_department,
        holder=(mask_id_number(cert.holder_id) or "") if show_holder else None,
        valid_until=cert.valid_until, code_valid=code_valid, holder_matches=matches,
    )


# ---- the directory ------------------------------------------------------------------------------------------

async def list_types(session: AsyncSession) -> list[CertificateType]:
    return await store.list_types(session)


async def get_type(session: AsyncSession, code: str) -> CertificateType:
    t = await store.get_type(session, code)
    if t is None:
        raise NotFound(f"No certificate type {code}.")
    return t


async def create_type(session: AsyncSession, *, code: str, name: str, issuer_department: str,
                      issuer_credit_code: str | None, field_schema: dict[str, Any],
                      validity_years: int | None) -> CertificateType:
    """Add a type (admin): its schema is checked, the issuer's credit code found, and catalog told."""
    errors = rules.schema_problems(field_schema)
    credit = (
        issuer_credit_code
        or await items.department_credit_code(session, issuer_department)
        or rules.DEPARTMENT_CREDIT_CODES.get(issuer_department)
    )
    if credit is None:
        errors.append(FieldError(field="body.issuer_credit_code", rule="required",
                                 message="Unknown department: give its credit code."))
    if errors:
        raise ValidationProblem(errors)
    if await store.get_type(session, code):
        raise Conflict(f"Certificate type {code} exists already.")
    t = await store.add_type(
        session, code=code, name=name, issuer_department=issuer_department, issuer_credit_code=credit,
        field_schema=field_schema, validity_years=validity_years,
    )
    await announce_type(session, code=t.code, name=t.name, issuer_department=t.issuer_department,
                        field_schema=t.field_schema)
    return t


async def verification_keys(session: AsyncSession) -> list[dict[str, str]]:
    return [rules.public_jwk(k.kid, k.public_key) for k in await store.verification_keys(session)]


# ---- issue and revoke ---------------------------------------------------------------------------------------

def issue_holder(holder_id: str, holder_kind: str) -> tuple[str, str]:
    """The holder code and its kind (`111`/`001`) as stored, or 422: checked before any transaction."""
    kind = normalise_holder_kind(holder_kind)
    if kind is None:
        raise invalid("body.holder_kind", "enum", "111 (citizen ID) or 001 (credit code).")
    holder = holder_id.strip().upper()
    if problem := holder_problem(holder, kind):
        raise invalid("body.holder_id", *problem)
    return holder, kind


async def issue(session: AsyncSession, principal: Principal, *, type_code: str, holder_id: str, holder_kind: str,
                holder_name: str | None, fields: dict[str, Any], application_id: str | None,
                issued_on: date | None) -> CertificateView:
    """Staff of the type's issuing department, or an admin, issue a certificate (`certificate.issued`)."""
    holder, kind = issue_holder(holder_id, holder_kind)
    t = await store.get_type(session, type_code)
    if t is None:
        raise invalid("body.type_code", "unknown_type", "No such certificate type in the directory.")
    if not purpose.acts_for_department(principal, t.issuer_department):
        raise Forbidden(f"Only {t.issuer_department} or an admin issues {t.name}.")
    if errors := rules.field_problems(t.field_schema, fields):
        raise ValidationProblem(errors)
    if application_id and await store.certificate_for_application(session, application_id, t.code):
        raise Conflict("This application already has a certificate of this type.")
    # A concurrent issue for the same application, past the check above, is refused by the insert (409).
    cert = await issue_certificate(
        session, t, holder_id=holder, holder_kind=kind, holder_name=holder_name, fields=fields,
        application_id=application_id, issued_by=principal.subject, issued_on=issued_on,
    )
    return certificate_view(cert, t.name)


async def revoke(session: AsyncSession, principal: Principal, number: str, *, reason: str) -> CertificateView:
    """The issuing department (or an admin) revokes with a reason (`certificate.revoked`)."""
    cert = await store.get_certificate(session, number)
    if cert is None:
        raise NotFound("No certificate with this number.", slug="certificate-not-found")
    if not purpose.acts_for_department(principal, cert.issuer_department):
        raise Forbidden("Only the issuing department or an admin revokes a certificate.")
    at = utcnow()
    if not await store.mark_revoked(session, number, reason, at):
        raise Conflict("The certificate is revoked already.", slug="already-revoked")
    await session.refresh(cert)
    await publish_revoked(session, cert, reason, at)
    t = await store.get_type(session, cert.type_code)
    return certificate_view(cert, t.name if t else cert.type_code)


async def publish_revoked(session: AsyncSession, cert: Certificate, reason: str, at: datetime) -> None:
    await publish(session, CERTIFICATE_REVOKED, subject=cert.number,
                  data=CertificateRevoked(certificate_number=cert.number, reason=reason, revoked_at=at))


# ---- reads for a purpose ------------------------------------------------------------------------------------

async def reader_grant(ctx: Context, session: AsyncSession, principal: Principal, *, holder_id: str,
                       type_code: str, application_id: str | None, reason: str | None) -> purpose.Grant:
    """Why a staff member or department system may see a holder's certificates of a type: an application of
    theirs that names the type, or (admin, supervisor) a written reason within the hourly limit."""
    if application_id:
        application = await ctx.intake.application(application_id)
        return await grant_for_application(session, principal, application, holder_id=holder_id,
                                           certificate_type=type_code)
    if purpose.may_look_up_by_reason(principal):
        purpose.check_reason(reason)
        await check_reasoned_lookup(ctx, principal)
        return purpose.reason_grant()
    raise Forbidden("A holder's certificates are read only for a live application in which your department holds "
                    "an open task (`application_id`); admins and supervisors may give a written `reason`.",
                    slug="purpose-not-established")


async def verify_by_holder(ctx: Context, session: AsyncSession, principal: Principal, *, holder: str,
                           holder_kind: str, type_code: str, reason: str,
                           application_id: str | None) -> list[Verification] | Problem:
    """GB/T 36905's second way to verify, for staff and systems with a purpose; refusals are logged and
    returned."""
    if not purpose.is_reader(principal):
        raise Forbidden("Verification by holder is for staff and department systems.")
    kind = normalise_holder_kind(holder_kind)
    if kind is None:
        raise invalid("query.holder_kind", "enum", "111 (citizen ID) or 001 (credit code).")
    holder = holder.strip().upper()
    if problem := holder_problem(holder, kind):
        raise invalid("query.holder", *problem)
    t = await store.get_type(session, type_code)
    if t is None:
        raise invalid("query.type_code", "unknown_type", "No such certificate type in the directory.")
    target = f"certificate-type:{type_code}"
    try:
        await reader_grant(ctx, session, principal, holder_id=holder, type_code=type_code,
                           application_id=application_id, reason=reason)
    except Forbidden as refusal:
        return await refuse(session, principal, refusal, action="certificate_verification", target=target,
                            holder_id=holder, purpose=reason, application_id=application_id)
    certs = [c for c in await store.holder_certificates(session, holder, type_code) if c.holder_kind == kind]
    await log_access(
        session, principal, action="certificate_verification", target=target,
        holder_id=holder, outcome="found" if certs else "no_match", purpose=reason, application_id=application_id,
    )
    return [verification(c, t.name, True) for c in certs]


async def _check_client_rate(ctx: Context) -> None:
    """Public verification per client address (OWASP API4): guessing numbers or codes is slowed to a crawl."""
    await ctx.limiter("verify-client", current_config().verifications_per_client_per_minute, 60.0).check(
        ctx.client_address, "certificate verifications")


async def verify(ctx: Context, session: AsyncSession, principal: Principal | None, number: str, *,
                 code: str | None, holder: str | None, reason: str | None) -> Verification:
    """Anyone checks a certificate shown to them; the code opens the holder, a wrong code is logged and watched."""
    if holder is not None and not code:
        raise invalid("query.code", "required", "Checking a holder needs the certificate's verification code.")
    await _check_client_rate(ctx)
    cert = await store.get_certificate(session, number)
    if cert is None:
        raise NotFound("No certificate with this number.", slug="certificate-not-found")
    t = await store.get_type(session, cert.type_code)
    type_name = t.name if t else cert.type_code
    if not code:
        return verification(cert, type_name, None, show_holder=False)
    # Counted in the access log, so the limit holds across replicas and restarts; once reached, even the right
    # code waits, or guessing on would still find it.
    limit = current_config().failed_verifications_per_certificate_per_hour
    if await access_log.failed_verifications(session, cert.holder_id, f"certificate:{number}",
                                             utcnow() - timedelta(hours=1)) >= limit:
        raise TooManyRequests("Too many wrong verification codes for this certificate; try again in an hour.",
                              headers={"Retry-After": "3600"}, retry_after=3600)
    if not verification_code_matches(cert.verification_code, code):
        await log_access(
            session, principal, action="certificate_verification", target=f"certificate:{number}",
            holder_id=cert.holder_id, outcome="code_mismatch",
            client=client_key(ctx.client_address) if principal is None else None,
            service="public" if principal is None else None, purpose=reason,
        )
        return verification(cert, type_name, None, code_valid=False, show_holder=False)
    matches = None
    if holder is not None:
        matches = holder.strip().upper() == cert.holder_id
        await log_access(
            session, principal, action="certificate_verification", target=f"certificate:{number}",
            holder_id=cert.holder_id, outcome="holder_match" if matches else "holder_mismatch",
            service="public" if principal is None else None, purpose=reason,
        )
    return verification(cert, type_name, matches, code_valid=True)


async def verify_document(ctx: Context, session: AsyncSession, *, content: dict[str, Any], signature: str,
                          key_id: str) -> DocumentVerdict:
    """A forwarded or printed signed copy: valid only with an intact signature on a currently valid certificate."""
    await _check_client_rate(ctx)
    keys = {k.kid: k for k in await store.verification_keys(session)}
    key = keys.get(key_id)
    number = content.get("number") if isinstance(content.get("number"), str) else None
    if key is None or not rules.signature_is_valid(key.public_key, content, signature):
        return DocumentVerdict(valid=False, signature_valid=False, status=None, number=number,
                               reason="The signature does not match this content (altered or forged).")
    cert = await store.get_certificate(session, number or "")
    if cert is None:
        return DocumentVerdict(valid=False, signature_valid=True, status=None, number=number,
                               reason="No certificate with this number.")
    status = rules.status_on(cert.status, cert.valid_until, today())
    return DocumentVerdict(valid=status == "valid", signature_valid=True, status=status, number=number,
                           reason=None if status == "valid" else f"The certificate is {status}.")


async def read(ctx: Context, session: AsyncSession, principal: Principal, number: str, *,
               application_id: str | None, reason: str | None) -> CertificateView | Problem:
    """The holder reads in full; staff and systems only for a purpose, masked and logged."""
    cert = await store.get_certificate(session, number)
    if cert is None:
        raise NotFound("No certificate with this number.", slug="certificate-not-found")
    t = await store.get_type(session, cert.type_code)
    type_name = t.name if t else cert.type_code
    if cert.holder_id in purpose.own_holder_ids(principal):
        check_holder_level(principal)
        return certificate_view(cert, type_name)
    if not purpose.is_reader(principal):
        raise Forbidden("Only the holder, the issuing department or staff with a purpose read a certificate.")
    target = f"certificate:{number}"
    grant: purpose.Grant | None = None
    try:
        if principal.department == cert.issuer_department and not application_id:
            basis = "issuer"
        else:
            grant = await reader_grant(ctx, session, principal, holder_id=cert.holder_id,
                                       type_code=cert.type_code, application_id=application_id, reason=reason)
            basis = grant.basis
    except Forbidden as refusal:
        return await refuse(session, principal, refusal, action="certificate_read", target=target,
                            holder_id=cert.holder_id, application_id=application_id, purpose=reason)
    await log_access(session, principal, action="certificate_read", target=target,
                     holder_id=cert.holder_id, outcome="found", application_id=application_id,
                     purpose=reason if basis == "reason" else basis)
    return certificate_view(cert, type_name, full=False,
                            grant=grant if grant is not None and grant.fields is not None else None)


async def list_of_holder(ctx: Context, session: AsyncSession, principal: Principal, page: PageParams, *,
                         holder_id: str | None,
                         application_id: str | None) -> tuple[list[CertificateView], str | None] | Problem:
    """The holder's own certificates; a window clerk's list of an applicant's for the application it accepts."""
    holders = purpose.own_holder_ids(principal)
    full = True
    if holder_id and holder_id not in holders:
        if not (principal.is_staff and principal.has(WINDOW_CLERK)):
            raise Forbidden("You may list only your own certificates; window staff may list an applicant's.")
        refusal: Forbidden | None = None
        if not application_id:
            refusal = Forbidden("Give the application your window is accepting (`application_id`).",
                                slug="purpose-not-established")
        else:
            try:
                application = await ctx.intake.application(application_id)
                if purpose.task_basis(principal, application, ()) != "window" or not purpose.holder_in_application(
                        holder_id, application):
                    raise Forbidden("The application does not name this holder.", slug="holder-not-in-application")
            except Forbidden as exc:
                refusal = exc
        if refusal is not None:
            return await refuse(session, principal, refusal, action="certificate_list", target="certificates",
                                holder_id=holder_id, application_id=application_id)
        holders, full = {holder_id}, False
        await log_access(session, principal, action="certificate_list", target="certificates",
                         holder_id=holder_id, outcome="listed", application_id=application_id, purpose="window")
    elif holders:
        check_holder_level(principal)
    if not holders:
        raise Forbidden("This token names no holder (hid or org).")
    rows, cursor = await paginate(
        session, store.holder_certificates_query(holders), key_columns=[Certificate.number], params=page,
        key_of=lambda c: [c.number],
    )
    names = {t.code: t.name for t in await store.list_types(session)}
    return [certificate_view(c, names.get(c.type_code, c.type_code), full=full) for c in rows], cursor


# ---- issued on a decision -----------------------------------------------------------------------------------

async def archive_decision(session: AsyncSession, d: ApplicationDecided) -> None:
    """Archive a decision; an approval whose result is a certificate issues it to the applicant, its fields
    mapped from the accepted application's form (the archive); never an empty shell. The certificate, the
    archive row with its number and `certificate.issued` are one statement after the one that takes the serial
    and reads the form (PostgreSQL)."""
    decision = archive.decision_params(
        d.application_id, receipt_number=d.receipt_number, holder_id=d.applicant.holder_id, item_code=d.item_code,
        item_version=d.item_version, department=d.department, decided_at=d.decided_at, outcome=d.outcome)
    cert_type = await _certificate_due(session, d)
    if cert_type is None:
        await archive.record_decision(session, decision)
        return
    kind = HOLDER_KIND_ORGANISATION if d.applicant.kind == "organisation" else HOLDER_KIND_PERSON
    # An organisation's token carries no name: the legal-persons registry (or the population registry) does,
    # else an earlier certificate of the holder (its business licence), else the name the certificate maps.
    holder_name = (d.applicant.name or await registries.holder_name(session, kind, d.applicant.holder_id)
                   or await store.known_holder_name(session, d.applicant.holder_id))
    issued_on = d.decided_at.astimezone(CITY_TZ).date()
    content = await items.item_content(session, d.item_code, d.item_version) if d.item_version else None
    taken = await store.serial_for_decision(session, cert_type.code, d.application_id)
    if taken.accepted_at is None:
        # The certificate's fields come from the accepted application (its form): that event is on another
        # consumer and may not be applied yet. Issuing now would leave the certificate without its data. (The
        # rollback gives the serial back.)
        raise AwaitingEarlierEvent(f"application {d.application_id} decided before its acceptance was archived")
    mapping = ((content or {}).get("result") or {}).get("fields") or {}
    if mapping:
        fields = rules.mapped_fields(
            cert_type.field_schema, mapping, form=taken.form,
            applicant={"name": holder_name, "holder_id": d.applicant.holder_id},
            decision={"decided_on": issued_on.isoformat(), "department": d.department},
        )
    else:  # an item published before mappings existed
        fields = rules.fields_from_form(cert_type.field_schema, taken.form, holder_name)
    holder_name = holder_name or (str(fields["name"]) if fields.get("name") else None)
    if missing := rules.missing_required(cert_type.field_schema, fields):
        # Never an empty shell: the department issues it by hand (POST /certificates) once the data is there.
        log.error("certificate for application %s not issued: type %s needs %s", d.application_id, cert_type.code,
                  ", ".join(missing))
        await store.give_back_serial(session, cert_type.code, taken.count)
        await archive.record_decision(session, decision)
        return
    issue = dict(holder_id=d.applicant.holder_id, holder_kind=kind, holder_name=holder_name, fields=fields,
                 application_id=d.application_id, issued_by=f"workflow:{d.department or cert_type.issuer_department}",
                 issued_on=issued_on)
    values = certificate_row(cert_type, serial=taken.serial, key=await store.key_for_signing(session, taken.kid),
                             **issue)  # type: ignore[arg-type]
    if await store.issue_with_decision(session, values, decision, issued_event(session, values, cert_type.name)):
        return
    # Nothing inserted, the decision archived all the same: the application's certificate of this type exists
    # already (issued by hand, or for an earlier decision), so nothing is issued twice; or the serial was given
    # before the permutation existed, and the next one is taken.
    if await store.certificate_for_application(session, d.application_id, cert_type.code):
        await store.give_back_serial(session, cert_type.code, taken.count)
        return
    try:
        cert = await issue_certificate(session, cert_type, **issue)  # type: ignore[arg-type]
    except AlreadyIssued:
        return
    await archive.set_certificate_number(session, d.application_id, cert.number)


async def _certificate_due(session: AsyncSession, d: ApplicationDecided) -> store.TypeInfo | None:
    """The type of the certificate this decision issues, or None: not an approval with a certificate for a
    result, no holder to issue it to, or a type the directory does not have."""
    result = d.result
    if d.outcome != "approved" or result is None or result.type != "certificate" or not result.certificate_type:
        return None
    if not d.applicant.holder_id:
        log.warning("decided application %s has no holder id; no certificate issued", d.application_id)
        return None
    cert_type = await store.type_info(session, result.certificate_type)
    if cert_type is None:
        # A retry will not make the type exist: the event stays archived, the issue is left to the department.
        log.warning("unknown certificate type %s for application %s", result.certificate_type, d.application_id)
    return cert_type
