"""Routes of the certificate directory (电子证照目录) and electronic certificates (电子证照)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.datashare import service
from services.datashare.api.common import (
    PUBLIC,
    TOKEN_OPTIONAL,
    ContextDep,
    created,
    etag_of,
    render,
    too_many,
    with_etag,
)
from services.datashare.domain.identifiers import TYPE_CODE
from shared.auth import ADMIN, CurrentPrincipal, OptionalPrincipal, Principal, require_roles
from shared.bounds import BoundedDate
from shared.db import SessionDep
from shared.http_errors import problem_responses
from shared.idempotency import run_idempotent
from shared.pagination import Page, PageDep

router = APIRouter(tags=["certificates"])


class CertificateStatus(StrEnum):
    """A certificate's status today (Asia/Shanghai)."""

    VALID = "valid"
    REVOKED = "revoked"
    EXPIRED = "expired"


class HolderKind(StrEnum):
    """GB/T 36905 holder code types: `111` citizen ID number, `001` unified social credit code."""

    PERSON = "111"
    ORGANISATION = "001"


#: What a request may name a holder kind by: the code or its word.
HOLDER_KIND_INPUT: dict[str, Any] = {"enum": ["111", "001", "person", "organisation"]}


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
        "type_code": "11441781MB0000001A001", "holder_id": "92445381MA4W00000P", "holder_kind": "001",
        "holder_name": "罗定市一味餐饮店", "fields": {"name": "罗定市一味餐饮店", "legal_representative": "李明"},
    }]})

    type_code: str = Field(min_length=21, max_length=21, description="A type of the directory.")
    holder_id: str = Field(min_length=1, max_length=18,
                           description="Citizen ID number (holder_kind 111) or credit code (001).")
    holder_kind: str = Field(description="`111`/`person` or `001`/`organisation`.",
                             json_schema_extra=HOLDER_KIND_INPUT)
    holder_name: str | None = Field(default=None, max_length=200)
    fields: dict[str, Any] = Field(default_factory=dict, description="Checked against the type's schema.")
    application_id: str | None = Field(default=None, max_length=64)
    issued_on: BoundedDate | None = None


class SignedDocument(BaseModel):
    """A forwarded or printed copy: the signed content, its signature and the key that made it."""

    content: dict[str, Any]
    signature: str = Field(max_length=200)
    key_id: str = Field(max_length=100)


class CertificateRead(BaseModel):
    number: str
    identifier: str
    type_code: str
    type_name: str
    holder_id: str
    holder_kind: HolderKind
    holder_name: str | None
    issuer_department: str
    issuer_credit_code: str
    fields: dict[str, Any]
    issued_on: date
    valid_until: date | None
    application_id: str | None
    status: CertificateStatus = Field(description="valid, revoked or expired (today, Asia/Shanghai).")
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
    status: CertificateStatus
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
    status: CertificateStatus | None = Field(description="Current status of the certificate, when the signature "
                                             "holds.")
    number: str | None
    reason: str | None = None


