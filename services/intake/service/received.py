"""What other services tell intake, applied in the handler's transaction: catalog's item versions and unit names,
workflow's progress and decisions (to move the case and tell the applicant who holds it), datashare's
certificates (to hand the result over), and identity's delegations."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import corrections
from services.intake.domain.lifecycle import Action, Status, sources
from services.intake.events import contracts as ev
from services.intake.service import projects
from services.intake.service.applications import after_decision, delivered, hand_over_if_ready
from services.intake.service.common import department_contact, item_of, note, staff_label
from services.intake.store import repository as repo
from services.intake.store.tables import Application
from shared.types import utcnow

log = logging.getLogger("yimen.intake.events")


async def item_published(session: AsyncSession, data: ev.ItemPublished, *, payload: dict[str, Any],
                         at: datetime) -> None:
    """Every published item version is kept: an application is handled under the version it cites."""
    await repo.add_item_version(session, code=data.code, version=data.version, name=data.name,
                                department=data.department, payload=payload, published_at=data.published_at or at)


async def item_withdrawn(session: AsyncSession, data: ev.ItemWithdrawn) -> None:
    await repo.withdraw_item_version(session, code=data.code, version=data.version, at=data.withdrawn_at)


async def unit_named(session: AsyncSession, code: str, name: str, phone: str | None = None) -> None:
    """Service points and departments share one name table: both are units a timeline step names."""
    await repo.upsert_department(session, code, name, phone)


async def task_assigned(session: AsyncSession, data: ev.TaskAssigned) -> None:
    # The move is the read (statements are the cost): one compare-and-set that returns what the step needs.
    app = await repo.move_by_id(session, data.application_id, from_states=sources(Action.REVIEW),
                                status=Status.IN_REVIEW.value)
    if app is None:
        app = await repo.lock_keys(session, data.application_id)
        if app is None:
            return
    # 谁在办 from the start: the department holds it, with the number the item publishes for it (or the
    # department's own), until a handler is named (task.handler_assigned).
    await note(session, app, f"审查：{data.step_name or '部门审查'}", unit=data.department, at=data.assigned_at,
               staff_contact=await department_contact(session, app, data.department))


async def task_handler_assigned(session: AsyncSession, data: ev.TaskHandlerAssigned) -> None:
    app = await repo.lock_keys(session, data.application_id)
    if app is None:
        return
    h = data.handler
    # The step's words name no one: the public status shows steps and units, never people.
    await note(session, app, "已指定经办人", unit=data.department, staff_name=staff_label(h.name, h.unit),
               staff_contact=h.office_phone or await department_contact(session, app, data.department),
               at=data.assigned_at, code="handler_assigned")


async def task_decided(session: AsyncSession, data: ev.TaskDecided) -> None:
    """A department's step: a correction request (补正) waits for the applicant; anything else is noted."""
    by = data.decided_by or ev.DecidedBy()
    if data.outcome == "request_correction":
        notice = corrections.notice([(m.material_code, m.field, m.reason) for m in data.missing], data.reasons)
        app = await repo.move_by_id(
            session, data.application_id, from_states=sources(Action.REQUEST_CORRECTION),
            status=Status.AWAITING_CORRECTION.value, correction_task_id=data.task_id, notice=notice,
        )
        if app is None:
            found = await repo.lock_keys(session, data.application_id)
            if found is None:
                log.warning("task.decided for unknown application %s", data.application_id)
            else:
                log.info("correction request for %s in state %s ignored", found.id, found.status)
            return
        contact = by.contact or await department_contact(session, app, data.department)
        await note(session, app, "要求补正（一次性告知）", unit=data.department, staff_name=staff_label(by.name, by.unit),
                   staff_contact=contact, text=data.reasons, at=data.decided_at)
        return
    app = await repo.move_by_id(session, data.application_id, from_states=sources(Action.REVIEW),
                                status=Status.IN_REVIEW.value)
    if app is None:
        app = await repo.lock_keys(session, data.application_id)
        if app is None:
            log.warning("task.decided for unknown application %s", data.application_id)
            return
    contact = by.contact or await department_contact(session, app, data.department)
    await note(session, app, corrections.step_of(data.outcome), unit=data.department,
               staff_name=staff_label(by.name, by.unit), staff_contact=contact, text=data.reasons, at=data.decided_at)


async def hold_cases(session: AsyncSession, application_ids: Iterable[str], *, reviewed: Iterable[str] = ()) -> None:
    """A consumer's batch of many cases: all of them locked in one statement, and those its steps put in review
    (`reviewed`) moved there in one more; each handler's own move or lock of them then costs nothing (the same
    move again is a no-op: `repo.move_by_id`)."""
    await repo.lock_many(session, application_ids)
    await repo.move_held(session, reviewed, from_states=sources(Action.REVIEW), status=Status.IN_REVIEW.value)


