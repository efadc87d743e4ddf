"""Walk-in filing (窗口代录, 帮办代办): a window clerk files, completes and submits an application for the person
standing at the window, identified by the ID card in the clerk's hand, whether or not the person has an account,
and records the person's consent (申请人签字确认).

Who the person is comes from identity, asked with the clerk's own token (`POST /identity/v1/walk-ins`): it checks
the card's name and number, opens a level-3 account without a password for someone who has none (matched against
the population registry like a registration) and answers the account id, the level and, for an account not yet
claimed, the one-time claim code printed on the receipt slip. Intake never decides who a person is."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from services.intake import cases
from services.intake.api import deps
from services.intake.api import schemas as s
from services.intake.api.applications import IdempotencyKey, _delivery_values, _exemption_values, _problems
from services.intake.domain import completeness, forms, uploads, walkin
from services.intake.domain.lifecycle import Action, Status
from services.intake.store import repository as repo
from services.intake.store.tables import Application
from shared.auth import WINDOW_CLERK, CurrentPrincipal, Principal
from shared.db import SessionDep
from shared.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Problem,
    ValidationProblem,
    invalid,
)
from shared.http_errors import problem_responses
from shared.idempotency import run_idempotent

log = logging.getLogger("yimen.intake.walkins")
router = APIRouter(tags=["walk-ins"])


class IdentityUnavailable(Problem):
    status, slug, title = 503, "identity-unavailable", "Identity cannot be reached"

    def __init__(self) -> None:
        super().__init__("身份核验暂时无法完成，请稍后再试；没有创建任何申请。Identity could not be asked who the person "
                         "is; nothing was filed.", headers={"Retry-After": "30"}, retry_after=30)


def _clerk_point(principal: Principal) -> str:
    if principal.kind != "staff" or not principal.has(WINDOW_CLERK):
        raise Forbidden("Only a window clerk files for a person at the counter.")
    if not principal.service_point:
        raise Forbidden("Your staff record names no service point; a walk-in is filed at the clerk's own point.")
    return principal.service_point


def _identity_url(request: Request) -> str:
    return request.app.state.settings.platform.service_urls.get("identity", "http://127.0.0.1:8102").rstrip("/")


async def identify(request: Request, person: s.WalkInPerson, number: str) -> cases.WalkInPerson:
    """Ask identity, with the clerk's own token, who the person holding this card is (opening their account if
    they have none). Identity's refusals reach the clerk as they are, with the fields under `body.person`."""
    body = {"id_number": number, "name": person.name, "phone": person.phone, "document": person.document}
    try:
        r = await request.app.state.http.post(
            f"{_identity_url(request)}/identity/v1/walk-ins", json=body, timeout=10,
            headers={"Authorization": request.headers.get("authorization", "")})
    except httpx.HTTPError as exc:
        log.warning("identity unreachable for a walk-in: %r", exc)
        raise IdentityUnavailable() from exc
    if r.status_code in (200, 201):
        data = r.json()
        p = data["person"]
        expires = data.get("claim_expires_at")
        return cases.WalkInPerson(
            id=p["id"], name=p["name"], id_number=number, assurance_level=int(p["assurance_level"]),
            account_created=bool(data.get("created")), claim_code=data.get("claim_code"),
            claim_expires_at=datetime.fromisoformat(expires) if expires else None)
    try:
        problem = r.json()
    except ValueError:
        problem = {}
    if r.status_code == 422 and problem.get("errors"):
        raise ValidationProblem([
            FieldError(field="body.person." + str(e.get("field", "")).removeprefix("body."),
                       rule=str(e.get("rule", "invalid")), message=str(e.get("message", "")))
            for e in problem["errors"]], detail=problem.get("detail"))
    if r.status_code in (401, 403, 409):
        raise Problem(problem.get("detail") or "Identity refused the walk-in.", status=r.status_code,
                      slug=str(problem.get("type", "")).rsplit("/", 1)[-1] or "identity-refused",
                      title=problem.get("title") or "Identity refused the walk-in")
    log.warning("identity answered %s to a walk-in: %s", r.status_code, r.text[:200])
    raise IdentityUnavailable()