class PublicKey(BaseModel):
    """An Ed25519 public key as a JWK (RFC 8037)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    use: str | None = None
    alg: str | None = None


class KeySet(BaseModel):
    keys: list[PublicKey]


class Revocation(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "经营者申请注销"}]})

    reason: str = Field(min_length=2, max_length=500)


#: Who issues and revokes: staff or the system of the type's issuing department, or an admin (checked against the
#: department in `service.certificates`).
ISSUERS: dict[str, Any] = {"x-yimen-roles": ["admin", "department_reviewer", "department_system"]}


def type_read(t: Any) -> CertificateTypeRead:
    return CertificateTypeRead(
        code=t.code, name=t.name, issuer_department=t.issuer_department, issuer_credit_code=t.issuer_credit_code,
        field_schema=t.field_schema, validity_years=t.validity_years,
    )


def certificate_read(view: service.CertificateView) -> CertificateRead:
    return CertificateRead.model_validate(asdict(view))


@router.get("/certificate-types", summary="The certificate directory (电子证照目录)", openapi_extra=PUBLIC,
            response_model=list[CertificateTypeRead])
async def list_certificate_types(session: SessionDep) -> list[CertificateTypeRead]:
    return [type_read(t) for t in await service.certificates.list_types(session)]


@router.get("/certificate-types/{code}", summary="One certificate type", responses=problem_responses(404),
            openapi_extra=PUBLIC, response_model=CertificateTypeRead)
async def get_certificate_type(code: str, session: SessionDep) -> CertificateTypeRead:
    return type_read(await service.certificates.get_type(session, code))


@router.post(
    "/certificate-types", status_code=201, summary="Add a certificate type (admin)", response_model=CertificateTypeRead,
    description="Catalog is told the fields the type defines and requires (`yimen.datashare.certificate_type.upserted`).",
    responses={**problem_responses(401, 403, 409, 422), **created(CertificateTypeRead, "The type was added.")},
)
async def create_certificate_type(body: CertificateTypeCreate, session: SessionDep, response: Response,
                                  _admin: Principal = require_roles(ADMIN)) -> CertificateTypeRead:
    t = await service.certificates.create_type(
        session, code=body.code, name=body.name, issuer_department=body.issuer_department,
        issuer_credit_code=body.issuer_credit_code, field_schema=body.field_schema, validity_years=body.validity_years)
    read = type_read(t)
    response.headers["ETag"] = etag_of(read.model_dump_json().encode())
    return read


@router.get("/certificates/verification-key", summary="The public keys that verify certificate signatures (JWKS)",
            openapi_extra=PUBLIC, response_model=KeySet)
async def verification_key(session: SessionDep) -> KeySet:
    return KeySet.model_validate({"keys": await service.certificates.verification_keys(session)})


@router.post(
    "/certificates", status_code=201, summary="Issue an electronic certificate", response_model=CertificateRead,
    description="Staff of the type's issuing department, or an admin. `Idempotency-Key` makes a retry safe (a "
    "repeat answers the first answer with `Idempotent-Replayed: true`). Publishes "
    "`yimen.datashare.certificate.issued`.",
    responses={**problem_responses(401, 403, 404, 409, 422),
               **created(CertificateRead, "The certificate was issued.", idempotent=True)},
    openapi_extra=ISSUERS,
)
async def issue_certificate(
    body: CertificateIssue,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> Any:
    service.certificates.issue_holder(body.holder_id, body.holder_kind)  # a bad holder is a 422 before any key

    async def work(session: Any) -> tuple[int, Any]:
        view = await service.certificates.issue(
            session, principal, type_code=body.type_code, holder_id=body.holder_id, holder_kind=body.holder_kind,
            holder_name=body.holder_name, fields=body.fields, application_id=body.application_id,
            issued_on=body.issued_on)
        return 201, certificate_read(view).model_dump(mode="json")

    return with_etag(await run_idempotent(
        request, key=idempotency_key, scope=f"datashare:certificates:{principal.subject}",
        payload=body.model_dump(mode="json"), work=work,
    ))


@router.get(
    "/certificates/verification", summary="Verify by holder code and type (staff, for a purpose)",
    response_model=list[VerificationRead],
    description="GB/T 36905's second way to verify: holder code + code type + type code, with the reason for use "
    "(用证事由). For staff and department systems only, and purpose-bound like every read: `application_id` of a "
    "live application in which the caller's department holds an open task, whose item names this certificate "
    "type and this holder; or, for admins and supervisors, the written `reason` alone (limited per hour). "
    "Recorded in the holder's access log, refused attempts too.",
    responses={**problem_responses(401, 403, 422), **too_many()},
)
async def verify_by_holder(
    ctx: ContextDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    holder: Annotated[str, Query(min_length=1, max_length=18, description="ID number or credit code.")],
    holder_kind: Annotated[str, Query(description="111 (citizen ID) or 001 (credit code).",
                                      json_schema_extra=HOLDER_KIND_INPUT)],
    type_code: Annotated[str, Query(min_length=21, max_length=21)],
    reason: Annotated[str, Query(min_length=2, max_length=200, description="用证事由: why you check.")],
    application_id: Annotated[str | None, Query(max_length=64, description="The purpose: a live application.")] = None,
) -> Any:
    result = await service.certificates.verify_by_holder(
        ctx, session, principal, holder=holder, holder_kind=holder_kind, type_code=type_code, reason=reason,
        application_id=application_id)
    if isinstance(result, list):
        return [VerificationRead.model_validate(asdict(v)) for v in result]
    return render(result)


@router.get(
    "/certificates/{number}/verification", summary="Verify a presented certificate (public, minimal)",
    response_model=VerificationRead, openapi_extra=TOKEN_OPTIONAL,
    description="""Anyone may check a certificate shown to them, without a token: the number alone answers its