def steps_together(session: AsyncSession) -> AbstractAsyncContextManager[None]:
    """A consumer's batch: the timeline steps its events note are written in one statement at its end, with the
    views they change and the events it emitted. Its transaction commits right after."""
    return repo.batch_written_at_end(session)


async def application_decided(session: AsyncSession, data: ev.ApplicationDecided) -> None:
    if data.outcome in ("approved", "rejected"):
        # A case in review (nearly every decision): moved and read in one statement, not read and then moved.
        app, in_project = await repo.move_loading(
            session, data.application_id, from_states=sources(Action.DECIDE), status=Status.DECIDED.value,
            outcome=data.outcome, decided_at=data.decided_at)
        if app is not None:
            await _decided(session, app, data, in_project=in_project)
            return
    app, in_project = await repo.application_to_decide(session, data.application_id)
    if app is None:
        return
    if data.outcome not in ("approved", "rejected"):
        log.warning("application.decided with unknown outcome %r for %s", data.outcome, app.id)
        await note(session, app, f"审批：{data.outcome}", unit=data.department or app.department,
                   text=data.reasons, at=data.decided_at)
        return
    moved = await repo.move(
        session, app, from_states=sources(Action.DECIDE), status=Status.DECIDED.value, outcome=data.outcome,
        decided_at=data.decided_at,
    )
    if not moved:
        # Already decided at acceptance (即办件), withdrawn, or the certificate came first and was delivered.
        if app.outcome is None:
            await repo.move(session, app, from_states=[app.status], outcome=data.outcome, decided_at=data.decided_at)
        return
    await _decided(session, app, data, in_project=in_project)


async def _decided(session: AsyncSession, app: Application, data: ev.ApplicationDecided, *, in_project: bool) -> None:
    """The case has just moved to `decided`: its step, the result's hand-over, and its project's stage."""
    step = "审批通过" if data.outcome == "approved" else "审批不予许可"
    await note(session, app, step, unit=data.department or app.department,
               text=(f"{data.reasons or ''}（依据：{data.legal_basis}）" if data.legal_basis else data.reasons),
               at=data.decided_at)
    # The written result, the fee and the hand-over; a certificate is handed over once datashare issued it.
    await after_decision(session, app, await item_of(session, app))
    # A project's stage completes when every item dispatched from it is decided.
    if in_project:
        await projects.application_decided(session, app.id)


async def certificate_issued(session: AsyncSession, data: ev.CertificateIssued) -> None:
    if not data.application_id:
        return
    result = {"certificate_number": data.certificate_number, "type_code": data.type_code,
              "type_name": data.type_name, "issued_on": data.issued_on, "valid_until": data.valid_until,
              "issuer_department": data.issuer_department, "received_at": utcnow().isoformat()}
    step = f"电子证照已签发：{data.type_name or data.type_code}"
    if data.certificate_number:
        # The certificate kept, and a decided case handed over electronically delivered with it (nearly every
        # one), in the one statement that also locks and reads the case (a read and then a write before; then one
        # write per guess at its status). Not decided yet (the certificate came before the decision, which hands
        # it over then), or handed over at a window or by post: `hand_over_if_ready` decides with it kept.
        app, handed = await repo.keep_certificate(
            session, data.application_id, certificate_number=data.certificate_number, result=result,
            hand_over_from=Status.DECIDED.value, hand_over_to=Status.DELIVERED.value, method="electronic")
        if app is not None:
            if handed:
                await note(session, app, step, unit=data.issuer_department or app.department,
                           status=Status.DECIDED.value)
                await delivered(session, app, method="electronic")
            else:
                await note(session, app, step, unit=data.issuer_department or app.department)
                await hand_over_if_ready(session, app, await item_of(session, app))
            return
    app = await repo.get_application(session, data.application_id, for_update=True)
    if app is None or (app.result or {}).get("certificate_number") == data.certificate_number:
        return  # unknown, or this certificate is already attached (announced again under another event id)
    await note(session, app, step, unit=data.issuer_department or app.department)
    # The certificate and the hand-over it allows in one write of the application.
    if not await hand_over_if_ready(session, app, await item_of(session, app), result=result):
        await repo.move(session, app, from_states=[app.status], result=result)


async def delegation_changed(session: AsyncSession, data: ev.DelegationChanged, *,
                             revoked_at: datetime | None) -> None:
    await repo.record_delegation(
        session, delegation_id=data.delegation_id, principal_kind=data.principal.kind, principal_id=data.principal.id,
        agent_id=data.agent_id, items=data.items, valid_until=data.valid_until, revoked_at=revoked_at,
    )
