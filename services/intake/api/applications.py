"""Routes of an application's life: draft, materials, check (一次性告知), submit, acceptance, withdrawal,
corrections, delivery, visits."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Request, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from services.intake import cases
from services.intake.api import deps
from services.intake.api import schemas as s
from services.intake.domain import assurance, completeness, delivery, fees, forms, uploads, walkin
from services.intake.domain.applicants import NotAnApplicant, applicant_of
from services.intake.domain.completeness import Finding
from services.intake.domain.lifecycle import Action, Status
from services.intake.domain.reuse import match_materials
from services.intake.events import contracts as ev
from services.intake.store import repository as repo
from services.intake.store.tables import Application
from shared.auth import WINDOW_CLERK, CurrentPrincipal, Principal
from shared.db import Database, SessionDep
from shared.errors import (
    FieldError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    Problem,
    ValidationProblem,
    invalid,
)
from shared.http_errors import problem_responses
from shared.idempotency import run_idempotent
from shared.messaging import publish
from shared.ratelimit import limiter_for
from shared.types import utcnow

router = APIRouter(tags=["applications"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                               description="Repeat with the same key to get the same answer.")]


def _problems(findings: list[Finding], detail: str) -> ValidationProblem:
    return ValidationProblem([FieldError(**f.as_dict()) for f in findings], detail=detail)


def _delivery_values(item_payload: dict[str, Any], d: s.Delivery | None, service_point: str) -> dict[str, Any]:
    d = d or s.Delivery()
    point = (d.service_point or service_point) if d.method == "pickup" else None
    findings = delivery.check_choice(item_payload, method=d.method, point=point, address=d.address)
    if findings:
        raise _problems(findings, "The delivery choice is not possible for this item.")
    return {"delivery_method": d.method, "delivery_point": point,
            "delivery_address": d.address if d.method == "post" else None}


def _exemption_values(item_payload: dict[str, Any], code: str | None) -> dict[str, Any]:
    if (f := fees.check_claim(item_payload, code)) is not None:
        raise _problems([f], "The fee exemption is not one this item lists.")
    return {"fee_exemption": code, "fee_exemption_state": "claimed" if code else None}


async def _create_draft(session: AsyncSession, principal: Principal, body: s.ApplicationCreate) -> Application:
    item = await repo.current_item(session, body.item_code)
    if item is None:
        raise invalid("item_code", "unknown_item", "No published, unwithdrawn item has this code.")
    try:
        applicant = applicant_of(principal, body.on_behalf_of)
    except NotAnApplicant as exc:
        raise Forbidden(str(exc)) from exc
    refusal = await deps.delegation_refusal(session, principal, applicant_id=applicant.id, item_code=item.code)
    if refusal:
        raise Forbidden(refusal, slug="delegation")
    findings = completeness.check_channel_and_point(item.payload, channel=body.channel, service_point=body.service_point)
    if (f := completeness.check_audience(item.payload, applicant.kind)) is not None:
        findings.append(f)
    findings += forms.check_shape(item.payload, body.form)
    if findings:
        raise _problems(findings, "The item cannot be applied for this way.")
    app = await repo.add_application(
        session, item_code=item.code, item_version=item.version, item_name=item.name, department=item.department,
        status=Status.DRAFT.value, applicant_kind=applicant.kind, applicant_id=applicant.id,
        applicant_holder_id=applicant.holder_id, applicant_name=applicant.name, agent_id=applicant.agent_id,
        created_by=principal.subject, channel=body.channel, service_point=body.service_point, form=body.form,
        **_delivery_values(item.payload, body.delivery, body.service_point),
        **_exemption_values(item.payload, body.fee_exemption),
    )
    await cases.note(session, app, "创建申请草稿", unit=body.service_point)
    return app


@router.post(
    "/applications", status_code=201, response_model=s.ApplicationRead,
    summary="Start a draft application (办件) for the item's current version",
    description="The applicant comes from the token: the person, the organisation of an agent (`org`), or the "
                "principal of a delegation (`act`). Channel and service point must be ones the item offers.",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_application(
    body: s.ApplicationCreate, request: Request, principal: CurrentPrincipal, idempotency_key: IdempotencyKey = None
) -> Any:
    async def work(session: AsyncSession) -> tuple[int, Any]:
        app = await _create_draft(session, principal, body)
        return 201, (await deps.application_read(session, app, principal)).model_dump(mode="json")

    return await run_idempotent(request, key=idempotency_key, scope=f"intake:create:{principal.subject}",
                                payload=body.model_dump(mode="json"), work=work)


@router.get(
    "/applications/{application_id}", response_model=s.ApplicationRead,
    summary="An application with its materials and timeline (事中告知)",
    responses=problem_responses(401, 404),
)
async def get_application(application_id: s.ApplicationId, response: Response, session: SessionDep,
                          principal: CurrentPrincipal) -> s.ApplicationRead:
    app = await deps.load_visible(session, principal, application_id)
    response.headers["ETag"] = deps.etag(app)
    return await deps.application_read(session, app, principal)


@router.patch(
    "/applications/{application_id}", response_model=s.ApplicationRead,
    summary="Change a draft's form fields or delivery choice (If-Match: the ETag of the last read)",
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def update_application(
    application_id: s.ApplicationId, body: s.ApplicationUpdate, response: Response, session: SessionDep,
    principal: CurrentPrincipal,
    if_match: Annotated[str | None, Header(alias="If-Match", description="The ETag of the last read.")] = None,
) -> s.ApplicationRead:
    app = await deps.load_as_applicant(session, principal, application_id, for_update=True, filing_clerk=True)
    if if_match is None:
        raise PreconditionRequired("Send If-Match with the ETag of your last read, so no change is lost.")
    if if_match.strip() not in (deps.etag(app), "*"):
        raise PreconditionFailed("The application changed since you read it; read it again.")
    cases.transition(app.status, Action.EDIT)
    values: dict[str, Any] = {}
    if body.form is not None:
        # A null clears a field (also how a key an older item version had is dropped).
        merged = {k: v for k, v in {**(app.form or {}), **body.form}.items() if v is not None}
        item = await cases.item_of(session, app)
        # Checked against the version the draft cites: unknown keys, over-long values, a bounded whole (#13).
        if problems := forms.check_shape(item.payload, merged):
            raise _problems(problems, "The form does not fit the item's application form.")
        values["form"] = merged
    if body.delivery is not None or body.fee_exemption is not None:
        item = await cases.item_of(session, app)
        if body.delivery is not None:
            values.update(_delivery_values(item.payload, body.delivery, app.service_point))
        if body.fee_exemption is not None:
            values.update(_exemption_values(item.payload, body.fee_exemption))
    if values:
        await repo.move(session, app, from_states=[app.status], **values)
    response.headers["ETag"] = deps.etag(app)
    return await deps.application_read(session, app, principal)


# --- materials ---------------------------------------------------------------------------------------------------

_MATERIAL_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object", "required": ["material_code", "file"],
                    "properties": {
                        "material_code": {"type": "string"},
                        "file": {"type": "string", "format": "binary"},
                        "sha256": {"type": "string", "description": "Optional; must match the file's SHA-256."},
                    },
                }
            },
            "application/json": {"schema": s.MaterialReference.model_json_schema()},
        },
    }
}


async def _upload(request: Request, session: AsyncSession, app: Application, item_payload: dict[str, Any]) -> Any:
    try:
        form = await request.form(max_files=1, max_fields=10)
    except Exception as exc:  # malformed multipart or too many parts
        raise invalid("body", "multipart", f"The upload is not a valid multipart form: {exc}.") from exc
    code = form.get("material_code")
    file = form.get("file")
    declared = form.get("sha256")
    errs = []
    if not isinstance(code, str) or not code:
        errs.append(FieldError(field="material_code", rule="required", message="Name the material (material_code)."))
    if not isinstance(file, UploadFile):
        errs.append(FieldError(field="file", rule="required", message="Attach the file as the `file` part."))
    if errs:
        raise ValidationProblem(errs)
    assert isinstance(code, str) and isinstance(file, UploadFile)
    material = completeness.material(item_payload, code)
    if material is None:
        raise invalid("material_code", "unknown_material", "This item asks for no material with this code.")
    limit = uploads.max_bytes(material)
    data = await file.read(limit + 1)
    digest = hashlib.sha256(data).hexdigest()
    filename = uploads.safe_name(file.filename)
    findings = [f for f in (
        uploads.check_type(material, filename, data[:16]),
        uploads.check_size(material, len(data)),
        uploads.check_hash(declared if isinstance(declared, str) else None, digest),
    ) if f is not None]
    if any(f.rule == "max_bytes" for f in findings):
        raise PayloadTooLarge(f"“{material.get('name', code)}”的文件不能超过 {limit} 字节。",
                              errors=[FieldError(**f.as_dict()) for f in findings])
    if findings:
        raise _problems(findings, "The file is refused.")
    key = f"{app.id}/{digest}"
    await deps.file_store(request).put(key, data)
    return await repo.put_attachment(
        session, application_id=app.id, material_code=code, kind="upload", filename=filename,
        content_type=uploads.detected_type(data), size=len(data), sha256=digest, storage_key=key,
    )


async def _reference(request: Request, session: AsyncSession, principal: Principal, app: Application,
                     item_payload: dict[str, Any]) -> Any:
    try:
        body = s.MaterialReference.model_validate_json(await request.body())
    except ValidationError as exc:
        raise ValidationProblem([
            FieldError(field=".".join(str(p) for p in e["loc"]) or "body", rule=str(e["type"]), message=e["msg"])
            for e in exc.errors()
        ]) from exc
    material = completeness.material(item_payload, body.material_code)
    if material is None:
        raise invalid("material_code", "unknown_material", "This item asks for no material with this code.")
    name = material.get("name", body.material_code)
    if body.kind == "reuse":
        earlier = await repo.get_attachment(session, body.attachment_id) if body.attachment_id else None
        if earlier is None:
            raise invalid("attachment_id", "unknown_attachment", "Name an attachment of one of your applications.")
        await deps.load_as_applicant(session, principal, earlier.application_id)
        if earlier.kind == "commitment":
            raise invalid("attachment_id", "commitment_not_reusable", "A commitment is made anew for each application.")
        return await repo.put_attachment(
            session, application_id=app.id, material_code=body.material_code, kind=earlier.kind,
            reference=earlier.reference, filename=earlier.filename, content_type=earlier.content_type,
            size=earlier.size, sha256=earlier.sha256, storage_key=earlier.storage_key,
            details={**(earlier.details or {}),
                     "reused_from": {"application_id": earlier.application_id, "attachment_id": earlier.id}},
        )
    if body.kind == "commitment":
        if not material.get("commitment_allowed"):
            raise invalid("kind", "commitment_not_allowed", f"“{name}”不适用告知承诺，请提交材料。")
        statement = body.statement or f"申请人承诺“{name}”所述情况真实，并愿承担不实承诺的法律责任。"
        return await repo.put_attachment(
            session, application_id=app.id, material_code=body.material_code, kind="commitment",
            details={"statement": statement, "committed_by": principal.subject, "committed_at": utcnow().isoformat()},
        )
    if material.get("source") not in completeness.REFERENCE_SOURCES:
        raise invalid("kind", "certificate_ref_not_allowed",
                      f"“{name}”不是政府部门核发的证照，不能只填证照编号。")
    if not body.reference or not body.reference.strip():
        raise invalid("reference", "required", "Give the certificate number.")
    return await repo.put_attachment(
        session, application_id=app.id, material_code=body.material_code, kind="certificate_ref",
        reference=body.reference.strip(), details={"certificate_type": material.get("certificate_type")},
    )


@router.post(
    "/applications/{application_id}/materials", status_code=201, response_model=s.AttachmentRead,
    summary="Give a material: upload a file, cite a certificate number, or make a written commitment (告知承诺)",
    description="`multipart/form-data` with `material_code`, `file` and optionally `sha256` uploads a file (type "
                "and size as the material allows). `application/json` gives a certificate reference "
                "(`kind=certificate_ref`) or a commitment (`kind=commitment`, where the item allows it). A new "
                "material replaces what was given before for the same code.",
    responses=problem_responses(401, 403, 404, 409, 413, 415, 422),
    openapi_extra=_MATERIAL_BODY,
)
async def add_material(application_id: s.ApplicationId, request: Request, session: SessionDep,
                       principal: CurrentPrincipal) -> s.AttachmentRead:
    app = await deps.load_as_applicant(session, principal, application_id, for_update=True, filing_clerk=True)
    cases.transition(app.status, Action.EDIT)
    item = await cases.item_of(session, app)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        att = await _upload(request, session, app, item.payload)
    elif ctype.startswith("application/json"):
        att = await _reference(request, session, principal, app, item.payload)
    else:
        raise Problem("Send multipart/form-data (a file) or application/json (a reference or commitment).",
                      status=415, slug="unsupported-media-type", title="Unsupported media type")
    await repo.move(session, app, from_states=[app.status])  # touch updated_at
    return deps.attachment_read(att)


# --- check and submit --------------------------------------------------------------------------------------------


async def _fetch_step(request: Request, principal: Principal, application_id: str) -> dict[str, str]:
    """Fetch from datashare what it holds, in a transaction of its own so that what was found stays attached
    even when the submission that follows is refused."""
    db: Database = request.app.state.db
    async with db.transaction() as session:
        # The row lock makes concurrent checks fetch once: the second sees what the first attached. Datashare's
        # confirming read of the application is a plain read and does not wait for it.
        app = await deps.load_visible(session, principal, application_id, for_update=True)
        # Datashare answers the holder's own token, or a window clerk handling the case (通办); other staff
        # checking a case do not fetch.
        fetcher = deps.is_applicant(principal, app) or principal.has(WINDOW_CLERK)
        item = await cases.item_of(session, app)
        if deps.is_applicant(principal, app) and assurance.shortfall(item.payload, principal.applicant_assurance_level):
            return {}  # nothing is fetched for an applicant whose identity is not proven enough
        if not fetcher or app.status not in (
            Status.DRAFT, Status.RETURNED, Status.AWAITING_CORRECTION
        ):
            return {}
        atts = await repo.attachments(session, app.id)
        results = await cases.fetch_from_datashare(
            request.app.state.http, deps.datashare_url(request), request.headers.get("authorization"), app, item, atts
        )
        return await cases.record_fetched(session, app, results)


async def _walk_in_findings(session: AsyncSession, app: Application) -> list[Finding]:
    """A walk-in (窗口代录) also needs the person's consent on record before it is submitted."""
    if app.channel != "window" or (row := await repo.walk_in(session, app.id)) is None:
        return []
    return [f] if (f := walkin.consent_finding(row.consent_kind)) else []


