"""What the datashare service consumes from the bus."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare import service
from services.datashare.domain import certificates as rules
from services.datashare.domain.identifiers import HOLDER_KIND_ORGANISATION, HOLDER_KIND_PERSON
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
from services.datashare.store import archive, items, registries, tasks
from services.datashare.store import certificates as store
from shared.bus import AwaitingEarlierEvent
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
    await tasks.close_application(session, d.application_id, d.decided_at)
    row = await archive.record_decided(
        session, d.application_id, receipt_number=d.receipt_number, holder_id=d.applicant.holder_id,
        item_code=d.item_code, item_version=d.item_version, department=d.department, decided_at=d.decided_at,
        outcome=d.outcome,
    )
    result = d.result
    if d.outcome != "approved" or result is None or result.type != "certificate" or not result.certificate_type:
        return
    if not d.applicant.holder_id:
        log.warning("decided application %s has no holder id; no certificate issued", d.application_id)
        return
    if row.accepted_at is None:
        # The certificate's fields come from the accepted application (its form): that event is on another
        # consumer and may not be applied yet. Issuing now would leave the certificate without its data.
        raise AwaitingEarlierEvent(f"application {d.application_id} decided before its acceptance was archived")
    cert_type = await store.get_type(session, result.certificate_type)
    if cert_type is None:
        # A retry will not make the type exist: the event stays archived, the issue is left to the department.
        log.warning("unknown certificate type %s for application %s", result.certificate_type, d.application_id)
        return
    if await store.certificate_for_application(session, d.application_id, cert_type.code):
        return
    kind = HOLDER_KIND_ORGANISATION if d.applicant.kind == "organisation" else HOLDER_KIND_PERSON
    # An organisation's token carries no name: the legal-persons registry (or the population registry) does,
    # else an earlier certificate of the holder (its business licence), else the name the certificate maps.
    holder_name = (d.applicant.name or await registries.holder_name(session, kind, d.applicant.holder_id)
                   or await store.known_holder_name(session, d.applicant.holder_id))
    issued_on = d.decided_at.astimezone(service.CITY_TZ).date()
    item = await items.get_item(session, d.item_code, d.item_version) if d.item_version else None
    mapping = ((item.content if item else {}).get("result") or {}).get("fields") or {}
    if mapping:
        fields = rules.mapped_fields(
            cert_type.field_schema, mapping, form=row.form or {},
            applicant={"name": holder_name, "holder_id": d.applicant.holder_id},
            decision={"decided_on": issued_on.isoformat(), "department": d.department},
        )
    else:  # an item published before mappings existed
        fields = rules.fields_from_form(cert_type.field_schema, row.form or {}, holder_name)
    holder_name = holder_name or (str(fields["name"]) if fields.get("name") else None)
    if missing := rules.missing_required(cert_type.field_schema, fields):
        # Never an empty shell: the department issues it by hand (POST /certificates) once the data is there.
        log.error("certificate for application %s not issued: type %s needs %s", d.application_id, cert_type.code,
                  ", ".join(missing))
        return
    cert = await service.issue_certificate(
        session, cert_type, holder_id=d.applicant.holder_id, holder_kind=kind, holder_name=holder_name,
        fields=fields, application_id=d.application_id,
        issued_by=f"workflow:{d.department or cert_type.issuer_department}", issued_on=issued_on,
    )
    row.certificate_number = cert.number


async def on_task_event(session: AsyncSession, event: Event) -> None:
    """Keep which department holds an open task in which application: the purpose its reads must name. A task
    waiting for the applicant's correction (补正) stays the department's."""
    t = event_data(event, TaskEvent)
    at = event.time
    if event.type == TASK_ASSIGNED:
        await tasks.task_assigned(session, task_id=t.task_id, application_id=t.application_id,
                                  department=t.department, item_code=t.item_code, at=at)
    elif event.type in (TASK_DECIDED, TASK_REOPENED, TASK_CANCELLED):
        still_open = event.type == TASK_REOPENED or (event.type == TASK_DECIDED and t.outcome == "request_correction")
        await tasks.set_state(session, task_id=t.task_id, application_id=t.application_id, department=t.department,
                              state="open" if still_open else "closed", at=at)


CONSUMERS: list[Consumer] = [
    Consumer("datashare-items", ITEM_PUBLISHED, on_item_published, "Keep a copy of published items' materials."),
    Consumer("datashare-items-withdrawn", ITEM_WITHDRAWN, on_item_withdrawn, "Mark withdrawn item versions."),
    Consumer("datashare-departments", DEPARTMENT_UPSERTED, on_department_upserted,
             "Learn departments' credit codes (the issuer segment of certificate identifiers)."),
    Consumer("datashare-accepted", APPLICATION_ACCEPTED, on_application_accepted, "Archive accepted applications."),
    Consumer("datashare-decided", APPLICATION_DECIDED, on_application_decided,
             "Archive decisions; issue the certificate of an approved application."),
    Consumer("datashare-tasks", TASK_EVENTS, on_task_event,
             "Which department holds an open task in which application (the purpose of a department's reads)."),
]
