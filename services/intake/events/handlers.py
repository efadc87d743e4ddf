"""What the intake service consumes from the bus: catalog publications (the local copy of item versions),
workflow's progress and decisions (to move the case), and datashare's certificates (to deliver the result).
Thin: each handler parses its event and calls the use case (`service.received`) in the handler's transaction."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.events import contracts as ev
from services.intake.service import projects, received
from shared.events import Event
from shared.messaging import BatchHandler, Consumer, EventHandler, event_data


async def on_item_published(session: AsyncSession, event: Event) -> None:
    data: ev.ItemPublished = event_data(event, ev.ItemPublished)
    await received.item_published(session, data, payload=event.data, at=event.time)


async def on_item_withdrawn(session: AsyncSession, event: Event) -> None:
    await received.item_withdrawn(session, event_data(event, ev.ItemWithdrawn))


async def on_department_upserted(session: AsyncSession, event: Event) -> None:
    data: ev.DepartmentUpserted = event_data(event, ev.DepartmentUpserted)
    await received.unit_named(session, data.code, data.name, data.phone)


async def on_service_point_upserted(session: AsyncSession, event: Event) -> None:
    data: ev.ServicePointUpserted = event_data(event, ev.ServicePointUpserted)
    await received.unit_named(session, data.code, data.name)


async def on_task_assigned(session: AsyncSession, event: Event) -> None:
    await received.task_assigned(session, event_data(event, ev.TaskAssigned))


async def on_task_handler_assigned(session: AsyncSession, event: Event) -> None:
    await received.task_handler_assigned(session, event_data(event, ev.TaskHandlerAssigned))


async def on_task_decided(session: AsyncSession, event: Event) -> None:
    await received.task_decided(session, event_data(event, ev.TaskDecided))


async def on_application_decided(session: AsyncSession, event: Event) -> None:
    await received.application_decided(session, event_data(event, ev.ApplicationDecided))


async def on_certificate_issued(session: AsyncSession, event: Event) -> None:
    await received.certificate_issued(session, event_data(event, ev.CertificateIssued))


async def on_project_type_published(session: AsyncSession, event: Event) -> None:
    data: ev.ProjectTypePublished = event_data(event, ev.ProjectTypePublished)
    await projects.keep_project_type(session, data, event.data)


async def on_delegation(session: AsyncSession, event: Event) -> None:
    data: ev.DelegationChanged = event_data(event, ev.DelegationChanged)
    await received.delegation_changed(session, data, revoked_at=event.time if event.type.endswith(".revoked") else None)


#: From this many cases in one batch on, they are locked (and those going into review moved) together before the
#: handlers run: two statements for the batch instead of one per case.
HOLD_TOGETHER_FROM = 3


def _application_of(event: Event) -> str:
    return str((event.data or {}).get("application_id") or "")


def in_application_order(handler: EventHandler, reviews: Callable[[Event], bool] | None = None) -> BatchHandler:
    """A fetched batch applied in the order of the applications it is about (each application's events in the order
    they came). Each handler locks its application until the batch commits; two consumers' batches that locked
    the same two applications in opposite orders deadlocked, and PostgreSQL finds a deadlock only after
    `deadlock_timeout` (1 s): both consumers stood still for that second, then one went through its batch again
    one event at a time. Events of different applications change different rows, so their order is free."""

    async def apply(session: AsyncSession, events: list[Event]) -> None:
        cases = {_application_of(e) for e in events} - {""}
        if reviews is not None and len(cases) >= HOLD_TOGETHER_FROM:
            await received.hold_cases(session, cases, reviewed=[_application_of(e) for e in events if reviews(e)])
        # The batch's timeline steps go in one statement at its commit (one per event before).
        async with received.steps_together(session):
            for event in sorted(events, key=_application_of):
                await handler(session, event)
                # As InboxConsumer.apply_batch does: each handler starts as in a session of its own.
                await session.flush()
                session.expunge_all()

    return apply


#: How long the busy review consumer collects what arrives into one batch (`Consumer.gather`). A five-department
#: case's assignments come together and its decisions within a fraction of a second: each batch is one transaction,
#: one inbox statement and one timeline statement, instead of one of each per event. Nothing waits on the steps
#: (the timeline and the public status a tenth of a second later). The case's decision waits with them: what it
#: moves on, the result's hand-over, waits for datashare's certificate anyway, which datashare issues on the same
#: `application.decided` in a transaction and a relay of its own (a third of a second later in the bench).
STEPS_GATHER = 0.1


def steps_at_commit(handler: EventHandler) -> EventHandler:
    """One event applied as a batch of one is: its timeline steps are written as its transaction commits (on
    PostgreSQL in the statement that advances the public view, `public_status`)."""

    async def apply(session: AsyncSession, event: Event) -> None:
        async with received.steps_together(session):
            await handler(session, event)

    return apply


def _locking(name: str, subject: str, handler: EventHandler, description: str, gather: float = 0.0,
             reviews: Callable[[Event], bool] | None = None, types: frozenset[str] | None = None) -> Consumer:
    """A consumer whose handler locks the event's application; `reviews`: which of its events move the case into
    review (its batch of many cases locks and moves them together)."""
    return Consumer(name, subject, steps_at_commit(handler), description, types=types,
                    batch_handler=in_application_order(handler, reviews), gather=gather)


def _always(event: Event) -> bool:
    return True


def _never(event: Event) -> bool:
    return False


def _not_a_correction(event: Event) -> bool:
    """A department's decision moves the case into review, unless it asks for a correction (`task_decided`)."""
    return (event.data or {}).get("outcome") != "request_correction"