async def _material_statuses(session: AsyncSession, principal: Principal, app: Application,
                             item_payload: dict[str, Any], atts: Any) -> list[s.MaterialStatus]:
    kinds = {a.material_code: a.kind for a in atts}
    reusable: dict[str, dict[str, Any]] = {}
    missing = [m for m in completeness.materials_of(item_payload) if m["code"] not in kinds]
    if missing and deps.is_applicant(principal, app):
        # The recent history is where a reusable material is; the full search is `GET /me/prefill`.
        earlier = await cases.earlier_of(session, principal, exclude=app.id, limit=20)
        reusable = {r["material_code"]: r for r in match_materials({"materials": missing}, earlier)}
    return [
        s.MaterialStatus(code=m["code"], name=m.get("name", m["code"]), necessity=m.get("necessity", "required"),
                         source=m.get("source"), provided=kinds.get(m["code"]),
                         reusable=s.PrefillMaterial(**reusable[m["code"]]) if m["code"] in reusable else None)
        for m in completeness.materials_of(item_payload)
    ]


@router.get(
    "/applications/{application_id}/materials/{attachment_id}/file",
    summary="Download an uploaded file (the applicant, and staff who may read the case)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **problem_responses(401, 404)},
)
async def download_material(application_id: s.ApplicationId, attachment_id: s.RowId, request: Request,
                            session: SessionDep, principal: CurrentPrincipal) -> Response:
    app = await deps.load_visible(session, principal, application_id)
    att = await repo.get_attachment(session, attachment_id)
    if att is None or att.application_id != app.id or not att.storage_key:
        raise NotFound("No uploaded file with this id in this application.")
    data = await deps.file_store(request).get(att.storage_key)
    name = quote(uploads.safe_name(att.filename or att.material_code))
    # Served as what the bytes are, never as what the uploader declared (files kept before this rule included).
    return Response(data, media_type=uploads.detected_type(data), headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{name}", "ETag": f'"{att.sha256}"',
        "X-Content-Type-Options": "nosniff"})