async def _create(session: AsyncSession, principal: Principal, body: s.WalkInCreate, point: str,
                  person: cases.WalkInPerson) -> Application:
    item = await repo.current_item(session, body.item_code)
    if item is None:
        raise invalid("item_code", "unknown_item", "No published, unwithdrawn item has this code.")
    findings = completeness.check_channel_and_point(item.payload, channel="window", service_point=point)
    if (f := completeness.check_audience(item.payload, "person")) is not None:
        findings.append(f)
    findings += forms.check_shape(item.payload, body.form)
    if findings:
        raise _problems(findings, "The item cannot be applied for at this window.")
    app = await repo.add_application(
        session, item_code=item.code, item_version=item.version, item_name=item.name, department=item.department,
        status=Status.DRAFT.value, applicant_kind="person", applicant_id=person.id, applicant_holder_id=person.id_number,
        applicant_name=person.name, agent_id=None, created_by=principal.subject, channel="window",
        service_point=point, form=body.form, **_delivery_values(item.payload, body.delivery, point),
        **_exemption_values(item.payload, body.fee_exemption),
    )
    await cases.note(session, app, "创建申请草稿", unit=point)
    await cases.file_walk_in(session, app, person, deps.responder(principal))
    return app


@router.post(
    "/walk-ins", status_code=201, response_model=s.WalkInRead,
    summary="A window clerk files for the person at the counter (窗口代录, 帮办代办), ID card in hand",
    description="""For window clerks. The person is identified by the ID card the clerk holds (`person`): intake
asks identity with the clerk's token, which raises an existing account to level 3 or opens a level-3 account without
a password for someone who has none (matched against the population registry; another name there → 422 on
`body.person.name`, rule `registry_mismatch`; identity unreachable → 503 `identity-unavailable`, nothing filed).

The draft's applicant is that person, the channel `window` and the service point the clerk's own (from the staff
record, never from the body); the timeline says 窗口代录 with the clerk's name, and the visit is recorded. The clerk
then does the applicant's steps on it: `PATCH` the form, `POST …/materials`, `POST …/check`, records the person's
consent (`POST …/consent`: a signed slip or a signature capture, required before submission), `POST …/submit`
(the person's level from identity counts), `POST …/accept`, and prints `GET …/receipt-slip`, which also carries the
claim code of a new account. `person.claim_code` is the one-time code the person claims that account with online
(`POST /identity/v1/people/claims`); once claimed, they see this application under their own login.
`Idempotency-Key` makes a retry safe.""",
    responses=problem_responses(401, 403, 409, 422, 503),
)
async def file_walk_in(body: s.WalkInCreate, request: Request, principal: CurrentPrincipal,
                       idempotency_key: IdempotencyKey = None) -> Any:
    point = _clerk_point(principal)
    number, why = walkin.card_number(body.person.id_number)
    if why:
        raise invalid("body.person.id_number", "id_number", why)
    found: list[cases.WalkInPerson] = []

    async def ask_identity() -> None:
        # Outside the transaction: no HTTP call while a row is locked; a duplicate is answered from the key.
        found.append(await identify(request, body.person, number))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        person = found[0]
        app = await _create(session, principal, body, point, person)
        read = s.WalkInRead(
            application=await deps.application_read(session, app, principal),
            person=s.WalkInPersonRead(id=person.id, name=person.name, assurance_level=person.assurance_level,
                                      account_created=person.account_created, claim_code=person.claim_code,
                                      claim_expires_at=person.claim_expires_at))
        return 201, read.model_dump(mode="json")

    payload = {**body.model_dump(mode="json"), "person": {**body.person.model_dump(), "id_number": number}}
    return await run_idempotent(request, key=idempotency_key, scope=f"intake:walk-in:{principal.subject}",
                                payload=payload, work=work, prepare=ask_identity)


_CONSENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary",
                                        "description": "The signed slip, scanned: PDF, JPEG or PNG, at most 5 MB."}},
            }},
            "application/json": {"schema": s.SignatureCapture.model_json_schema()},
        },
    }
}