#: What workflow tells of a case's review, each type with its handler and whether it moves the case into review:
#: the departments' steps and the case's decision.
REVIEW: dict[str, tuple[EventHandler, Callable[[Event], bool]]] = {
    ev.TASK_ASSIGNED: (on_task_assigned, _always),
    ev.TASK_HANDLER_ASSIGNED: (on_task_handler_assigned, _never),
    ev.TASK_DECIDED: (on_task_decided, _not_a_correction),
    ev.APPLICATION_DECIDED: (on_application_decided, _never),
}


async def on_review(session: AsyncSession, event: Event) -> None:
    await REVIEW[event.type][0](session, event)


def _moves_into_review(event: Event) -> bool:
    return REVIEW[event.type][1](event)


CONSUMERS: list[Consumer] = [
    Consumer("intake-item-published", ev.ITEM_PUBLISHED, on_item_published, "Keep every published item version."),
    Consumer("intake-item-withdrawn", ev.ITEM_WITHDRAWN, on_item_withdrawn, "Mark withdrawn versions."),
    Consumer("intake-department-upserted", ev.DEPARTMENT_UPSERTED, on_department_upserted, "Department names."),
    Consumer("intake-service-point-upserted", ev.SERVICE_POINT_UPSERTED, on_service_point_upserted,
             "Service-point names, for timelines."),
    # One consumer for the review (filtered by type): workflow writes a department's decision and what it sets off
    # (the next step's assignment, the case's decision) in one transaction, and a consumer per type applied them
    # in transactions of their own, taking the case's lock at the same moment; the one that waited had read the
    # view's body from before the other's commit, and rendered the view again from the tables. Here they are one
    # batch, in the stream's order. It replaced intake-task-assigned, intake-task-decided,
    # intake-task-handler-assigned and intake-application-decided: on a running deployment the new durable starts
    # at the stream's beginning, and a migration gave it their inbox rows (`20261203_review_consumer_inbox.py`), so
    # what they applied is refused at the inbox.
    _locking("intake-review", "yimen.workflow.>", on_review,
             "Timeline: review started, who holds a department's task (谁在办), corrections and department steps; "
             "the decision.", gather=STEPS_GATHER, reviews=_moves_into_review, types=frozenset(REVIEW)),
    _locking("intake-certificate-issued", ev.CERTIFICATE_ISSUED, on_certificate_issued, "Deliver the result."),
    Consumer("intake-delegation-granted", ev.DELEGATION_GRANTED, on_delegation, "Delegations' items and terms."),
    Consumer("intake-delegation-revoked", ev.DELEGATION_REVOKED, on_delegation, "Revocations end the view."),
    Consumer("intake-project-type-published", ev.PROJECT_TYPE_PUBLISHED, on_project_type_published,
             "Project types and their stages, for projects registered later."),
]
