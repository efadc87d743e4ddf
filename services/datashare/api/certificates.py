"""Routes of the certificate directory (电子证照目录) and electronic certificates (电子证照)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from services.datashare import operations
from services.datashare.api.common import (
    acts_for_department,
    check_holder_level,
    check_reasoned_lookup,
    fetch_application,
    limiter,
    own_holder_ids,
)
from services.datashare.domain import certificates as rules
from services.datashare.domain import purpose
from services.datashare.domain.identifiers import (
    HOLDER_KIND_PERSON,
    TYPE_CODE,
    holder_problem,
    normalise_holder_kind,
    verification_code_matches,
)
from services.datashare.events.contracts import CERTIFICATE_REVOKED, CertificateRevoked
from services.datashare.store import access_log, items
from services.datashare.store import certificates as store
from services.datashare.store.tables import Certificate, CertificateType
from shared.auth import ADMIN, WINDOW_CLERK, CurrentPrincipal, OptionalPrincipal, Principal, require_roles
from shared.bounds import BoundedDate
from shared.db import SessionDep
from shared.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    TooManyRequests,
    ValidationProblem,
    invalid,
)
from shared.http_errors import problem_responses
from shared.idempotency import run_idempotent
from shared.messaging import publish
from shared.pagination import Page, PageDep, paginate
from shared.privacy import mask_id_number
from shared.types import utcnow

router = APIRouter(tags=["certificates"])


class CertificateTypeRead(BaseModel):
    code: str = Field(description="Defining authority's credit code + 3-digit serial.")
    name: str
    issuer_department: str
    issuer_credit_code: str
    field_schema: dict[str, Any] = Field(description="JSON Schema (object, typed properties, required).")
    validity_years: int | None = Field(description="Years a certificate is valid; null: no expiry.")


class CertificateTypeCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "code": "11441781MB0000007W001", "name": "职业资格证书", "issuer_department": "LD-RSJ",
        "field_schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        "validity_years": 3,
    }]})

    code: str = Field(pattern=TYPE_CODE.pattern, description="18-character credit code + 3 digits.")
    name: str = Field(min_length=1, max_length=200)
    issuer_department: str = Field(min_length=2, max_length=40)
    issuer_credit_code: str | None = Field(
        default=None, description="Defaults to the department's own (from catalog's department events)."
    )
    field_schema: dict[str, Any]
    validity_years: int | None = Field(default=None, ge=1, le=100)


class CertificateIssue(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "type_code": "11441781MB0000001A001", "holder_id": "91441781MA4W000001", "holder_kind": "001",
        "holder_name": "罗定市好味餐饮店", "fields": {"name": "罗定市好味餐饮店", "legal_representative": "陈明"},
    }]})

    type_code: str
    holder_id: str = Field(description="Citizen ID number (holder_kind 111) or credit code (001).")
    holder_kind: str = Field(description="`111`/`person` or `001`/`organisation`.")
    holder_name: str | None = Field(default=None, max_length=200)
    fields: dict[str, Any] = Field(default_factory=dict, description="Checked against the type's schema.")
    application_id: str | None = Field(default=None, max_length=64)
    issued_on: BoundedDate | None = None


class SignedDocument(BaseModel):
    """A forwarded or printed copy: the signed content, its signature and the key that made it."""

    content: dict[str, Any]
    signature: str
    key_id: str


class CertificateRead(BaseModel):
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
    status: str = Field(description="valid, revoked or expired (today, Asia/Shanghai).")
    revoked_at: datetime | None
    revocation_reason: str | None
    verification_code: str | None = Field(
        default=None, description="核验码 printed beside the number: only the holder (and the issuer, in the answer "
        "to the issue) sees it; whoever is shown the certificate verifies it with number + code.")
    document: SignedDocument | None = Field(
        description="The signed copy; only for the holder and the issuer (it carries the holder's full code).")


class VerificationRead(BaseModel):
    """The public answer: just enough to trust a certificate shown to you."""

    number: str
    status: str = Field(description="valid, revoked or expired")
    type_code: str
    type_name: str
    issuer: str
    issuer_department: str
    holder: str | None = Field(description="Masked holder code; only when the verification code was right.")
    valid_until: date | None
    code_valid: bool | None = Field(
        default=None, description="Whether the presented verification code is this certificate's (null: none given).")
    holder_matches: bool | None = Field(
        description="Only with `holder=` and the right `code`: whether the certificate is this holder's.")


class DocumentCheck(BaseModel):
    valid: bool = Field(description="Signature intact and the certificate currently valid.")
    signature_valid: bool
    status: str | None = Field(description="Current status of the certificate, when the signature holds.")
    number: str | None
    reason: str | None = None


class Revocation(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "经营者申请注销"}]})

    reason: str = Field(min_length=2, max_length=500)


def type_read(t: CertificateType) -> CertificateTypeRead:
    return CertificateTypeRead(
        code=t.code, name=t.name, issuer_department=t.issuer_department, issuer_credit_code=t.issuer_credit_code,
        field_schema=t.field_schema, validity_years=t.validity_years,
    )


def certificate_read(c: Certificate, type_name: str, *, full: bool = True,
                     grant: purpose.Grant | None = None) -> CertificateRead:
    """`full`: the holder's own view (and the issuer's answer to the issue). Anyone else sees the holder's ID
    number and every phone or ID number in the fields masked, no signed copy and no verification code; a grant
    for an application narrows the fields to those its materials need."""
    fields = c.fields if grant is None else {f: c.fields[f] for f in (grant.fields or ()) if f in c.fields}
    person = c.holder_kind == HOLDER_KIND_PERSON
    return CertificateRead(
        number=c.number, identifier=c.identifier, type_code=c.type_code, type_name=type_name,
        holder_id=c.holder_id if full or not person else (mask_id_number(c.holder_id) or ""),
        holder_kind=c.holder_kind, holder_name=c.holder_name,
        issuer_department=c.issuer_department, issuer_credit_code=c.issuer_credit_code,
        fields=fields if full or (grant is not None and grant.unmasked) else purpose.mask_values(fields),
        issued_on=c.issued_on, valid_until=c.valid_until, application_id=c.application_id,
        status=rules.status_on(c.status, c.valid_until, operations.today()), revoked_at=c.revoked_at,
        revocation_reason=c.revocation_reason, verification_code=c.verification_code if full else None,
        document=SignedDocument(
            content=operations.signed_content(operations.certificate_values(c), type_name),
            signature=c.signature, key_id=c.key_id,
        ) if full else None,
    )


async def _type_names(session: SessionDep) -> dict[str, str]:
    return {t.code: t.name for t in await store.list_types(session)}


@router.get("/certificate-types", summary="The certificate directory (电子证照目录)")
async def list_certificate_types(session: SessionDep) -> list[CertificateTypeRead]:
    return [type_read(t) for t in await store.list_types(session)]


@router.get("/certificate-types/{code}", summary="One certificate type", responses=problem_responses(404))
async def get_certificate_type(code: str, session: SessionDep) -> CertificateTypeRead:
    t = await store.get_type(session, code)
    if t is None:
        raise NotFound(f"No certificate type {code}.")
    return type_read(t)


@router.post(
    "/certificate-types", status_code=201, summary="Add a certificate type (admin)",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_certificate_type(
    body: CertificateTypeCreate, session: SessionDep, _admin: Any = require_roles(ADMIN)
) -> CertificateTypeRead:
    errors = rules.schema_problems(body.field_schema)
    credit = (
        body.issuer_credit_code
        or await items.department_credit_code(session, body.issuer_department)
        or rules.DEPARTMENT_CREDIT_CODES.get(body.issuer_department)
    )
    if credit is None:
        errors.append(FieldError(field="body.issuer_credit_code", rule="required",
                                 message="Unknown department: give its credit code."))
    if errors:
        raise ValidationProblem(errors)
    if await store.get_type(session, body.code):
        raise Conflict(f"Certificate type {body.code} exists already.")
    t = await store.add_type(
        session, code=body.code, name=body.name, issuer_department=body.issuer_department,
        issuer_credit_code=credit, field_schema=body.field_schema, validity_years=body.validity_years,
    )
    await operations.announce_type(session, code=t.code, name=t.name, issuer_department=t.issuer_department,
                                   field_schema=t.field_schema)
    return type_read(t)


@router.get("/certificates/verification-key", summary="The public keys that verify certificate signatures (JWKS)")
async def verification_key(session: SessionDep) -> dict[str, list[dict[str, str]]]:
    return {"keys": [rules.public_jwk(k.kid, k.public_key) for k in await store.verification_keys(session)]}


@router.post(
    "/certificates", status_code=201, summary="Issue an electronic certificate",
    description="Staff of the type's issuing department, or an admin. `Idempotency-Key` makes a retry safe.",
    responses={**problem_responses(401, 403, 404, 409, 422), 201: {"model": CertificateRead}},
)
async def issue_certificate(
    body: CertificateIssue,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    kind = normalise_holder_kind(body.holder_kind)
    if kind is None:
        raise invalid("body.holder_kind", "enum", "111 (citizen ID) or 001 (credit code).")
    holder_id = body.holder_id.strip().upper()
    if problem := holder_problem(holder_id, kind):
        raise invalid("body.holder_id", *problem)

    async def work(session: Any) -> tuple[int, Any]:
        t = await store.get_type(session, body.type_code)
        if t is None:
            raise invalid("body.type_code", "unknown_type", "No such certificate type in the directory.")
        if not acts_for_department(principal, t.issuer_department):
            raise Forbidden(f"Only {t.issuer_department} or an admin issues {t.name}.")
        if errors := rules.field_problems(t.field_schema, body.fields):
            raise ValidationProblem(errors)
        if body.application_id and await store.certificate_for_application(session, body.application_id, t.code):
            raise Conflict("This application already has a certificate of this type.")
        cert = await operations.issue_certificate(
            session, t, holder_id=holder_id, holder_kind=kind, holder_name=body.holder_name, fields=body.fields,
            application_id=body.application_id, issued_by=principal.subject, issued_on=body.issued_on,
        )
        return 201, certificate_read(cert, t.name).model_dump(mode="json")

    return await run_idempotent(
        request, key=idempotency_key, scope=f"datashare:certificates:{principal.subject}",
        payload=body.model_dump(mode="json"), work=work,
    )


def verification_read(cert: Certificate, type_name: str, matches: bool | None, *, code_valid: bool | None = None,
                      show_holder: bool = True) -> VerificationRead:
    return VerificationRead(
        number=cert.number, status=rules.status_on(cert.status, cert.valid_until, operations.today()),
        type_code=cert.type_code, type_name=type_name, issuer=cert.issuer_credit_code,
        issuer_department=cert.issuer_department,
        holder=(mask_id_number(cert.holder_id) or "") if show_holder else None,
        valid_until=cert.valid_until, code_valid=code_valid, holder_matches=matches,
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _check_client_rate(request: Request) -> None:
    """Public verification per client address (OWASP API4): guessing numbers or codes is slowed to a crawl."""
    config = operations.current_config()
    await limiter(request, "verify-client", config.verifications_per_client_per_minute, 60.0).check(
        _client(request), "certificate verifications")


async def _reader_grant(request: Request, session: SessionDep, principal: Principal, *, holder_id: str,
                        type_code: str, application_id: str | None, reason: str | None) -> purpose.Grant:
    """Why a staff member or department system may see a holder's certificates of a type: an application of
    theirs that names the type, or (admin, supervisor) a written reason within the hourly limit."""
    if application_id:
        application = await fetch_application(request, application_id)
        return await operations.grant_for_application(session, principal, application, holder_id=holder_id,
                                                      certificate_type=type_code)
    if purpose.may_look_up_by_reason(principal):
        purpose.check_reason(reason)
        await check_reasoned_lookup(request, principal)
        return purpose.reason_grant()
    raise Forbidden("A holder's certificates are read only for a live application in which your department holds "
                    "an open task (`application_id`); admins and supervisors may give a written `reason`.",
                    slug="purpose-not-established")


@router.get(
    "/certificates/verification", summary="Verify by holder code and type (staff, for a purpose)",
    description="GB/T 36905's second way to verify: holder code + code type + type code, with the reason for use "
    "(用证事由). For staff and department systems only, and purpose-bound like every read: `application_id` of a "
    "live application in which the caller's department holds an open task, whose item names this certificate "
    "type and this holder; or, for admins and supervisors, the written `reason` alone (limited per hour). "
    "Recorded in the holder's access log, refused attempts too.",
    responses=problem_responses(401, 403, 422, 429),
)
async def verify_by_holder(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    holder: Annotated[str, Query(min_length=1, max_length=18, description="ID number or credit code.")],
    holder_kind: Annotated[str, Query(description="111 (citizen ID) or 001 (credit code).")],
    type_code: Annotated[str, Query(min_length=21, max_length=21)],
    reason: Annotated[str, Query(min_length=2, max_length=200, description="用证事由: why you check.")],
    application_id: Annotated[str | None, Query(max_length=64, description="The purpose: a live application.")] = None,
) -> list[VerificationRead]:
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
        await _reader_grant(request, session, principal, holder_id=holder, type_code=type_code,
                            application_id=application_id, reason=reason)
    except Forbidden as refusal:
        return await operations.refuse(session, principal, refusal, action="certificate_verification",  # type: ignore[return-value]
                                       target=target, holder_id=holder, purpose=reason, application_id=application_id)
    certs = [c for c in await store.holder_certificates(session, holder, type_code) if c.holder_kind == kind]
    await operations.log_access(
        session, principal, action="certificate_verification", target=target,
        holder_id=holder, outcome="found" if certs else "no_match", purpose=reason, application_id=application_id,
    )
    return [verification_read(c, t.name, True) for c in certs]


@router.get(
    "/certificates/{number}/verification", summary="Verify a presented certificate (public, minimal)",
    description="""Anyone may check a certificate shown to them: the number alone answers its status, type, issuer
