"""Reuse (变群众奔波为信息跑腿): a new draft copied from an earlier application, or prefill for another item
from what earlier applications already collected."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.intake import cases
from services.intake.api import deps
from services.intake.api import schemas as s
from services.intake.domain import completeness, forms
from services.intake.domain.lifecycle import Status
from services.intake.domain.reuse import match_materials, prefill_form
from services.intake.store import repository as repo
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.errors import FieldError, NotFound, ValidationProblem, invalid
from shared.http_errors import problem_responses

router = APIRouter(tags=["reuse"])


@router.get(
    "/me/prefill", response_model=s.Prefill,
    summary="Prefill for an item from my earlier applications (form values and materials already given)",
    description="Materials match by certificate type, then material code, then name; give one to a draft with "
                "`POST /applications/{id}/materials` `{\"kind\": \"reuse\", ...}` or copy the whole application.",
    responses=problem_responses(401, 404, 422),
)
async def prefill(session: SessionDep, principal: CurrentPrincipal,
                  item_code: Annotated[str, Query(pattern=r"^[0-9A-Za-z][0-9A-Za-z_.\-]{0,63}$")]) -> s.Prefill:
    item = await repo.current_item(session, item_code)
    if item is None:
        raise NotFound("No published item has this code.")
    earlier = await cases.earlier_of(session, principal)
    return s.Prefill(
        item_code=item.code, item_version=item.version, form=prefill_form(item.payload, earlier),
        materials=[s.PrefillMaterial(**m) for m in match_materials(item.payload, earlier)],
    )


@router.post(
    "/applications/{application_id}/copy", status_code=201, response_model=s.ApplicationRead,
    summary="Start a new draft as a copy of an earlier application for the same item",
    description="The new draft cites the item's current version; the form and every material still asked for "
                "are carried over (commitments are not: a commitment is made anew each time).",
    responses=problem_responses(401, 403, 404, 422),
)
async def copy_application(application_id: s.ApplicationId, session: SessionDep, principal: CurrentPrincipal,
                           body: s.CopyRequest | None = None) -> s.ApplicationRead:
    source = await deps.load_as_applicant(session, principal, application_id)
    item = await repo.current_item(session, source.item_code)
    if item is None:
        raise invalid("item_code", "item_withdrawn", "This item is no longer published; it cannot be applied for.")
    body = body or s.CopyRequest()
    channel, point = body.channel or source.channel, body.service_point or source.service_point
    findings = completeness.check_channel_and_point(item.payload, channel=channel, service_point=point)
    if findings:
        raise ValidationProblem([FieldError(**f.as_dict()) for f in findings])
    app = await repo.add_application(
        session, item_code=item.code, item_version=item.version, item_name=item.name, department=item.department,
        status=Status.DRAFT.value, applicant_kind=source.applicant_kind, applicant_id=source.applicant_id,
        applicant_holder_id=source.applicant_holder_id, applicant_name=source.applicant_name,
        agent_id=source.agent_id, created_by=principal.subject, channel=channel, service_point=point,
        form=forms.known_only(item.payload, source.form or {}), delivery_method=source.delivery_method, delivery_point=source.delivery_point,
        delivery_address=source.delivery_address, copied_from=source.id,
    )
    wanted = {m["code"] for m in completeness.materials_of(item.payload)}
    for a in await repo.attachments(session, source.id):
        if a.material_code in wanted and a.kind != "commitment":
            await repo.put_attachment(
                session, application_id=app.id, material_code=a.material_code, kind=a.kind, replace=False,
                reference=a.reference, filename=a.filename, content_type=a.content_type, size=a.size,
                sha256=a.sha256, storage_key=a.storage_key,
                details={**(a.details or {}), "reused_from": {"application_id": source.id, "attachment_id": a.id}},
            )
    await cases.note(session, app, "复制既往申请创建草稿", unit=point)
    return await deps.application_read(session, app, principal)
