"""Reuse (变群众奔波为信息跑腿): a new draft copied from an earlier application, or prefill for another item from
what earlier applications already collected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import completeness, drafts, forms
from services.intake.domain.lifecycle import Status
from services.intake.domain.reuse import match_materials, prefill_form
from services.intake.service.common import earlier_of, load_as_applicant, note
from services.intake.service.views import ApplicationView, view
from services.intake.store import repository as repo
from shared.errors import NotFound, invalid
from shared.principal import Principal


@dataclass
class Prefill:
    item_code: str
    item_version: int
    form: dict[str, Any]
    materials: list[dict[str, Any]]


async def prefill(session: AsyncSession, principal: Principal, item_code: str) -> Prefill:
    item = await repo.current_item(session, item_code)
    if item is None:
        raise NotFound("No published item has this code.")
    earlier = await earlier_of(session, principal)
    return Prefill(item.code, item.version, prefill_form(item.payload, earlier), match_materials(item.payload, earlier))


async def copy(session: AsyncSession, principal: Principal, application_id: str, *, channel: str | None,
               service_point: str | None) -> ApplicationView:
    """A new draft of the item's current version; the form and every material still asked for are carried over
    (commitments are not: a commitment is made anew each time)."""
    source = await load_as_applicant(session, principal, application_id)
    item = await repo.current_item(session, source.item_code)
    if item is None:
        raise invalid("item_code", "item_withdrawn", "This item is no longer published; it cannot be applied for.")
    channel, point = channel or source.channel, service_point or source.service_point
    findings = completeness.check_channel_and_point(item.payload, channel=channel, service_point=point)
    if findings:
        raise drafts.problems(findings)
    app = await repo.add_application(
        session, item_code=item.code, item_version=item.version, item_name=item.name, department=item.department,
        status=Status.DRAFT.value, applicant_kind=source.applicant_kind, applicant_id=source.applicant_id,
        applicant_holder_id=source.applicant_holder_id, applicant_name=source.applicant_name,
        agent_id=source.agent_id, created_by=principal.subject, channel=channel, service_point=point,
        form=forms.known_only(item.payload, source.form or {}), delivery_method=source.delivery_method,
        delivery_point=source.delivery_point, delivery_address=source.delivery_address, copied_from=source.id,
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
    await note(session, app, "复制既往申请创建草稿", unit=point)
    return await view(session, app, principal)