@router.post(
    "/applications/{application_id}/check", response_model=s.CheckResult,
    summary="The one-time notice (一次性告知): everything missing or invalid, at once",
    description="Materials datashare holds (certificates, registry records) are fetched now and attached; what "
                "it cannot give is listed so the applicant may upload it instead.",
    responses=problem_responses(401, 404),
)
async def check_application(application_id: s.ApplicationId, request: Request, principal: CurrentPrincipal) -> s.CheckResult:
    failures = await _fetch_step(request, principal, application_id)
    db: Database = request.app.state.db
    async with db.transaction() as session:
        app = await deps.load_visible(session, principal, application_id)
        item = await cases.item_of(session, app)
        findings, atts = await cases.completeness_findings(session, app, item, failures)
        if item.withdrawn_at is not None:
            findings.insert(0, Finding("item_version", "item_withdrawn", "此事项版本已撤销，请按现行版本重新申请。"))
        if deps.is_applicant(principal, app) and (
                low := assurance.shortfall(item.payload, principal.applicant_assurance_level)):
            findings.insert(0, Finding("applicant.assurance_level", "assurance_level_too_low", low.message))
        findings += await _walk_in_findings(session, app)
        if app.status in (Status.DRAFT, Status.RETURNED, Status.AWAITING_CORRECTION):
            await repo.move(session, app, from_states=[app.status], notice=[f.as_dict() for f in findings])
        return s.CheckResult(application_id=app.id, complete=not findings,
                             problems=[s.Problem(**f.as_dict()) for f in findings],
                             materials=await _material_statuses(session, principal, app, item.payload, atts))