and validity. With `code` — the verification code (核验码) printed on the certificate beside its number — the
answer also says `code_valid`, shows the masked holder, and with `holder` (ID number or credit code) whether
it is that holder's; a `holder` without the code is refused (422): the service never confirms a guessed holder.
A wrong code is recorded in the holder's access log and watched. Limits (429 with Retry-After): per client
address per minute, and per certificate after a few wrong codes per hour. Serials are not sequential.""",
    responses=problem_responses(404, 422, 429),
)
async def verify_certificate(
    number: str,
    request: Request,
    session: SessionDep,
    principal: OptionalPrincipal,
    code: Annotated[str | None, Query(max_length=20, description="核验码 printed on the certificate.")] = None,
    holder: Annotated[str | None, Query(max_length=18, description="The holder code to check (needs `code`).")] = None,
    reason: Annotated[str | None, Query(max_length=200, description="用证事由: why you check.")] = None,
) -> VerificationRead:
    if holder is not None and not code:
        raise invalid("query.code", "required", "Checking a holder needs the certificate's verification code.")
    await _check_client_rate(request)
    cert = await store.get_certificate(session, number)
    if cert is None:
        raise NotFound("No certificate with this number.", slug="certificate-not-found")
    t = await store.get_type(session, cert.type_code)
    type_name = t.name if t else cert.type_code
    if not code:
        return verification_read(cert, type_name, None, show_holder=False)
    # Counted in the access log, so the limit holds across replicas and restarts; once reached, even the right
    # code waits, or guessing on would still find it.
    limit = operations.current_config().failed_verifications_per_certificate_per_hour
    if await access_log.failed_verifications(session, cert.holder_id, f"certificate:{number}",
                                             utcnow() - timedelta(hours=1)) >= limit:
        raise TooManyRequests("Too many wrong verification codes for this certificate; try again in an hour.",
                              headers={"Retry-After": "3600"}, retry_after=3600)
    if not verification_code_matches(cert.verification_code, code):
        await operations.log_access(
            session, principal, action="certificate_verification", target=f"certificate:{number}",
            holder_id=cert.holder_id, outcome="code_mismatch",
            client=operations.client_key(_client(request)) if principal is None else None,
            service="public" if principal is None else None, purpose=reason,
        )
        return verification_read(cert, type_name, None, code_valid=False, show_holder=False)
    matches = None
    if holder is not None:
        matches = holder.strip().upper() == cert.holder_id
        await operations.log_access(
            session, principal, action="certificate_verification", target=f"certificate:{number}",
            holder_id=cert.holder_id, outcome="holder_match" if matches else "holder_mismatch",
            service="public" if principal is None else None, purpose=reason,
        )
    return verification_read(cert, type_name, matches, code_valid=True)


@router.post(
    "/certificates/verify-document", summary="Check a forwarded or printed signed copy",
    description="Valid only if the signature matches the content under a published key and the certificate "
    "is currently valid. An altered copy answers `valid: false` (200), not an error. Limited per client address "
    "(429).",
    responses=problem_responses(422, 429),
)
async def verify_document(body: SignedDocument, request: Request, session: SessionDep) -> DocumentCheck:
    await _check_client_rate(request)
    keys = {k.kid: k for k in await store.verification_keys(session)}
    key = keys.get(body.key_id)
    number = body.content.get("number") if isinstance(body.content.get("number"), str) else None
    if key is None or not rules.signature_is_valid(key.public_key, body.content, body.signature):
        return DocumentCheck(valid=False, signature_valid=False, status=None, number=number,
                             reason="The signature does not match this content (altered or forged).")
    cert = await store.get_certificate(session, number or "")
    if cert is None:
        return DocumentCheck(valid=False, signature_valid=True, status=None, number=number,
                             reason="No certificate with this number.")
    status = rules.status_on(cert.status, cert.valid_until, operations.today())
    return DocumentCheck(valid=status == "valid", signature_valid=True, status=status, number=number,
                         reason=None if status == "valid" else f"The certificate is {status}.")


@router.get(
    "/certificates/{number}", summary="A certificate (its holder in full; others purpose-bound and masked)",
    description="""The holder (token `hid`, `org`, `act.hid`, assurance level 2 or more) reads it in full with its
