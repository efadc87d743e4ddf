"""Walk-in filing (窗口代录, 帮办代办): a window clerk files, completes and submits an application for the person
standing at the window, identified by the ID card in the clerk's hand, whether or not the person has an account,
and records the person's consent (申请人签字确认).

Who the person is comes from identity, asked with the clerk's own token (`POST /identity/v1/walk-ins`): it checks
the card's name and number, opens a level-3 account without a password for someone who has none (matched against
the population registry like a registration) and answers the account id, the level and, for an account not yet
claimed, the one-time claim code printed on the receipt slip. Intake never decides who a person is."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from services.intake import service
from services.intake.api import deps
from services.intake.api import schemas as s
from services.intake.api.applications import IdempotencyKey, body_problems, with_etag
from services.intake.api.openapi import CLERK, ETAG, LOCATION, REPLAYED, responses
from services.intake.domain import uploads
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.errors import Problem, invalid
from shared.idempotency import run_idempotent

router = APIRouter(tags=["walk-ins"])


@router.post(
    "/walk-ins", status_code=201, response_model=s.WalkInRead,
    openapi_extra=CLERK,
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
`Idempotency-Key` makes a retry safe. The `ETag` and `Location` are the new application's.""",
    responses=responses(201, 401, 403, 409, 422, 503, headers={**ETAG, **LOCATION, **REPLAYED}),
)
async def file_walk_in(body: s.WalkInCreate, request: Request, principal: CurrentPrincipal,
                       idempotency_key: IdempotencyKey = None) -> Any:
    point, number = service.walkins.walk_in_request(principal, body.person.id_number)
    found: list[service.WalkInPerson] = []

    async def ask_identity() -> None:
        # Outside the transaction: no HTTP call while a row is locked; a duplicate is answered from the key.
        found.append(await service.walkins.identify(deps.identity(request), id_number=number,
                                                    person=body.person.model_dump()))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        person = found[0]
        d = body.delivery or s.Delivery()
        v = await service.walkins.file_walk_in(
            session, principal, person, point=point, item_code=body.item_code, form=body.form,
            delivery_method=d.method, delivery_point=d.service_point, delivery_address=d.address,
            fee_exemption=body.fee_exemption)
        read = s.WalkInRead(
            application=deps.application_read(v),
            person=s.WalkInPersonRead(id=person.id, name=person.name, assurance_level=person.assurance_level,
                                      account_created=person.account_created, claim_code=person.claim_code,
                                      claim_expires_at=person.claim_expires_at))
        return 201, read.model_dump(mode="json")

    payload = {**body.model_dump(mode="json"), "person": {**body.person.model_dump(), "id_number": number}}
    return with_etag(await run_idempotent(request, key=idempotency_key, scope=f"intake:walk-in:{principal.subject}",
                                          payload=payload, work=work, prepare=ask_identity))


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


@router.post(
    "/applications/{application_id}/consent", status_code=201, response_model=s.ConsentRead,
    summary="Record the person's consent to a walk-in (申请人签字确认): a signed slip or a signature capture",
    description="For the window clerk of the point where the application was filed for the person (窗口代录), "
                "while it can still be edited. `multipart/form-data` with `file`: the signed slip, scanned (PDF, "
                "JPEG or PNG, at most 5 MB; type checked by its bytes). `application/json` "
                "`{kind: signature_capture, reference}`: the counter's signature pad's record. A new consent "
                "replaces the earlier one. A walk-in without consent is not submitted (422 `consent`, rule "
                "`required`). Not a walk-in: 409 `not-a-walk-in`. The `ETag` is the application's, changed by the "
                "consent.",
    responses=responses(201, 401, 403, 404, 409, 413, 415, 422, headers=ETAG),
    openapi_extra={**_CONSENT_BODY, **CLERK},
)
async def record_consent(application_id: s.ApplicationId, request: Request, response: Response,
                         session: SessionDep, principal: CurrentPrincipal) -> s.ConsentRead:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=5)
        except Exception as exc:  # malformed multipart or too many parts
            raise invalid("body", "multipart", f"The upload is not a valid multipart form: {exc}.") from exc
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise invalid("file", "required", "Attach the scanned signed slip as the `file` part.")
        row, etag = await service.walkins.consent_by_slip(session, principal, application_id, files=deps.files(request),
                                                    filename=file.filename, read=file.read)
    elif ctype.startswith("application/json"):
        try:
            capture = s.SignatureCapture.model_validate_json(await request.body())
        except ValidationError as exc:
            raise body_problems(exc, "body.") from exc
        row, etag = await service.walkins.consent_by_signature(session, principal, application_id,
                                                         reference=capture.reference)
    else:
        raise Problem("Send multipart/form-data (the signed slip) or application/json (a signature capture).",
                      status=415, slug="unsupported-media-type", title="Unsupported media type")
    consent = deps.consent_read(row)
    assert consent is not None
    response.headers["ETag"] = etag
    return consent


@router.get(
    "/applications/{application_id}/consent/file",
    summary="Download the signed slip of a walk-in (the applicant, and staff who may read the case)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                     "headers": {"ETag": {"description": "The file's SHA-256, quoted.",
                                          "schema": {"type": "string"}}}},
               **responses(200, 401, 404)},
)
async def consent_file(application_id: s.ApplicationId, request: Request, session: SessionDep,
                       principal: CurrentPrincipal) -> Response:
    row, data = await service.walkins.consent_file(session, principal, application_id, files=deps.files(request))
    name = quote(uploads.safe_name(row.consent_filename or "consent"))
    return Response(data, media_type=uploads.detected_type(data), headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{name}", "ETag": f'"{row.consent_sha256}"',
        "X-Content-Type-Options": "nosniff"})
