"""What the intake service consumes from the bus: catalog publications (the local copy of item versions),
workflow's progress and decisions (to move the case), and datashare's certificates (to deliver the result)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import cases
from services.intake.domain.lifecycle import Action, Status, sources
from services.intake.events import contracts as ev
from services.intake.service import projects
from services.intake.store import repository as repo
from shared.events import Event
from shared.messaging import Consumer, event_data
from shared.types import utcnow

log = logging.getLogger("yimen.intake.events")


async def on_item_published(session: AsyncSession, event: Event) -> None:
    data: ev.ItemPublished = event_data(event, ev.ItemPublished)
    await repo.add_item_version(
        session, code=data.code, version=data.version, name=data.name, department=data.department,
        payload=event.data, published_at=data.published_at or event.time,
    )


async def on_item_withdrawn(session: AsyncSession, event: Event) -> None:
    data: ev.ItemWithdrawn = event_data(event, ev.ItemWithdrawn)
    await repo.withdraw_item_version(session, code=data.code, version=data.version, at=data.withdrawn_at)


async def on_department_upserted(session: AsyncSession, event: Event) -> None:
    data: ev.DepartmentUpserted = event_data(event, ev.DepartmentUpserted)
    await repo.upsert_department(session, data.code, data.name, data.phone)


async def on_service_point_upserted(session: AsyncSession, event: Event) -> None:
    # Service points and departments share one name table: both are units a timeline step names.
    data: ev.ServicePointUpserted = event_data(event, ev.ServicePointUpserted)
    await repo.upsert_department(session, data.code, data.name)


async def on_task_assigned(session: AsyncSession, event: Event) -> None:
    data: ev.TaskAssigned = event_data(event, ev.TaskAssigned)
    app = await repo.get_application(session, data.application_id, for_update=True)
    if app is None:
        return
    await repo.move(session, app, from_states=sources(Action.REVIEW), status=Status.IN_REVIEW.value)
    # 谁在办 from the start: the department holds it, with the number the item publishes for it (or the
    # department's own), until a handler is named (task.handler_assigned).
    await cases.note(session, app, f"审查：{data.step_name or '部门审查'}", unit=data.department, at=data.assigned_at,
                     staff_contact=await cases.department_contact(session, app, data.department))


async def on_task_handler_assigned(session: AsyncSession, event: Event) -> None:
    data: ev.TaskHandlerAssigned = event_data(event, ev.TaskHandlerAssigned)
    app = await repo.get_application(session, data.application_id, for_update=True)
    if app is None:
        return
    h = data.handler
    # The step's words name no one: the public status shows steps and units, never people.
    await cases.note(session, app, "已指定经办人", unit=data.department,
                     staff_name=cases.staff_label(h.name, h.unit),
                     staff_contact=h.office_phone or await cases.department_contact(session, app, data.department),
                     at=data.assigned_at, code="handler_assigned")


async def on_task_decided(session: AsyncSession, event: Event) -> None:
    data: ev.TaskDecided = event_data(event, ev.TaskDecided)
    app = await repo.get_application(session, data.application_id, for_update=True)
    if app is None:
        log.warning("task.decided for unknown application %s", data.application_id)
        return
    by = data.decided_by or ev.DecidedBy()
    if data.outcome == "request_correction":
        notice = [
            {"field": f"materials.{m.material_code}" if m.material_code else (f"form.{m.field}" if m.field else "application"),
             "rule": "correction_requested", "message": m.reason or data.reasons or "请补正。"}
            for m in data.missing
        ] or [{"field": "application", "rule": "correction_requested", "message": data.reasons or "请补正。"}]
        moved = await repo.move(
            session, app, from_states=sources(Action.REQUEST_CORRECTION), status=Status.AWAITING_CORRECTION.value, correction_task_id=data.task_id, notice=notice,
        )
        if not moved:
            log.info("correction request for %s in state %s ignored", app.id, app.status)
            return
        contact = by.contact or await cases.department_contact(session, app, data.department)
        await cases.note(session, app, "要求补正（一次性告知）", unit=data.department,
                         staff_name=cases.staff_label(by.name, by.unit),
                         staff_contact=contact, text=data.reasons, at=data.decided_at)
        return
    await repo.move(session, app, from_states=sources(Action.REVIEW), status=Status.IN_REVIEW.value)
    step = {"approve": "部门审查通过", "reject": "部门审查不通过"}.get(data.outcome, f"部门审查：{data.outcome}")
    contact = by.contact or await cases.department_contact(session, app, data.department)
    await cases.note(session, app, step, unit=data.department, staff_name=cases.staff_label(by.name, by.unit),
                     staff_contact=contact,
                     text=data.reasons, at=data.decided_at)


async def on_application_decided(session: AsyncSession, event: Event) -> None:
    data: ev.ApplicationDecided = event_data(event, ev.ApplicationDecided)
    app = await repo.get_application(session, data.application_id, for_update=True)
    if app is None:
        return
    if data.outcome not in ("approved", "rejected"):
        log.warning("application.decided with unknown outcome %r for %s", data.outcome, app.id)
        await cases.note(session, app, f"审批：{data.outcome}", unit=data.department or app.department,
                         text=data.reasons, at=data.decided_at)
        return
    moved = await repo.move(
        session, app, from_states=sources(Action.DECIDE), status=Status.DECIDED.value, outcome=data.outcome, decided_at=data.decided_at,
    )
    if not moved:
        # Already decided at acceptance (即办件), withdrawn, or the certificate came first and was delivered.
        if app.outcome is None:
            await repo.move(session, app, from_states=[app.status], outcome=data.outcome, decided_at=data.decided_at)
        return
    step = "审批通过" if data.outcome == "approved" else "审批不予许可"
    await cases.note(session, app, step, unit=data.department or app.department,
                     text=(f"{data.reasons or ''}（依据：{data.legal_basis}）" if data.legal_basis else data.reasons),
                     at=data.decided_at)
    # The written result, the fee and the hand-over; a certificate is handed over once datashare issued it.
    await cases.after_decision(session, app, await cases.item_of(session, app))
    # A project's stage completes when every item dispatched from it is decided.
    await projects.application_decided(session, app.id)


async def on_certificate_issued(session: AsyncSession, event: Event) -> None:
    data: ev.CertificateIssued = event_data(event, ev.CertificateIssued)
    if not data.application_id:
        return
    app = await repo.get_application(session, data.application_id, for_update=True)
    if app is None or (app.result or {}).get("certificate_number") == data.certificate_number:
        return  # unknown, or this certificate is already attached (announced again under another event id)
    result = {"certificate_number": data.certificate_number, "type_code": data.type_code,
              "type_name": data.type_name, "issued_on": data.issued_on, "valid_until": data.valid_until,
              "issuer_department": data.issuer_department, "received_at": utcnow().isoformat()}
    await repo.move(session, app, from_states=[app.status], result=result)
    await cases.note(session, app, f"电子证照已签发：{data.type_name or data.type_code}",
                     unit=data.issuer_department or app.department)
    if app.status == Status.DECIDED:
        await cases.hand_over_if_ready(session, app, await cases.item_of(session, app))


async def on_project_type_published(session: AsyncSession, event: Event) -> None:
    data: ev.ProjectTypePublished = event_data(event, ev.ProjectTypePublished)
    await projects.keep_project_type(session, data, event.data)


async def on_delegation(session: AsyncSession, event: Event) -> None:
    data: ev.DelegationChanged = event_data(event, ev.DelegationChanged)
    revoked = event.type.endswith(".revoked")
    await repo.record_delegation(
        session, delegation_id=data.delegation_id, principal_kind=data.principal.kind, principal_id=data.principal.id,
        agent_id=data.agent_id, items=data.items, valid_until=data.valid_until,
        revoked_at=(event.time if revoked else None),
    )


CONSUMERS: list[Consumer] = [
    Consumer("intake-item-published", ev.ITEM_PUBLISHED, on_item_published, "Keep every published item version."),
    Consumer("intake-item-withdrawn", ev.ITEM_WITHDRAWN, on_item_withdrawn, "Mark withdrawn versions."),
    Consumer("intake-department-upserted", ev.DEPARTMENT_UPSERTED, on_department_upserted, "Department names."),
    Consumer("intake-service-point-upserted", ev.SERVICE_POINT_UPSERTED, on_service_point_upserted,
             "Service-point names, for timelines."),
    Consumer("intake-task-assigned", ev.TASK_ASSIGNED, on_task_assigned, "Timeline: review started."),
    Consumer("intake-task-decided", ev.TASK_DECIDED, on_task_decided, "Corrections and department steps."),
    Consumer("intake-task-handler-assigned", ev.TASK_HANDLER_ASSIGNED, on_task_handler_assigned,
             "Timeline: who holds a department's task (谁在办)."),
    Consumer("intake-application-decided", ev.APPLICATION_DECIDED, on_application_decided, "The decision."),
    Consumer("intake-certificate-issued", ev.CERTIFICATE_ISSUED, on_certificate_issued, "Deliver the result."),
    Consumer("intake-delegation-granted", ev.DELEGATION_GRANTED, on_delegation, "Delegations' items and terms."),
    Consumer("intake-delegation-revoked", ev.DELEGATION_REVOKED, on_delegation, "Revocations end the view."),
    Consumer("intake-project-type-published", ev.PROJECT_TYPE_PUBLISHED, on_project_type_published,
             "Project types and their stages, for projects registered later."),
]
