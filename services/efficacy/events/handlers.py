"""What the efficacy service consumes from the bus."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.casework import flag_access_anomaly, item_steps_changed, record_case_event
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
from services.efficacy.store import cases
from services.efficacy.store import kpis as kpi_store
from shared.events import Event
from shared.messaging import Consumer


async def on_case_event(session: AsyncSession, event: Event) -> None:
    """Intake's and workflow's events about an application: clocks, pauses, stops, KPI facts."""
    if not event.data.get("application_id"):
        return
    await record_case_event(session, event)


async def on_catalog_event(session: AsyncSession, event: Event) -> None:
    if event.type == "yimen.catalog.item.published":
        item = ItemPublished.model_validate(event.data)
        steps = (item.process or {}).get("steps") or []
        excluded = [s["key"] for s in steps if isinstance(s, dict) and s.get("excluded_from_limit") and s.get("key")]
        before = await cases.excluded_steps(session, item.code)
        # 受理时限: the acceptance step's limit where the item sets one (configurable per item).
        acceptance = next((int(s.get("limit_days") or 0) for s in steps
                           if isinstance(s, dict) and s.get("kind") == "acceptance"), 0) or None
        await cases.upsert_item(session, code=item.code, version=item.version, name=item.name,
                                department=item.department, fully_online=item.fully_online, excluded_steps=excluded,
                                acceptance_days=acceptance)
        if await cases.excluded_steps(session, item.code) != before:
            await item_steps_changed(session, item.code)
    elif event.type == "yimen.catalog.item.withdrawn":
        w = ItemWithdrawn.model_validate(event.data)
        await cases.withdraw_item(session, w.code, w.version)


async def on_project_event(session: AsyncSession, event: Event) -> None:
    await projects.record_project_event(session, event)


async def on_access_anomaly(session: AsyncSession, event: Event) -> None:
    await flag_access_anomaly(session, event)


async def on_certificate_event(session: AsyncSession, event: Event) -> None:
    if event.type == "yimen.datashare.certificate.issued":
        c = CertificateIssued.model_validate(event.data)
        await kpi_store.upsert_certificate(session, certificate_number=c.certificate_number, type_code=c.type_code,
                                           type_name=c.type_name, holder_id=c.holder_id, valid_until=c.valid_until)
    elif event.type == "yimen.datashare.certificate.revoked":
        await kpi_store.revoke_certificate(session, CertificateRevoked.model_validate(event.data).certificate_number)


#: The events that move a clock (domain/clocks.py) or a KPI (domain/kpis.py); the consumers skip the rest of
#: intake's and workflow's events without a transaction (a stage completing, a handler assigned, a webhook …).
CASE_EVENT_TYPES = frozenset({*CLOCK_EVENTS, *KPI_EVENTS})

CONSUMERS: list[Consumer] = [
    Consumer("efficacy-intake", "yimen.intake.>", on_case_event,
             "Acceptance starts the clock; corrections resume it; return, withdrawal and refusal stop it; "
             "submissions, deliveries and visits feed the KPIs.",
             types=frozenset(t for t in CASE_EVENT_TYPES if t.startswith("yimen.intake."))),
    Consumer("efficacy-workflow", "yimen.workflow.>", on_case_event,
             "Task clocks; correction requests pause; reopening resumes; the decision stops.",
             types=frozenset(t for t in CASE_EVENT_TYPES if t.startswith("yimen.workflow."))),
    Consumer("efficacy-projects", "yimen.intake.project.>", on_project_event,
             "Projects and their stages (统一受理): the project clock counts from the first acceptance.",
             types=PROJECT_EVENTS),
    Consumer("efficacy-catalog", "yimen.catalog.item.*", on_catalog_event,
             "Items for the fully-online rate and the steps excluded from the limit."),
    Consumer("efficacy-certificates", "yimen.datashare.certificate.*", on_certificate_event,
             "Certificates' validity for expiry reminders."),
    Consumer("efficacy-access-anomalies", "yimen.datashare.access.anomaly", on_access_anomaly,
             "Unusual reading of personal data (安全监控) becomes a supervision case for the data office."),
]