@router.post(
    "/applications/{application_id}/submit", response_model=s.ApplicationRead,
    summary="Submit: check, receipt number (办件编号), and automatic acceptance where the item is fully online",
    description="The applicant's identity assurance level (token claim `level`; under a delegation the lower of "
                "agent's and principal's) must reach the item's `min_assurance_level` (default 2), else 403 "
                "`assurance-level-too-low` with `required_level`, `current_level` and how to rise; nothing is "
                "fetched for a refused applicant. "
                "Runs the completeness check first; an incomplete application is refused with every problem "
                "listed (422). Send `Idempotency-Key` so that a double tap makes one submission. Receipt numbers "
                "are `<item code><yyyyMMdd><4-digit serial per item and day>`; the 6-digit `verification_code` "
                "opens the public status query.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def submit_application(application_id: s.ApplicationId, request: Request, principal: CurrentPrincipal,
                             idempotency_key: IdempotencyKey = None) -> Any:
    failures: dict[str, str] = {}

    async def fetch() -> None:
        # Only the request that claimed the Idempotency-Key gets here: duplicates are answered from the key,
        # so they neither count toward the applicant's rate limit nor call datashare again.
        limits = request.app.state.settings.platform
        await limiter_for(request.app.state, "submit", limits.submit_rate_per_minute).check(
            principal.subject, "submissions")
        # Too low an assurance level is refused before anything is fetched for the applicant.
        async with request.app.state.db.transaction() as session:
            app = await deps.load_as_applicant(session, principal, application_id, filing_clerk=True)
            cases.refuse_if_assurance_too_low(await cases.item_of(session, app), principal,
                                              await deps.applicant_level(session, principal, app))
        failures.update(await _fetch_step(request, principal, application_id))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        app = await deps.load_as_applicant(session, principal, application_id, for_update=True, filing_clerk=True)
        cases.transition(app.status, Action.SUBMIT)
        item = await cases.item_of(session, app)
        cases.refuse_if_assurance_too_low(item, principal, await deps.applicant_level(session, principal, app))
        cases.refuse_if_withdrawn(item)
        findings, _ = await cases.completeness_findings(session, app, item, failures)
        findings += await _walk_in_findings(session, app)
        if findings:
            raise _problems(findings, "一次性告知：申请材料或表单尚不齐全，请按下列各项补齐后再提交。")
        await cases.submit(session, app, item)
        return 200, (await deps.application_read(session, app, principal)).model_dump(mode="json")

    # The key is the caller's: reusing it for another application is the "different body" case (422).
    return await run_idempotent(request, key=idempotency_key, scope=f"intake:submit:{principal.subject}",
                                payload={"application_id": application_id}, work=work, prepare=fetch)


