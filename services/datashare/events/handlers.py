"""What the datashare service consumes from the bus."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare import service
from services.datashare.events.contracts import (
    APPLICATION_ACCEPTED,
    APPLICATION_DECIDED,
    DEPARTMENT_UPSERTED,
    ITEM_PUBLISHED,
    ITEM_WITHDRAWN,
    TASK_ASSIGNED,
    TASK_CANCELLED,
    TASK_DECIDED,
    TASK_EVENTS,
    TASK_REOPENED,
    ApplicationAccepted,
    ApplicationDecided,
    DepartmentUpserted,
    ItemPublished,
    ItemWithdrawn,
    TaskEvent,
)
from services.datashare.store import archive, items, tasks
from shared.events import Event
from shared.messaging import Consumer, event_data

log = logging.getLogger("yimen.datashare")


async def on_item_published(session: AsyncSession, event: Event) -> None:
    item = event_data(event, ItemPublished)
    await items.upsert_item(
        session, code=item.code, version=item.version, name=item.name, department=item.department,
        content=event.data, published_at=item.published_at or event.time,
    )


async def on_department_upserted(session: AsyncSession, event: Event) -> None:
    d = event_data(event, DepartmentUpserted)
    await items.upsert_department(session, d.code, d.name, d.credit_code)


async def on_item_withdrawn(session: AsyncSession, event: Event) -> None:
    w = event_data(event, ItemWithdrawn)
    await items.withdraw_item(session, w.code, w.version, w.withdrawn_at)


async def on_application_accepted(session: AsyncSession, event: Event) -> None:
    a = event_data(event, ApplicationAccepted)
    await archive.record_accepted(
        session, a.application_id, receipt_number=a.receipt_number, holder_id=a.applicant.holder_id,
        applicant=a.applicant.model_dump(), item_code=a.item_code, item_version=a.item_version,
        item_name=a.item_name, department=a.department, channel=a.channel, online=a.online, form=a.form,
        materials=a.materials, promised_limit=a.promised_limit, accepted_at=a.accepted_at,
    )


async def on_application_decided(session: AsyncSession, event: Event) -> None:
    """Archive the decision; an approval whose result is a certificate issues it to the applicant."""
    d = event_data(event, ApplicationDecided)
    # Its tasks close with the archive row's decision (`tasks.open_departments`), no task row written.
    await service.certificates.archive_decision(session, d)


async def on_application_decisions(session: AsyncSession, events: list[Event]) -> None:
    """A batch of decisions, in the order of their applications (the archive rows locked in one order by any
    batch). Decisions of different applications change different rows, so their order is free."""
    for event in sorted(events, key=lambda e: str((e.data or {}).get("application_id") or "")):
        await on_application_decided(session, event)
        # As InboxConsumer.apply_batch does: each handler starts as in a session of its own.
        await session.flush()
        session.expunge_all()


async def on_task_event(session: AsyncSession, event: Event) -> None:
    """Keep which department holds an open task in which application: the purpose its reads must name. A task
    waiting for the applicant's correction (补正) stays the department's. The row is written at commit, with the
    batch's others (store/tasks.py)."""
    t = event_data(event, TaskEvent)
    at = event.time
    if event.type == TASK_ASSIGNED:
        tasks.task_assigned(session, task_id=t.task_id, application_id=t.application_id,
                                  department=t.department, item_code=t.item_code, at=at)
    elif event.type in (TASK_DECIDED, TASK_REOPENED, TASK_CANCELLED):
        still_open = event.type == TASK_REOPENED or (event.type == TASK_DECIDED and t.outcome == "request_correction")
        tasks.set_state(session, task_id=t.task_id, application_id=t.application_id, department=t.department,
                              state="open" if still_open else "closed", at=at)


async def on_task_events(session: AsyncSession, events: list[Event]) -> None:
    """A batch of task events, in order: their rows fold into one per task, written in one statement."""
    for event in events:
        await on_task_event(session, event)
    await tasks.write_pending(session)


#: How long the task consumer, once an event has come, gathers what follows into the same transaction: a case's
#: task events come in bursts (a stage's departments assigned together, decisions a moment apart). The projection
#: follows the bus anyway; a gathered task becomes a purpose for reads at most this much later.
TASK_GATHER_SECONDS = 0.25
#: The most task events one batch takes (`Consumer.batch`): they fold into one row write per batch, whatever it holds.
TASK_BATCH = 200

CONSUMERS: list[Consumer] = [
    Consumer("datashare-items", ITEM_PUBLISHED, on_item_published, "Keep a copy of published items' materials."),
    Consumer("datashare-items-withdrawn", ITEM_WITHDRAWN, on_item_withdrawn, "Mark withdrawn item versions."),
    Consumer("datashare-departments", DEPARTMENT_UPSERTED, on_department_upserted,
             "Learn departments' credit codes (the issuer segment of certificate identifiers)."),
    Consumer("datashare-accepted", APPLICATION_ACCEPTED, on_application_accepted, "Archive accepted applications."),
    Consumer("datashare-decided", APPLICATION_DECIDED, on_application_decided,
             "Archive decisions; issue the certificate of an approved application.",
             batch_handler=on_application_decisions),
    # Only the four task events that open or close a task: the others on the subject (a handler given the task)
    # are acknowledged without a transaction.
    Consumer("datashare-tasks", TASK_EVENTS, on_task_event,
             "Which department holds an open task in which application (the purpose of a department's reads).",
             types=frozenset(TaskEvent.consumes), batch_handler=on_task_events, gather=TASK_GATHER_SECONDS,
             batch=TASK_BATCH),
]