verification code and signed copy. Staff and department systems read it only for a purpose, recorded in the
holder's access log: the issuing department its own record; others with `application_id` of a live application
in which their department holds an open task and whose item names this certificate type (only the fields the
materials need); admins and supervisors with a written `reason`. They see the holder's ID number and phone or
ID numbers in the fields masked, and no signed copy.""",
    responses=problem_responses(401, 403, 404, 429),
)
async def get_certificate(
    number: str, request: Request, session: SessionDep, principal: CurrentPrincipal,
    application_id: Annotated[str | None, Query(max_length=64, description="The purpose: a live application.")] = None,
    reason: Annotated[str | None, Query(max_length=200, description="Written reason (admin, supervisor).")] = None,
) -> CertificateRead:
    cert = await store.get_certificate(session, number)
    if cert is None:
        raise NotFound("No certificate with this number.", slug="certificate-not-found")
    t = await store.get_type(session, cert.type_code)
    type_name = t.name if t else cert.type_code
    if cert.holder_id in own_holder_ids(principal):
        check_holder_level(principal)
        return certificate_read(cert, type_name)
    if not purpose.is_reader(principal):
        raise Forbidden("Only the holder, the issuing department or staff with a purpose read a certificate.")
    target = f"certificate:{number}"
    grant: purpose.Grant | None = None
    try:
        if principal.department == cert.issuer_department and not application_id:
            basis = "issuer"
        else:
            grant = await _reader_grant(request, session, principal, holder_id=cert.holder_id,
                                        type_code=cert.type_code, application_id=application_id, reason=reason)
            basis = grant.basis
    except Forbidden as refusal:
        return await operations.refuse(session, principal, refusal, action="certificate_read", target=target,  # type: ignore[return-value]
                                       holder_id=cert.holder_id, application_id=application_id, purpose=reason)
    await operations.log_access(session, principal, action="certificate_read", target=target,
                                holder_id=cert.holder_id, outcome="found", application_id=application_id,
                                purpose=reason if basis == "reason" else basis)
    return certificate_read(cert, type_name, full=False,
                            grant=grant if grant is not None and grant.fields is not None else None)


@router.post(
    "/certificates/{number}/revocation", summary="Revoke a certificate with a reason",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def revoke_certificate(
    number: str, body: Revocation, session: SessionDep, principal: CurrentPrincipal
) -> CertificateRead:
    cert = await store.get_certificate(session, number)
    if cert is None:
        raise NotFound("No certificate with this number.", slug="certificate-not-found")
    if not acts_for_department(principal, cert.issuer_department):
        raise Forbidden("Only the issuing department or an admin revokes a certificate.")
    at = utcnow()
    if not await store.mark_revoked(session, number, body.reason, at):
        raise Conflict("The certificate is revoked already.", slug="already-revoked")
    await session.refresh(cert)
    await publish(session, CERTIFICATE_REVOKED, subject=cert.number,
                  data=CertificateRevoked(certificate_number=cert.number, reason=body.reason, revoked_at=at))
    t = await store.get_type(session, cert.type_code)
    return certificate_read(cert, t.name if t else cert.type_code)


@router.get(
    "/me/certificates", summary="My certificates",
    description="The holder's own (token `hid`, `org`, or the principal's under a delegation; assurance level 2 "
    "or more). A window clerk may pass `holder_id` with the `application_id` their window is accepting and which "
    "names that holder; that read is logged, and the list comes masked and without signed copies.",
    responses=problem_responses(401, 403),
)
async def my_certificates(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    holder_id: Annotated[str | None, Query(max_length=18)] = None,
    application_id: Annotated[str | None, Query(max_length=64, description="The application being accepted.")] = None,
) -> Page[CertificateRead]:
    holders = own_holder_ids(principal)
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
                application = await fetch_application(request, application_id)
                if purpose.task_basis(principal, application, ()) != "window" or not purpose.holder_in_application(
                        holder_id, application):
                    raise Forbidden("The application does not name this holder.", slug="holder-not-in-application")
            except Forbidden as exc:
                refusal = exc
        if refusal is not None:
            return await operations.refuse(session, principal, refusal, action="certificate_list",  # type: ignore[return-value]
                                           target="certificates", holder_id=holder_id, application_id=application_id)
        holders, full = {holder_id}, False
        await operations.log_access(session, principal, action="certificate_list", target="certificates",
                                    holder_id=holder_id, outcome="listed", application_id=application_id,
                                    purpose="window")
    elif holders:
        check_holder_level(principal)
    if not holders:
        raise Forbidden("This token names no holder (hid or org).")
    rows, cursor = await paginate(
        session, store.holder_certificates_query(holders), key_columns=[Certificate.number], params=page,
        key_of=lambda c: [c.number],
    )
    names = await _type_names(session)
    return Page(items=[certificate_read(c, names.get(c.type_code, c.type_code), full=full) for c in rows],
                next_cursor=cursor)
