"""What the workflow service consumes from the bus. Each handler runs in the transaction that also records
the event in the inbox, so a redelivered event has no second effect."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow import service
from services.workflow.events.contracts import (
    APPLICATION_ACCEPTED,
    APPLICATION_CORRECTED,
    APPLICATION_WITHDRAWN,
    CALENDAR_LOADED,
    DEPARTMENT_DECISION,
    ITEM_PUBLISHED,
    ApplicationAccepted,
    ApplicationCorrected,
    ApplicationWithdrawn,
    CalendarLoaded,
    ItemPublished,
)
from shared.events import Event
from shared.messaging import Consumer, event_data

log = logging.getLogger("yimen.workflow")


async def on_item_published(session: AsyncSession, event: Event) -> None:
    await service.record_definition(session, event_data(event, ItemPublished))


async def on_application_accepted(session: AsyncSession, event: Event) -> None:
    await service.start_case(session, event_data(event, ApplicationAccepted))


async def on_application_corrected(session: AsyncSession, event: Event) -> None:
    corrected: ApplicationCorrected = event_data(event, ApplicationCorrected)
    if await service.reopen_task(session, corrected.task_id, corrected.application_id) is None:
        log.warning("correction for task %s of %s reopened nothing", corrected.task_id, corrected.application_id)


async def on_application_withdrawn(session: AsyncSession, event: Event) -> None:
    await service.withdraw_case(session, event_data(event, ApplicationWithdrawn).application_id)


async def on_department_decision(session: AsyncSession, event: Event) -> None:
    """A department system's decision on the bus; a refused one is answered with `workflow.decision.refused`
    by the use case and not retried (retrying cannot make it valid)."""
    await service.decide_on_bus(session, event)


async def on_calendar_loaded(session: AsyncSession, event: Event) -> None:
    data = event_data(event, CalendarLoaded)
    moved = await service.calendar_loaded(session, year=data.year, holidays=data.holidays, workdays=data.workdays,
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