# --- acceptance at the window ------------------------------------------------------------------------------------


@router.post(
    "/applications/{application_id}/accept", response_model=s.ApplicationRead,
    summary="Accept (受理) a submitted application; the clerk is recorded as first responder (首问负责)",
    description="An immediate item (即办件) is decided here: it goes on to its payment notice (if a fee is due) "
                "and its hand-over. A fee exemption the applicant claimed is granted unless the body gives "
                "`refuse_fee_exemption` with the reason.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def accept_application(application_id: s.ApplicationId, session: SessionDep, principal: CurrentPrincipal,
                             body: s.AcceptRequest | None = None) -> s.ApplicationRead:
    app = await deps.load_as_clerk(session, principal, application_id, for_update=True)
    cases.transition(app.status, Action.ACCEPT)
    # Handed in while the version was published: it is handled under that version even if withdrawn since.
    item = await cases.item_of(session, app)
    refuse = body.refuse_fee_exemption if body else None
    if refuse and app.fee_exemption_state != "claimed":
        raise invalid("body.refuse_fee_exemption", "no_claim", "The applicant claimed no fee exemption.")
    await cases.accept(session, app, item, deps.responder(principal), refuse_exemption=refuse)
    return await deps.application_read(session, app, principal)


@router.post(
    "/applications/{application_id}/not-accept", response_model=s.ApplicationRead,
    summary="Not accept (不予受理), with reasons and the legal basis",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def not_accept_application(application_id: s.ApplicationId, body: s.Decision, session: SessionDep,
                                 principal: CurrentPrincipal) -> s.ApplicationRead:
    app = await deps.load_as_clerk(session, principal, application_id, for_update=True)
    cases.transition(app.status, Action.NOT_ACCEPT)
    await cases.not_accept(session, app, deps.responder(principal), reasons=body.reasons, legal_basis=body.legal_basis)
    return await deps.application_read(session, app, principal)


@router.post(
    "/applications/{application_id}/return", response_model=s.ApplicationRead,
    summary="Return for correction (补正) before acceptance, with the full one-time notice",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def return_application(application_id: s.ApplicationId, body: s.ReturnForCorrection, session: SessionDep,
                             principal: CurrentPrincipal) -> s.ApplicationRead:
    app = await deps.load_as_clerk(session, principal, application_id, for_update=True)
    cases.transition(app.status, Action.RETURN)
    await cases.return_for_correction(session, app, deps.responder(principal), reasons=body.reasons,
                                      missing=[m.model_dump() for m in body.missing])
    return await deps.application_read(session, app, principal)


@router.post(
    "/applications/{application_id}/withdraw", response_model=s.ApplicationRead,
    summary="Withdraw (撤回) by the applicant before the decision",
    responses=problem_responses(401, 403, 404, 409),
)
async def withdraw_application(application_id: s.ApplicationId, session: SessionDep, principal: CurrentPrincipal) -> s.ApplicationRead:
    app = await deps.load_as_applicant(session, principal, application_id, for_update=True, filing_clerk=True)
    cases.transition(app.status, Action.WITHDRAW)
    await cases.withdraw(session, app)
    return await deps.application_read(session, app, principal)


@router.post(
    "/applications/{application_id}/corrections", response_model=s.ApplicationRead,
    summary="Answer a reviewing department's correction request (补正) once the materials are given",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def answer_correction(application_id: s.ApplicationId, session: SessionDep, principal: CurrentPrincipal,
                            body: s.CorrectionAnswer | None = None) -> s.ApplicationRead:
    app = await deps.load_as_applicant(session, principal, application_id, for_update=True)
    cases.transition(app.status, Action.CORRECT)
    await cases.answer_correction(session, app, note_text=body.note if body else None)
    return await deps.application_read(session, app, principal)


@router.post(
    "/applications/{application_id}/deliver", response_model=s.ApplicationRead,
    summary="Hand over the result at the window or by post (统一窗口出件)",
    description="`pickup`: a window clerk of the point the applicant chose (异地领取: any point, not only where "
                "it was handed in; the point is the one in the clerk's staff record). `post`: a clerk of the "
                "application's point or department, recording `carrier` and `tracking_number`. The method must be "
                "the one the applicant chose.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def deliver_result(application_id: s.ApplicationId, body: s.DeliverRequest, session: SessionDep,
                         principal: CurrentPrincipal) -> s.ApplicationRead:
    app = await deps.load_as_handing_clerk(session, principal, application_id)
    cases.transition(app.status, Action.HAND_OVER)
    if body.method != app.delivery_method:
        raise invalid("body.method", "not_chosen", f"The applicant chose `{app.delivery_method}`, not `{body.method}`.")
    if body.method == "post":
        missing = [FieldError(field=f"body.{n}", rule="required", message="Delivery by post records the carrier "
                              "and the tracking number.") for n in ("carrier", "tracking_number") if not getattr(body, n)]
        if missing:
            raise ValidationProblem(missing)
    await cases.deliver(session, app, method=body.method, by=deps.responder(principal), carrier=body.carrier,
                        tracking_number=body.tracking_number)
    return await deps.application_read(session, app, principal)


@router.post(
    "/applications/{application_id}/visits", status_code=201, response_model=s.VisitRead,
    summary="Record an on-site visit the applicant made for this application",
    description="Any window clerk records the visit at their own point (通办: the applicant may come to any "
                "point); the visits feed the 'at most one visit' and 'zero visits' figures.",
    responses=problem_responses(401, 403, 404, 422),
)
async def record_visit(application_id: s.ApplicationId, body: s.VisitCreate, session: SessionDep,
                       principal: CurrentPrincipal) -> s.VisitRead:
    if not principal.has(WINDOW_CLERK):
        raise Forbidden("Only a window clerk records visits.")
    app = await repo.get_application(session, application_id)
    if app is None:
        raise NotFound(deps.NOT_FOUND)
    # The point is the clerk's own, from the staff record their token carries, never what the client claims.
    point = principal.service_point
    if not point:
        raise Forbidden("Your staff record names no service point.")
    if body.service_point and body.service_point != point:
        raise invalid("service_point", "not_your_point", f"You work at {point}; a visit is recorded there.")
    visit = await repo.add_visit(session, application_id=app.id, service_point=point, purpose=body.purpose,
                                 recorded_by=principal.subject)
    await publish(session, ev.VISIT_RECORDED, subject=app.id, data=ev.VisitRecorded(
        application_id=app.id, service_point=point, purpose=body.purpose, at=visit.at))
    return s.VisitRead(id=visit.id, application_id=app.id, service_point=point, purpose=body.purpose, at=visit.at)


@router.get(
    "/applications/{application_id}/visits", response_model=list[s.VisitRead],
    summary="The on-site visits recorded for an application", responses=problem_responses(401, 404),
)
async def list_visits(application_id: s.ApplicationId, session: SessionDep, principal: CurrentPrincipal) -> list[s.VisitRead]:
    app = await deps.load_visible(session, principal, application_id)
    return [s.VisitRead(id=v.id, application_id=app.id, service_point=v.service_point, purpose=v.purpose, at=v.at)
            for v in await repo.visits(session, app.id)]
