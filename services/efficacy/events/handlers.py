"""What the efficacy service consumes from the bus."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy import service
from services.efficacy.domain.clocks import EVENT_TYPES as CLOCK_EVENTS
from services.efficacy.domain.kpis import EVENT_TYPES as KPI_EVENTS
from services.efficacy.events.contracts import (
    PROJECT_EVENTS,
    CertificateIssued,
    CertificateRevoked,
    ItemPublished,
    ItemWithdrawn,
)
from services.efficacy.service import projects
from shared.events import Event
from shared.messaging import Consumer


async def on_case_event(session: AsyncSession, event: Event) -> None:
    """Intake's and workflow's events about an application: clocks, pauses, stops, KPI facts; and datashare's
    certificates issued for applications."""
    if event.type in CERTIFICATE_EVENT_TYPES:
        await on_certificate_event(session, event)
    elif event.data.get("application_id"):
        await service.record_case_event(session, event)


async def on_case_events(session: AsyncSession, events: list[Event]) -> None:
    """A fetched batch of them at once: each application's events applied together. The certificates touch no
    table the case events do: issued ones are carried by the statement writing the batch's clocks (PostgreSQL),
    else each applied in its order (a revocation among them, or a number twice)."""
    certificates = [e for e in events if e.type in CERTIFICATE_EVENT_TYPES]
    issued = [CertificateIssued.model_validate(e.data) for e in certificates if e.type == CERTIFICATE_ISSUED]
    carried = (service.reports.certificates_carried(session, issued)
               if issued and len(issued) == len(certificates) else None)
    await service.record_case_events(session, [e for e in events if e.type not in CERTIFICATE_EVENT_TYPES
                                               and e.data.get("application_id")], carrying=carried)
    if carried is None:
        for event in certificates:
            await on_certificate_event(session, event)


async def on_catalog_event(session: AsyncSession, event: Event) -> None:
    if event.type == "yimen.catalog.item.published":
        await service.item_published(session, ItemPublished.model_validate(event.data))
    elif event.type == "yimen.catalog.item.withdrawn":
        await service.item_withdrawn(session, ItemWithdrawn.model_validate(event.data))


async def on_project_event(session: AsyncSession, event: Event) -> None:
    await projects.record_project_event(session, event)


async def on_access_anomaly(session: AsyncSession, event: Event) -> None:
    await service.flag_access_anomaly(session, event)


async def on_certificate_event(session: AsyncSession, event: Event) -> None:
    if event.type == CERTIFICATE_ISSUED:
        await service.reports.certificate_issued(session, CertificateIssued.model_validate(event.data))
    elif event.type == "yimen.datashare.certificate.revoked":
        await service.reports.certificate_revoked(
            session, CertificateRevoked.model_validate(event.data).certificate_number)


#: The events that move a clock (domain/clocks.py) or a KPI (domain/kpis.py), all intake's and workflow's; the
#: server delivers no other (a stage completing, a handler assigned, a webhook …).
CASE_EVENT_TYPES = frozenset({*CLOCK_EVENTS, *KPI_EVENTS})

#: Datashare's certificates (for expiry reminders), applied by the case consumer (`efficacy-case-events`).
CERTIFICATE_ISSUED = "yimen.datashare.certificate.issued"
CERTIFICATE_EVENT_TYPES = frozenset({*CertificateIssued.consumes, *CertificateRevoked.consumes})

#: How long the busy case-event consumer collects what arrives into one batch (`Consumer.gather`). A five-department
#: case's assignments come together and its decisions within a second or so; each batch costs a transaction, an
#: inbox statement and (PostgreSQL) two statements for all its applications, however many of their events it
#: holds (smoke run, one client: 12 batches per case with no gathering). Nothing on the case's path waits
#: on efficacy: its clocks, KPIs and repeat checks are that much later, and the cards are a periodic round anyway.
CASE_GATHER_SECONDS = 0.5

#: The most events one of its batches takes (`Consumer.batch`). A batch costs its statements whatever it holds: at the
#: worker's default of 20, a five-department case's 17 events filled a gathered batch each, so every case cost a
#: transaction and three statements (bench, 10 clients: 1.0 per case), where a half-second's events at 10 clients
#: are 40 or more.
CASE_BATCH = 200

CONSUMERS: list[Consumer] = [
    # One consumer for intake's, workflow's and datashare's certificate events (they share the stream): a case's
    # events from both come in the stream's order, which follows cause, and in the same batches (one for intake's
    # and one for workflow's took turns at the same applications' locks and each paid its own transactions; the
    # certificates' own consumer paid a transaction and an inbox claim for each case's one certificate). It
    # replaced efficacy-intake and efficacy-workflow (as `efficacy-cases`), then efficacy-cases and
    # efficacy-certificates: on a running deployment the new durable starts at the stream's beginning; migrations
    # gave it their inbox rows (`20261201_case_consumer_inbox.py`, `20261201_certificates_in_case_consumer.py`),
    # so what they applied is refused at the inbox, and a fact kept already is skipped by `record_case_events`.
    Consumer("efficacy-case-events", "yimen.>", on_case_event,
             "Acceptance starts the clock; corrections resume it; return, withdrawal and refusal stop it; "
             "submissions, deliveries and visits feed the KPIs; task clocks: correction requests pause, reopening "
             "resumes, the decision stops. Certificates' validity for expiry reminders.",
             types=frozenset({*(t for t in CASE_EVENT_TYPES if t.startswith(("yimen.intake.", "yimen.workflow."))),
                              *CERTIFICATE_EVENT_TYPES}),
             batch_handler=on_case_events, gather=CASE_GATHER_SECONDS, batch=CASE_BATCH),
    Consumer("efficacy-projects", "yimen.intake.project.>", on_project_event,
             "Projects and their stages (统一受理): the project clock counts from the first acceptance.",
             types=PROJECT_EVENTS),
    Consumer("efficacy-catalog", "yimen.catalog.item.*", on_catalog_event,
             "Items for the fully-online rate and the steps excluded from the limit."),
    Consumer("efficacy-access-anomalies", "yimen.datashare.access.anomaly", on_access_anomaly,
             "Unusual reading of personal data (安全监控) becomes a supervision case for the data office."),
]
