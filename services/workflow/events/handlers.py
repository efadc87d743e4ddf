"""What the workflow service consumes from the bus. Each handler runs in the transaction that also records
the event in the inbox, so a redelivered event has no second effect."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow import engine
from services.workflow.domain.process import Outcome
from services.workflow.events.contracts import (
    APPLICATION_ACCEPTED,
    APPLICATION_CORRECTED,
    APPLICATION_WITHDRAWN,
    CALENDAR_LOADED,
    DECISION_REFUSED,
    DEPARTMENT_DECISION,
    ITEM_PUBLISHED,
    ApplicationAccepted,
    ApplicationCorrected,
    ApplicationWithdrawn,
    CalendarLoaded,
    DecisionRefused,
    DepartmentDecision,
    ItemPublished,
)
from services.workflow.store.repository import get_task
from shared.errors import Forbidden, Problem
from shared.events import Event
from shared.messaging import Consumer, event_data, publish
from shared.types import utcnow

log = logging.getLogger("yimen.workflow")


async def on_item_published(session: AsyncSession, event: Event) -> None:
    await engine.record_definition(session, event_data(event, ItemPublished))


async def on_application_accepted(session: AsyncSession, event: Event) -> None:
    await engine.start_case(session, event_data(event, ApplicationAccepted))


async def on_application_corrected(session: AsyncSession, event: Event) -> None:
    corrected: ApplicationCorrected = event_data(event, ApplicationCorrected)
    if await engine.reopen_task(session, corrected.task_id, corrected.application_id) is None:
        log.warning("correction for task %s of %s reopened nothing", corrected.task_id, corrected.application_id)


async def on_application_withdrawn(session: AsyncSession, event: Event) -> None:
    await engine.withdraw_case(session, event_data(event, ApplicationWithdrawn).application_id)


def department_of(event: Event) -> str:
    """`yimen.department.<code>.decision` → `<code>`."""
    parts = event.type.split(".")
    return parts[2] if len(parts) == 4 and parts[0] == "yimen" and parts[1] == "department" else ""


async def on_department_decision(session: AsyncSession, event: Event) -> None:
    """A department system decides by event: the department in the subject must be the task's. The subject
    is what NATS vouches for (a department's credentials publish only `yimen.department.<its code>.decision`)
    and the event's type is that subject (`shared.messaging.InboxConsumer` dead-letters any other), so the
    department read here is the one that spoke. A refused decision is answered with
    `workflow.decision.refused` (there is no HTTP status on the bus) and not retried: retrying cannot make
    it valid."""
    department = department_of(event)
    task_id = str(event.data.get("task_id", ""))
    try:
        decision: DepartmentDecision = event_data(event, DepartmentDecision)
        if event.source not in (f"/department/{department}", ""):
            raise Forbidden(f"Event source {event.source} does not match department {department}.")
        await engine.decide_task(
            session, decision.task_id,
            engine.Decider(kind="department_system", id=f"department:{department}",
                           name=decision.decided_by.name, department=department,
                           contact=decision.decided_by.contact, unit=decision.decided_by.unit),
            engine.DecisionInput(Outcome(decision.outcome), decision.reasons, decision.legal_basis,
                                 decision.missing),
        )
    except Problem as problem:
        await _refuse(session, event, task_id, department, problem.status, str(problem))
    except ValueError as exc:  # pydantic's ValidationError: a malformed payload
        await _refuse(session, event, task_id, department, 422, str(exc)[:500])


async def _refuse(session: AsyncSession, event: Event, task_id: str, department: str, status: int,
                  reason: str) -> None:
    log.warning("decision event %s for task %s refused: %s %s", event.id, task_id, status, reason)
    task = await get_task(session, task_id) if task_id else None
    await publish(
        session, DECISION_REFUSED, subject=task_id or None,
        data=DecisionRefused(task_id=task_id, application_id=task.application_id if task else None,
                             department=department, status=status, reason=reason, event_id=event.id,
                             refused_at=utcnow()),
    )


async def on_calendar_loaded(session: AsyncSession, event: Event) -> None:
    data = event_data(event, CalendarLoaded)
    moved = await engine.calendar_loaded(session, year=data.year, holidays=data.holidays, workdays=data.workdays,
                                         source=data.source[:200], loaded_at=data.loaded_at)
    log.info("calendar %s loaded: %d open due dates counted again", data.year, moved)


CONSUMERS: list[Consumer] = [
    Consumer("workflow-item-published", ITEM_PUBLISHED, on_item_published,
             "Keeps every published item version's process definition."),
    Consumer("workflow-application-accepted", APPLICATION_ACCEPTED, on_application_accepted,
             "Starts the case's process and fans out its first stage."),
    Consumer("workflow-application-corrected", APPLICATION_CORRECTED, on_application_corrected,
             "Reopens a task after the applicant's correction."),
    Consumer("workflow-application-withdrawn", APPLICATION_WITHDRAWN, on_application_withdrawn,
             "Stops a withdrawn case and cancels its undecided tasks."),
    Consumer("workflow-department-decision", DEPARTMENT_DECISION, on_department_decision,
             "Applies department systems' decisions sent on the bus."),
    Consumer("workflow-calendar-loaded", CALENDAR_LOADED, on_calendar_loaded,
             "Counts open tasks' due dates again when a year's working-day table is loaded."),
]