async def _signed_slip(request: Request, app: Application) -> dict[str, Any]:
    try:
        form = await request.form(max_files=1, max_fields=5)
    except Exception as exc:  # malformed multipart or too many parts
        raise invalid("body", "multipart", f"The upload is not a valid multipart form: {exc}.") from exc
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise invalid("file", "required", "Attach the scanned signed slip as the `file` part.")
    material = walkin.CONSENT_MATERIAL
    limit = uploads.max_bytes(material)
    data = await file.read(limit + 1)
    filename = uploads.safe_name(file.filename)
    findings = [f for f in (uploads.check_type(material, filename, data[:16]), uploads.check_size(material, len(data)))
                if f is not None]
    if any(f.rule == "max_bytes" for f in findings):
        raise PayloadTooLarge(f"签字确认书不能超过 {limit} 字节。", errors=[FieldError(**f.as_dict()) for f in findings])
    if findings:
        raise _problems(findings, "The signed slip is refused.")
    digest = hashlib.sha256(data).hexdigest()
    key = f"{app.id}/consent-{digest}"
    await deps.file_store(request).put(key, data)
    return {"filename": filename, "content_type": uploads.detected_type(data), "size": len(data), "sha256": digest,
            "storage_key": key}


@router.post(
    "/applications/{application_id}/consent", status_code=201, response_model=s.ConsentRead,
    summary="Record the person's consent to a walk-in (申请人签字确认): a signed slip or a signature capture",
    description="For the window clerk of the point where the application was filed for the person (窗口代录), "
                "while it can still be edited. `multipart/form-data` with `file`: the signed slip, scanned (PDF, "
                "JPEG or PNG, at most 5 MB; type checked by its bytes). `application/json` "
                "`{kind: signature_capture, reference}`: the counter's signature pad's record. A new consent "
                "replaces the earlier one. A walk-in without consent is not submitted (422 `consent`, rule "
                "`required`). Not a walk-in: 409 `not-a-walk-in`.",
    responses=problem_responses(401, 403, 404, 409, 413, 415, 422),
    openapi_extra=_CONSENT_BODY,
)
async def record_consent(application_id: s.ApplicationId, request: Request, session: SessionDep,
                         principal: CurrentPrincipal) -> s.ConsentRead:
    app = await deps.load_visible(session, principal, application_id, for_update=True)
    if not deps.serving_clerk(principal, app):
        raise Forbidden("Only a window clerk of the point where the case was filed records the person's consent.")
    cases.transition(app.status, Action.EDIT)
    if await repo.walk_in(session, app.id) is None:
        raise Conflict("This application was not filed at a window for the person.", slug="not-a-walk-in")
    ctype = request.headers.get("content-type", "")
    by = deps.responder(principal)
    if ctype.startswith("multipart/form-data"):
        row = await cases.record_consent(session, app, kind="signed_slip", by=by,
                                         file=await _signed_slip(request, app))
    elif ctype.startswith("application/json"):
        try:
            capture = s.SignatureCapture.model_validate_json(await request.body())
        except ValidationError as exc:
            raise ValidationProblem([
                FieldError(field="body." + ".".join(str(p) for p in e["loc"]) if e["loc"] else "body",
                           rule=str(e["type"]), message=e["msg"]) for e in exc.errors()]) from exc
        row = await cases.record_consent(session, app, kind="signature_capture", by=by,
                                         reference=capture.reference.strip())
    else:
        raise Problem("Send multipart/form-data (the signed slip) or application/json (a signature capture).",
                      status=415, slug="unsupported-media-type", title="Unsupported media type")
    consent = deps.walk_in_read(row).consent
    assert consent is not None
    return consent


@router.get(
    "/applications/{application_id}/consent/file",
    summary="Download the signed slip of a walk-in (the applicant, and staff who may read the case)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **problem_responses(401, 404)},
)
async def consent_file(application_id: s.ApplicationId, request: Request, session: SessionDep,
                       principal: CurrentPrincipal) -> Response:
    app = await deps.load_visible(session, principal, application_id)
    row = await repo.walk_in(session, app.id)
    if row is None or not row.consent_storage_key:
        raise NotFound("No signed slip is kept for this application.")
    data = await deps.file_store(request).get(row.consent_storage_key)
    name = quote(uploads.safe_name(row.consent_filename or "consent"))
    return Response(data, media_type=uploads.detected_type(data), headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{name}", "ETag": f'"{row.consent_sha256}"',
        "X-Content-Type-Options": "nosniff"})
