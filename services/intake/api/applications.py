"""Routes of an application's life: draft, materials, check (一次性告知), submit, acceptance, withdrawal,
corrections, delivery, visits. Thin: parse, call the use case (`services.intake.service`), render."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from services.intake import service
from services.intake.api import deps
from services.intake.api import schemas as s
from services.intake.api.openapi import (
    CLERK,
    CREATED_ETAG,
    ETAG,
    IF_MATCH,
    LOCATION,
    REPLAYED,
    etag_of_created,
    responses,
)
from services.intake.domain import drafts, uploads
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.errors import FieldError, Problem, ValidationProblem, invalid
from shared.idempotency import Answer, run_idempotent
from shared.ratelimit import limiter_for

router = APIRouter(tags=["applications"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                               description="Repeat with the same key to get the same answer.")]
IfMatch = Annotated[str | None, Header(alias="If-Match", include_in_schema=False)]


def with_etag(response: Response) -> Response:
    """A stored answer naming an application carries its `ETag` and `Location`, as a fresh one does."""
    if isinstance(response, JSONResponse) and response.status_code in (200, 201):
        body = response.answer if isinstance(response, Answer) else json.loads(bytes(response.body))
        app = body.get("application", body)
        if isinstance(app, dict) and app.get("id") and app.get("updated_at"):
            response.headers["ETag"] = drafts.etag(app["id"], datetime.fromisoformat(app["updated_at"]))
            if response.status_code == 201:
                response.headers["Location"] = f"/intake/v1/applications/{app['id']}"
    return response


def _delivery(d: s.Delivery | None) -> dict[str, Any]:
    d = d or s.Delivery()
    return {"delivery_method": d.method, "delivery_point": d.service_point, "delivery_address": d.address}


@router.post(
    "/applications", status_code=201, response_model=s.ApplicationRead,
    summary="Start a draft application (办件) for the item's current version",
    description="The applicant comes from the token: the person, the organisation of an agent (`org`), or the "
                "principal of a delegation (`act`). Channel and service point must be ones the item offers.",
    responses=responses(201, 401, 403, 409, 422, headers={**ETAG, **LOCATION, **REPLAYED}),
)
async def create_application(
    body: s.ApplicationCreate, request: Request, principal: CurrentPrincipal, idempotency_key: IdempotencyKey = None
) -> Any:
    async def work(session: AsyncSession) -> tuple[int, Any]:
        v = await service.create_draft(
            session, principal, item_code=body.item_code, channel=body.channel, service_point=body.service_point,
            form=body.form, on_behalf_of=body.on_behalf_of, fee_exemption=body.fee_exemption, **_delivery(body.delivery))
        return 201, deps.application_read(v).model_dump(mode="json")

    return with_etag(await run_idempotent(request, key=idempotency_key, scope=f"intake:create:{principal.subject}",
                                          payload=body.model_dump(mode="json"), work=work))


@router.get(
    "/applications/{application_id}", response_model=s.ApplicationRead,
    summary="An application with its materials and timeline (事中告知)",
    responses=responses(200, 401, 404, headers=ETAG),
)
async def get_application(application_id: s.ApplicationId, response: Response, session: SessionDep,
                          principal: CurrentPrincipal) -> s.ApplicationRead:
    v = await service.read(session, principal, application_id)
    response.headers["ETag"] = v.etag
    return deps.application_read(v)


@router.patch(
    "/applications/{application_id}", response_model=s.ApplicationRead,
    summary="Change a draft's form fields or delivery choice (If-Match: the ETag of the last read)",
    responses=responses(200, 401, 403, 404, 409, 412, 422, 428, headers=ETAG),
    openapi_extra=IF_MATCH,
)
async def update_application(
    application_id: s.ApplicationId, body: s.ApplicationUpdate, response: Response, session: SessionDep,
    principal: CurrentPrincipal, if_match: IfMatch = None,
) -> s.ApplicationRead:
    d = body.delivery
    v = await service.update_draft(
        session, principal, application_id, if_match=if_match, form=body.form, fee_exemption=body.fee_exemption,
        delivery_method=d.method if d else None, delivery_point=d.service_point if d else None,
        delivery_address=d.address if d else None)
    response.headers["ETag"] = v.etag
    return deps.application_read(v)


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


def body_problems(exc: ValidationError, prefix: str = "") -> ValidationProblem:
    return ValidationProblem([
        FieldError(field=prefix + ".".join(str(p) for p in e["loc"]) if e["loc"] else "body", rule=str(e["type"]),
                   message=e["msg"]) for e in exc.errors()])


async def _upload(request: Request, session: AsyncSession, principal: CurrentPrincipal,
                  application_id: str) -> tuple[Any, str]:
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
    return await service.add_upload(session, principal, application_id, files=deps.files(request),
                                    material_code=code, filename=file.filename, read=file.read,
                                    sha256=declared if isinstance(declared, str) else None)


@router.post(
    "/applications/{application_id}/materials", status_code=201, response_model=s.AttachmentRead,
    summary="Give a material: upload a file, cite a certificate number, or make a written commitment (告知承诺)",
    description="`multipart/form-data` with `material_code`, `file` and optionally `sha256` uploads a file (type "
                "and size as the material allows). `application/json` gives a certificate reference "
                "(`kind=certificate_ref`) or a commitment (`kind=commitment`, where the item allows it). A new "
                "material replaces what was given before for the same code. The `ETag` is the application's, "
                "changed by the new material.",
    responses=responses(201, 401, 403, 404, 409, 413, 415, 422, headers=ETAG),
    openapi_extra=_MATERIAL_BODY,
)
async def add_material(application_id: s.ApplicationId, request: Request, response: Response, session: SessionDep,
                       principal: CurrentPrincipal) -> s.AttachmentRead:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        att, etag = await _upload(request, session, principal, application_id)
    elif ctype.startswith("application/json"):
        try:
            body = s.MaterialReference.model_validate_json(await request.body())
        except ValidationError as exc:
            raise body_problems(exc) from exc
        att, etag = await service.add_reference(session, principal, application_id, material_code=body.material_code,
                                          kind=body.kind, reference=body.reference,
                                          attachment_id=body.attachment_id, statement=body.statement)
    else:
        raise Problem("Send multipart/form-data (a file) or application/json (a reference or commitment).",
                      status=415, slug="unsupported-media-type", title="Unsupported media type")
    response.headers["ETag"] = etag
    return deps.attachment_read(att)


@router.get(
    "/applications/{application_id}/materials/{attachment_id}/file",
    summary="Download an uploaded file (the applicant, and staff who may read the case)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                     "headers": {"ETag": {"description": "The file's SHA-256, quoted.",
                                          "schema": {"type": "string"}}}},
               **responses(200, 401, 404)},
)
async def download_material(application_id: s.ApplicationId, attachment_id: s.RowId, request: Request,
                            session: SessionDep, principal: CurrentPrincipal) -> Response:
    att, data = await service.uploaded_file(session, principal, application_id, attachment_id,
                                            files=deps.files(request))
    name = quote(uploads.safe_name(att.filename or att.material_code))
    # Served as what the bytes are, never as what the uploader declared (files kept before this rule included).
    return Response(data, media_type=uploads.detected_type(data), headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{name}", "ETag": f'"{att.sha256}"',
        "X-Content-Type-Options": "nosniff"})


# --- check and submit --------------------------------------------------------------------------------------------


@router.post(
    "/applications/{application_id}/check", response_model=s.CheckResult,
    summary="The one-time notice (一次性告知): everything missing or invalid, at once",
    description="Materials datashare holds (certificates, registry records) are fetched now and attached; what "
                "it cannot give is listed so the applicant may upload it instead.",
    responses=responses(200, 401, 404),
)
async def check_application(application_id: s.ApplicationId, request: Request,
                            principal: CurrentPrincipal) -> s.CheckResult:
    out = await service.check(request.app.state.db, principal, application_id, deps.datashare(request))
    return s.CheckResult(
        application_id=out.application_id, complete=not out.findings,
        problems=[s.Problem(**f.as_dict()) for f in out.findings],
        materials=[s.MaterialStatus(code=m.code, name=m.name, necessity=m.necessity, source=m.source,
                                    provided=m.provided,
                                    reusable=s.PrefillMaterial(**m.reusable) if m.reusable else None)
                   for m in out.materials])


@router.post(
    "/applications/{application_id}/submit", response_model=s.ApplicationRead,
    summary="Submit: check, receipt number (办件编号), and automatic acceptance where the item is fully online",
    description="The applicant's identity assurance level (token claim `level`; under a delegation the lower of "
                "agent's and principal's) must reach the item's `min_assurance_level` (default 2), else 403 "
                "`assurance-level-too-low` with `required_level`, `current_level` and how to rise; nothing is "
                "fetched for a refused applicant. "
                "Runs the completeness check first; an incomplete application is refused with every problem "
                "listed (422). Send `Idempotency-Key` so that a double tap makes one submission. Receipt numbers "
                "are `<item code><yyyyMMdd><4-digit serial per item and day>` (unique and increasing, not gapless); the 6-digit `verification_code` "
                "opens the public status query.",
    responses=responses(200, 401, 403, 404, 409, 422, 429, headers={**ETAG, **REPLAYED}),
)
async def submit_application(application_id: s.ApplicationId, request: Request, principal: CurrentPrincipal,
                             idempotency_key: IdempotencyKey = None) -> Any:
    state: dict[str, Any] = {}

    async def ready(session: AsyncSession) -> bool:
        # Only the request that claimed the Idempotency-Key gets here: duplicates are answered from the key, so
        # they neither count toward the applicant's rate limit nor call datashare. The count (a round trip to the
        # bus) runs while the application is read and locked.
        limits = request.app.state.settings.platform
        counting = asyncio.ensure_future(limiter_for(request.app.state, "submit", limits.submit_rate_per_minute)
                                         .check(principal.subject, "submissions"))
        try:
            begun = await service.begin_submission(session, principal, application_id)
        finally:
            await counting  # counted whatever the answer; over the limit, the 429 is the answer
        state["begun"] = begun
        return not begun.wanted  # else its transaction ends here and datashare is asked with no row locked

    async def fetch() -> None:
        begun = state.pop("begun")
        state["failures"] = await service.fetch_for_submission(request.app.state.db, deps.datashare(request), begun)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        v = await service.submit(session, principal, application_id, state.get("failures", {}),
                                 begun=state.get("begun"))
        return 200, deps.application_read(v).model_dump(mode="json")

    # The key is the caller's: reusing it for another application is the "different body" case (422).
    return with_etag(await run_idempotent(request, key=idempotency_key, scope=f"intake:submit:{principal.subject}",
                                          payload={"application_id": application_id}, work=work, prepare=fetch,
                                          ready=ready))


# --- acceptance at the window ------------------------------------------------------------------------------------


@router.post(
    "/applications/{application_id}/accept", response_model=s.ApplicationRead,
    summary="Accept (受理) a submitted application; the clerk is recorded as first responder (首问负责)",
    description="An immediate item (即办件) is decided here: it goes on to its payment notice (if a fee is due) "
                "and its hand-over. A fee exemption the applicant claimed is granted unless the body gives "
                "`refuse_fee_exemption` with the reason.",
    responses=responses(200, 401, 403, 404, 409, 422),
)
async def accept_application(application_id: s.ApplicationId, session: SessionDep, principal: CurrentPrincipal,
                             body: s.AcceptRequest | None = None) -> s.ApplicationRead:
    v = await service.accept_application(session, principal, application_id,
                                         refuse_fee_exemption=body.refuse_fee_exemption if body else None)
    return deps.application_read(v)


@router.post(
    "/applications/{application_id}/not-accept", response_model=s.ApplicationRead,
    openapi_extra=CLERK,
    summary="Not accept (不予受理), with reasons and the legal basis",
    responses=responses(200, 401, 403, 404, 409, 422),
)
async def not_accept_application(application_id: s.ApplicationId, body: s.Decision, session: SessionDep,
                                 principal: CurrentPrincipal) -> s.ApplicationRead:
    return deps.application_read(await service.not_accept(session, principal, application_id, reasons=body.reasons,
                                                          legal_basis=body.legal_basis))


@router.post(
    "/applications/{application_id}/return", response_model=s.ApplicationRead,
    openapi_extra=CLERK,
    summary="Return for correction (补正) before acceptance, with the full one-time notice",
    responses=responses(200, 401, 403, 404, 409, 422),
)
async def return_application(application_id: s.ApplicationId, body: s.ReturnForCorrection, session: SessionDep,
                             principal: CurrentPrincipal) -> s.ApplicationRead:
    return deps.application_read(await service.return_for_correction(
        session, principal, application_id, reasons=body.reasons, missing=[m.model_dump() for m in body.missing]))


@router.post(
    "/applications/{application_id}/withdraw", response_model=s.ApplicationRead,
    summary="Withdraw (撤回) by the applicant before the decision",
    responses=responses(200, 401, 403, 404, 409),
)
async def withdraw_application(application_id: s.ApplicationId, session: SessionDep,
                               principal: CurrentPrincipal) -> s.ApplicationRead:
    return deps.application_read(await service.withdraw(session, principal, application_id))


@router.post(
    "/applications/{application_id}/corrections", response_model=s.ApplicationRead,
    summary="Answer a reviewing department's correction request (补正) once the materials are given",
    responses=responses(200, 401, 403, 404, 409, 422),
)
async def answer_correction(application_id: s.ApplicationId, session: SessionDep, principal: CurrentPrincipal,
                            body: s.CorrectionAnswer | None = None) -> s.ApplicationRead:
    return deps.application_read(await service.answer_correction(session, principal, application_id,
                                                                 note_text=body.note if body else None))


@router.post(
    "/applications/{application_id}/deliver", response_model=s.ApplicationRead,
    openapi_extra=CLERK,
    summary="Hand over the result at the window or by post (统一窗口出件)",
    description="`pickup`: a window clerk of the point the applicant chose (异地领取: any point, not only where "
                "it was handed in; the point is the one in the clerk's staff record). `post`: a clerk of the "
                "application's point or department, recording `carrier` and `tracking_number`. The method must be "
                "the one the applicant chose.",
    responses=responses(200, 401, 403, 404, 409, 422),
)
async def deliver_result(application_id: s.ApplicationId, body: s.DeliverRequest, session: SessionDep,
                         principal: CurrentPrincipal) -> s.ApplicationRead:
    return deps.application_read(await service.hand_over(session, principal, application_id, method=body.method,
                                                         carrier=body.carrier, tracking_number=body.tracking_number))


@router.post(
    "/applications/{application_id}/visits", status_code=201, response_model=s.VisitRead,
    openapi_extra=CLERK,
    summary="Record an on-site visit the applicant made for this application",
    description="Any window clerk records the visit at their own point (通办: the applicant may come to any "
                "point); the visits feed the 'at most one visit' and 'zero visits' figures.",
    responses=responses(201, 401, 403, 404, 422, headers=CREATED_ETAG),
)
async def record_visit(application_id: s.ApplicationId, body: s.VisitCreate, session: SessionDep,
                       principal: CurrentPrincipal, response: Response) -> s.VisitRead:
    v = await service.record_visit(session, principal, application_id, purpose=body.purpose,
                                   service_point=body.service_point)
    return etag_of_created(response, s.VisitRead(id=v.id, application_id=v.application_id, service_point=v.service_point,
                                            purpose=v.purpose, at=v.at))


@router.get(
    "/applications/{application_id}/visits", response_model=list[s.VisitRead],
    summary="The on-site visits recorded for an application", responses=responses(200, 401, 404),
)
async def list_visits(application_id: s.ApplicationId, session: SessionDep,
                      principal: CurrentPrincipal) -> list[s.VisitRead]:
    return [s.VisitRead(id=v.id, application_id=v.application_id, service_point=v.service_point, purpose=v.purpose,
                        at=v.at) for v in await service.visits(session, principal, application_id)]
