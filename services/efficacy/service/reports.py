"""What efficacy reports: the reform's figures for a period (三率一数), where people get stuck per item (卡点分析),
items applied for together (精准推送), and certificates about to expire (kept from datashare's events)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.domain.access import narrowed
from services.efficacy.domain.calendar import CHINA
from services.efficacy.domain.clocks import measure
from services.efficacy.domain.insights import RETURNED, TASK_DECIDED, StepUse, correction_counts, step_use
from services.efficacy.domain.kpis import Figure, figures, totals_of
from services.efficacy.events.contracts import CertificateIssued
from services.efficacy.service.clocks import as_instant, recomputed_facts
from services.efficacy.service.settings import current_config
from services.efficacy.store import cases
from services.efficacy.store import kpis as kpi_store
from services.efficacy.store.calendar import current_calendar
from shared.errors import invalid
from shared.principal import Principal

MAX_INSIGHT_DAYS = 366
#: Rows read per insight report, newest first: a report over a busy year is a sample of its latest cases, and
#: says so.
MAX_INSIGHT_ROWS = 50_000


def _check_period(start: date, end: date, max_days: int | None = None) -> None:
    if end < start:
        raise invalid("query.to", "order", "`to` must not be before `from`.")
    if max_days is not None and (end - start).days > max_days:
        raise invalid("query.to", "max_range", f"At most {max_days} days per report.")


async def kpi_report(session: AsyncSession, *, start: date, end: date, department: str | None, item: str | None,
                     service_point: str | None, recomputed: bool) -> tuple[int, list[Figure]]:
    """(applications, figures) for the period; `recomputed` rebuilds every figure from the stored events instead
    of the incrementally kept rows (slower; for checking)."""
    _check_period(start, end)
    if recomputed:
        everything = await recomputed_facts(session, await current_calendar(session))
        rows = [f for f in everything.values() if f.anchor_on and start <= f.anchor_on <= end
                and (not department or f.department == department) and (not item or f.item_code == item)
                and (not service_point or f.service_point == service_point)]
        catalogue = await cases.items(session, department=department, item=item)
        scores = await kpi_store.rating_scores(session, {r.application_id for r in rows})
        totals = totals_of(rows, [bool(i.fully_online) for i in catalogue], scores)
    else:
        totals = await kpi_store.totals_in(session, start=start, end=end, department=department, item=item,
                                           service_point=service_point)
    return totals.applications, figures(totals, current_config().targets)


@dataclass
class ItemStuck:
    item_code: str | None
    corrections: list[tuple[str, int]] = field(default_factory=list)
    steps: list[StepUse] = field(default_factory=list)


@dataclass
class StuckResult:
    department: str | None
    truncated: bool
    items: list[ItemStuck]


async def stuck(session: AsyncSession, principal: Principal, *, start: date, end: date, department: str | None,
                item: str | None) -> StuckResult:
    """Materials sent back for correction and steps using most of their limit, per item; supervisors see the city,
    a department's staff their department."""
    _check_period(start, end, MAX_INSIGHT_DAYS)
    department = narrowed(principal, department, refusal="For supervisors and departments' staff.",
                          foreign="A department's staff see their own department only.")
    lo = datetime.combine(start, time.min, CHINA)
    hi = datetime.combine(end + timedelta(days=1), time.min, CHINA)
    rows = await cases.correction_events(session, start=lo, end=hi, department=department, item=item,
                                         types=(RETURNED, TASK_DECIDED), limit=MAX_INSIGHT_ROWS)
    corrections = correction_counts((r.item_code, r.type, r.data) for r in rows)
    clocks = await cases.settled_task_clocks(session, since=lo, department=department, item=item,
                                             limit=MAX_INSIGHT_ROWS)
    cal = await current_calendar(session)
    now = as_instant(None)
    settled = []
    for item_code, c in clocks:
        if c.stopped_at is None or not (lo <= c.stopped_at < hi):
            continue
        v = measure(c, cal, now)
        if v.elapsed_workdays is not None and c.limit_value and c.limit_unit == "working_days":
            settled.append((item_code, c.step_key, c.department, v.elapsed_workdays, c.limit_value))
    steps = step_use(settled)
    codes = sorted(set(corrections) | set(steps), key=lambda c: (-sum(corrections.get(c, {}).values()), c or ""))
    return StuckResult(
        department=department,
        truncated=len(rows) >= MAX_INSIGHT_ROWS or len(clocks) >= MAX_INSIGHT_ROWS,
        items=[ItemStuck(code, corrections.get(code, Counter()).most_common(20), steps.get(code, [])[:20])
               for code in codes])


async def also_needed(session: AsyncSession, item: str, limit: int) -> list[tuple[str, str | None, int]]:
    """(item code, name, applicants) of items the applicants of `item` also applied for, most first."""
    pairs = await cases.co_applied_items(session, item, limit)
    names = {i.code: i.name for i in await cases.items(session)}
    return [(code, names.get(code), n) for code, n in pairs]


async def expiring_certificates(session: AsyncSession, principal: Principal) -> list[Any]:
    """The caller's certificates (theirs, their organisation's, whom they act for) expiring within the reminder
    window, expired ones included."""
    holders = {h for h in (principal.holder_id, principal.organisation,
                           principal.acting_for.holder_id if principal.acting_for else None) if h}
    if not holders:
        return []
    today = datetime.now(CHINA).date()
    return list(await kpi_store.expiring(session, holders, today + timedelta(days=current_config().reminder_days)))


def _certificate_row(c: CertificateIssued) -> dict[str, Any]:
    return dict(certificate_number=c.certificate_number, type_code=c.type_code, type_name=c.type_name,
                holder_id=c.holder_id, valid_until=c.valid_until)


async def certificate_issued(session: AsyncSession, c: CertificateIssued) -> None:
    await kpi_store.upsert_certificate(session, **_certificate_row(c))


def certificates_carried(session: AsyncSession, issued: list[CertificateIssued]
                         ) -> tuple[list[Any], dict[str, Any]] | None:
    """`certificate_issued` of each, as CTEs for the statement writing a batch's clocks to carry (and their
    parameters), on PostgreSQL and for certificates of distinct numbers; None otherwise (then one by one)."""
    if len({c.certificate_number for c in issued}) < len(issued):
        return None
    return kpi_store.keeping_certificates(session, [_certificate_row(c) for c in issued])


async def certificate_revoked(session: AsyncSession, certificate_number: str) -> None:
    await kpi_store.revoke_certificate(session, certificate_number)