status, type, issuer and validity. With `code` — the verification code (核验码) printed on the certificate beside
its number — the answer also says `code_valid`, shows the masked holder, and with `holder` (ID number or credit
code) whether it is that holder's; a `holder` without the code is refused (422): the service never confirms a
guessed holder. A wrong code is recorded in the holder's access log and watched. Limits (429 with Retry-After):
per client address per minute, and per certificate after a few wrong codes per hour. Serials are not sequential.
A token, when sent, names the checker in the holder's access log.""",
    responses={**problem_responses(404, 422), **too_many()},
)
async def verify_certificate(
    number: str,
    ctx: ContextDep,
    session: SessionDep,
    principal: OptionalPrincipal,
    code: Annotated[str | None, Query(max_length=20, description="核验码 printed on the certificate.")] = None,
    holder: Annotated[str | None, Query(max_length=18, description="The holder code to check (needs `code`).")] = None,
    reason: Annotated[str | None, Query(max_length=200, description="用证事由: why you check.")] = None,
) -> VerificationRead:
    v = await service.certificates.verify(ctx, session, principal, number, code=code, holder=holder, reason=reason)
    return VerificationRead.model_validate(asdict(v))


@router.post(
    "/certificates/verify-document", summary="Check a forwarded or printed signed copy", response_model=DocumentCheck,
    description="Valid only if the signature matches the content under a published key and the certificate "
    "is currently valid. An altered copy answers `valid: false` (200), not an error. Limited per client address "
    "(429). No token needed.",
    responses={**problem_responses(422), **too_many()}, openapi_extra=PUBLIC,
)
async def verify_document(body: SignedDocument, ctx: ContextDep, session: SessionDep) -> DocumentCheck:
    v = await service.certificates.verify_document(ctx, session, content=body.content, signature=body.signature,
                                                   key_id=body.key_id)
    return DocumentCheck.model_validate(asdict(v))


@router.get(
    "/certificates/{number}", summary="A certificate (its holder in full; others purpose-bound and masked)",
    response_model=CertificateRead,
    description="""The holder (token `hid`, `org`, `act.hid`, assurance level 2 or more) reads it in full with its
verification code and signed copy. Staff and department systems read it only for a purpose, recorded in the
holder's access log: the issuing department its own record; others with `application_id` of a live application
in which their department holds an open task and whose item names this certificate type (only the fields the
materials need); admins and supervisors with a written `reason`. They see the holder's ID number and phone or
ID numbers in the fields masked, and no signed copy.""",
    responses={**problem_responses(401, 403, 404), **too_many()},
)
async def get_certificate(
    number: str, ctx: ContextDep, session: SessionDep, principal: CurrentPrincipal,
    application_id: Annotated[str | None, Query(max_length=64, description="The purpose: a live application.")] = None,
    reason: Annotated[str | None, Query(max_length=200, description="Written reason (admin, supervisor).")] = None,
) -> Any:
    result = await service.certificates.read(ctx, session, principal, number, application_id=application_id,
                                             reason=reason)
    return certificate_read(result) if isinstance(result, service.CertificateView) else render(result)


@router.post(
    "/certificates/{number}/revocation", summary="Revoke a certificate with a reason", response_model=CertificateRead,
    description="The issuing department or an admin. Publishes `yimen.datashare.certificate.revoked`.",
    responses=problem_responses(401, 403, 404, 409, 422), openapi_extra=ISSUERS,
)
async def revoke_certificate(number: str, body: Revocation, session: SessionDep,
                             principal: CurrentPrincipal) -> CertificateRead:
    return certificate_read(await service.certificates.revoke(session, principal, number, reason=body.reason))


@router.get(
    "/me/certificates", summary="My certificates", response_model=Page[CertificateRead],
    description="The holder's own (token `hid`, `org`, or the principal's under a delegation; assurance level 2 "
    "or more). A window clerk may pass `holder_id` with the `application_id` their window is accepting and which "
    "names that holder; that read is logged, and the list comes masked and without signed copies.",
    responses=problem_responses(401, 403, 422),
)
async def my_certificates(
    ctx: ContextDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    holder_id: Annotated[str | None, Query(max_length=18)] = None,
    application_id: Annotated[str | None, Query(max_length=64, description="The application being accepted.")] = None,
) -> Any:
    result = await service.certificates.list_of_holder(ctx, session, principal, page, holder_id=holder_id,
                                                       application_id=application_id)
    if isinstance(result, tuple):
        views, cursor = result
        return Page[CertificateRead](items=[certificate_read(v) for v in views], next_cursor=cursor)
    return render(result)

