"""Use cases that the consumers, the routes and the background jobs share: rebuilding an application's clocks
from its events, and evaluating clocks for cards (红黄牌)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.config import EfficacyConfig
from services.efficacy.domain import kpis as kpi_rules
from services.efficacy.domain.calendar import local_day
from services.efficacy.domain.clocks import (
    ACCEPTED,
    SUBMITTED,
    TASK_DECIDED,
    CardDecision,
    CardPolicy,
    ClockState,
    ClockView,
    Fact,
    build_clocks,
    decide_card,
    measure,
    watch_day,
)
from services.efficacy.events.contracts import (
    CALENDAR_LOADED,
    CARD_RED,
    CARD_YELLOW,
    AccessAnomaly,
    ApplicationAccepted,
    CalendarLoaded,
    CardRaised,
)
from services.efficacy.store import calendar as calendar_store
from services.efficacy.store import cases, supervision
from services.efficacy.store import kpis as kpi_store
from services.efficacy.store import ratings as ratings_store
from services.efficacy.store.calendar import current_calendar
from shared.events import Event, new_event
from shared.messaging import emit_many, publish
from shared.types import utcnow
from shared.workdays import WorkCalendar

_config = EfficacyConfig()


def current_config() -> EfficacyConfig:
    """The consumers get only a session; the app sets this at start-up from its environment."""
    return _config


def set_config(config: EfficacyConfig) -> None:
    global _config
    _config = config


def applicant_key(applicant: dict[str, Any]) -> str:
    return str(applicant.get("holder_id") or applicant.get("id"))


async def record_case_event(session: AsyncSession, event: Event) -> None:
    """Keep the event, rebuild the application's clocks from every event seen, and fold it into the KPIs."""
    application_id = str(event.data["application_id"])
    case = await cases.lock_case(session, application_id)
    item_code = case.item_code  # kept here as it changes, rather than read back (statements are the cost)
    if not await cases.add_fact(session, application_id, event):
        return  # the same event under another delivery: already part of the set
    if event.type == ACCEPTED:
        accepted = ApplicationAccepted.model_validate(event.data)
        applicant = accepted.applicant.model_dump()
        await cases.update_case(session, application_id, applicant=applicant, applicant_key=applicant_key(applicant),
                                department=accepted.department, item_code=accepted.item_code,
                                accepted_at=accepted.accepted_at)
        item_code = accepted.item_code
        await _flag_repeated(session, accepted, applicant_key(applicant))
    elif event.type == SUBMITTED and item_code is None:
        # Known from the submission on: the acceptance step has a clock (and cards) of its own, and a case returned
        # before acceptance still counts for its item where people get stuck (卡点分析).
        applicant = dict(event.data.get("applicant") or {})
        item_code = event.data.get("item_code")
        await cases.update_case(session, application_id, applicant=applicant or None,
                                applicant_key=applicant_key(applicant) if applicant else None,
                                department=event.data.get("department"), item_code=item_code)
    facts = await cases.facts(session, application_id)
    if event.type == TASK_DECIDED and event.data.get("outcome") == "request_correction":
        await _flag_material_asked_again(session, event, facts, case)
    await _rebuild(session, application_id, facts, item_code,
                   Fact(event.id, event.type, event.time, event.data))


async def _rebuild(session: AsyncSession, application_id: str, facts: list[Fact], item_code: str | None,
                   new: Fact | None) -> None:
    """Rebuild and save the application's clocks; fold the new fact (if any) into its KPI row."""
    excluded, acceptance_days = await cases.item_rules(session, item_code)
    app_clock, task_clocks = build_clocks(application_id, facts, excluded_steps=excluded,
                                          acceptance_days=acceptance_days)
    clocks = [app_clock, *task_clocks.values()] if app_clock.started_at or app_clock.stopped_at else [
        *task_clocks.values()]
    calendar = await current_calendar(session)
    policy = policy_of(current_config())
    await cases.save_clocks(session, application_id, clocks,
                            {c.clock_id: watch_day(c, calendar, policy) for c in clocks})
    await supervision.clear_cards(session, [c.clock_id for c in clocks if c.state == "stopped"], utcnow())
    f = await kpi_store.load_facts(session, application_id)
    if new is not None:
        kpi_rules.apply(f, new)
    kpi_rules.settle(f, _settled_view(app_clock, calendar))
    await kpi_store.save_facts(session, f)


async def item_steps_changed(session: AsyncSession, item_code: str) -> int:
    """The catalog (re)published an item: its open applications' clocks are rebuilt, since the steps excluded
    from the limit (special procedures) may have changed or arrived after the tasks."""
    n = 0
    for application_id in await cases.open_applications_of(session, item_code):
        await cases.lock_case(session, application_id)
        await _rebuild(session, application_id, await cases.facts(session, application_id), item_code, None)
        n += 1
    return n


async def calendar_loaded(session: AsyncSession, year: int, config: EfficacyConfig, *,
                          holidays: frozenset[date] = frozenset(), workdays: frozenset[date] = frozenset(),
                          source: str = "") -> int:
    """A year's official table replaced what was assumed (or an older table): every running clock that started
    by the end of that year gets its watch day counted again with the new calendar, and the cards due now are
    re-evaluated, so a deadline the estimate put too early or too late moves and its card follows. The table is
    announced (`efficacy.calendar.loaded`) so workflow counts its due dates again too."""
    await publish(session, CALENDAR_LOADED, subject=str(year), data=CalendarLoaded(
        year=year, holidays=sorted(holidays), workdays=sorted(workdays), source=source, loaded_at=utcnow()))
    calendar = await calendar_store.holder_for(session).reload(session)
    policy = policy_of(config)
    n = 0
    async for batch in cases.running_clocks(session):
        touched = {s.clock_id: watch_day(s, calendar, policy) for s in batch
                   if s.started_at is not None and local_day(s.started_at).year <= year}
        await cases.set_watch(session, touched)
        n += len(touched)
    await evaluate(session, calendar, utcnow(), config)
    return n


def _settled_view(app_clock: ClockState, calendar: WorkCalendar) -> ClockView | None:
    if app_clock.stopped_at is None or app_clock.started_at is None:
        return None
    return measure(app_clock, calendar, app_clock.stopped_at)


def recompute_facts(application_id: str, facts: list[Fact], calendar: WorkCalendar,
                    excluded: frozenset[str] = frozenset()) -> kpi_rules.ApplicationFacts:
    """An application's KPI facts from scratch, from its stored events."""
    f = kpi_rules.fold(application_id, facts)
    app_clock, _ = build_clocks(application_id, facts, excluded_steps=excluded)
    kpi_rules.settle(f, _settled_view(app_clock, calendar))
    return f


async def _flag_repeated(session: AsyncSession, accepted: ApplicationAccepted, key: str) -> None:
    """重复提交: the same applicant accepted again for the same item within the window is a supervision item."""
    window = timedelta(days=current_config().repeat_window_days)
    for other in await cases.earlier_same_item(session, applicant_key=key, item_code=accepted.item_code,
                                               application_id=accepted.application_id):
        if abs(other.accepted_at - accepted.accepted_at) <= window:
            first, second = sorted([other.application_id, accepted.application_id])
            await supervision.open_item(
                session, dedupe_key=f"repeated:{first}:{second}", kind="repeated_application", is_case=False,
                department=accepted.department, application_id=accepted.application_id,
                detail=f"Applicant applied for {accepted.item_code} again within {window.days} days "
                       f"({first}, {second}).",
            )


_ANOMALY_TEXT = {
    "reads_outside_cases": "read the data of {count} people without an application of its own",
    "refused_reads": "had {count} reads of personal data refused",
    "night_reads": "read personal data {count} times at night",
    "failed_verifications": "presented {count} wrong certificate verification codes",
}


async def flag_access_anomaly(session: AsyncSession, event: Event) -> bool:
    """安全监控: datashare saw unusual reading; a supervision case (督办) for the data office, carrying the evidence
    (reader, rule, counts, window, access-log entries), and the supervisors' webhook when one is configured."""
    a = AccessAnomaly.model_validate(event.data)
    who = f"{a.reader.kind} {a.reader.subject}" + (f" ({a.reader.department})" if a.reader.department else "")
    what = _ANOMALY_TEXT.get(a.kind, a.kind + ": {count}").format(count=a.count)
    seqs = ", ".join(str(s) for s in a.entry_seqs[:20]) + (" …" if len(a.entry_seqs) > 20 else "")
    opened = await supervision.open_item(
        session, dedupe_key=f"access-anomaly:{a.anomaly_id}", kind="data_access_anomaly", is_case=True,
        department=a.data_office, application_id=None,
        detail=f"Data access watch: {who} {what} between {a.window_start.isoformat()} and "
               f"{a.window_end.isoformat()} (threshold {a.threshold}). Access-log entries: {seqs}.",
    )
    config = current_config()
    if opened and config.supervisor_webhook_url:
        await supervision.queue_webhooks(session, [dict(
            message_id=event.id, url=config.supervisor_webhook_url,
            payload=json.dumps({"type": event.type, "timestamp": a.detected_at.isoformat(),
                                "data": a.model_dump(mode="json")}, ensure_ascii=False))])
    return opened


async def _flag_material_asked_again(session: AsyncSession, event: Event, facts: list[Fact], case: Any) -> None:
    """A correction asking for a material the application already carried is a repeated demand (重复索要)."""
    given = {m.get("code") for f in facts if f.type == ACCEPTED for m in f.data.get("materials") or []}
    asked = {m.get("material_code") for m in event.data.get("missing") or [] if isinstance(m, dict)}
    again = sorted(c for c in given & asked if c)
    if again:
        await supervision.open_item(
            session, dedupe_key=f"material-again:{event.data.get('task_id')}:{','.join(again)}",
            kind="material_asked_again", is_case=False, department=event.data.get("department"),
            application_id=case.application_id,
            detail=f"Task {event.data.get('task_id')} asked again for material(s) already provided: {', '.join(again)}.")


@dataclass(frozen=True)
class Forecast:
    view: ClockView
    decision: CardDecision


def forecast(states: list[ClockState], calendar: WorkCalendar, as_of: datetime, policy: CardPolicy) -> list[Forecast]:
    """Which clocks carry which card at `as_of` (a pure function of the clocks and the calendar)."""
    out = []
    for s in states:
        view = measure(s, calendar, as_of)
        decision = decide_card(view, policy)
        if decision is not None:
            out.append(Forecast(view, decision))
    return out


def policy_of(config: EfficacyConfig) -> CardPolicy:
    return CardPolicy(yellow_days=config.yellow_days, yellow_fraction=config.yellow_fraction)


async def evaluate(session: AsyncSession, calendar: WorkCalendar, as_of: datetime, config: EfficacyConfig,
                   ) -> list[dict[str, Any]]:
    """Raise the cards due at `as_of` on every running clock: a row (once per crossing), an event, a queue row,
    a 督办 case for red, and a webhook to supervisors when configured. Works in batches with bulk statements, so
    a pass over 100,000 open clocks that raises nothing only reads."""
    raised: list[dict[str, Any]] = []
    policy = policy_of(config)
    async for batch in cases.running_clocks(session, local_day(as_of)):
        due = forecast(batch, calendar, as_of, policy)
        if not due:
            continue
        seen = await supervision.carded(session, [f.view.state.clock_id for f in due])
        fresh = [f for f in due if (f.view.state.clock_id, f.decision.colour, f.decision.deadline_key) not in seen]
        if not fresh:
            continue
        payloads: dict[str, CardRaised] = {}
        rows = []
        for f in fresh:
            s, d = f.view.state, f.decision
            card_id = uuid.uuid4().hex
            payloads[card_id] = CardRaised(card_id=card_id, application_id=s.application_id, task_id=s.task_id,
                                           department=s.department, colour=d.colour, reason=d.reason,
                                           deadline_at=d.deadline_at, raised_at=as_of)
            rows.append(dict(card_id=card_id, clock_id=s.clock_id, application_id=s.application_id,
                             task_id=s.task_id, department=s.department, colour=d.colour, reason=d.reason,
                             deadline_key=d.deadline_key, deadline_at=d.deadline_at, raised_at=as_of))
        inserted = await supervision.raise_cards(session, rows)
        events, items, hooks = [], [], []
        for card_id in sorted(inserted):
            p = payloads[card_id]
            event = new_event(CARD_RED if p.colour == "red" else CARD_YELLOW, source="/yimen/efficacy",
                              subject=p.application_id, data=p)
            events.append(event)
            what = "督办: overdue" if p.colour == "red" else "warning: deadline near"
            items.append(dict(
                dedupe_key=f"card:{card_id}", kind=f"{p.colour}_card", is_case=p.colour == "red", card_id=card_id,
                department=p.department, application_id=p.application_id,
                detail=f"{what} ({p.reason}); deadline {local_day(p.deadline_at)}; "
                       f"{'task ' + p.task_id if p.task_id else 'application'} {p.application_id}"))
            if config.supervisor_webhook_url:
                hooks.append(dict(message_id=event.id, url=config.supervisor_webhook_url, payload=json.dumps(
                    {"type": event.type, "timestamp": as_of.isoformat(), "data": p.model_dump(mode="json")},
                    ensure_ascii=False)))
            raised.append(p.model_dump(mode="json"))
        await emit_many(session, events)
        await supervision.open_items(session, items)
        await supervision.queue_webhooks(session, hooks)
    await supervision.open_items(session, await ratings_store.overdue_follow_ups(session, local_day(as_of)))
    return raised


async def recomputed_facts(session: AsyncSession, calendar: WorkCalendar) -> dict[str, kpi_rules.ApplicationFacts]:
    """Every application's KPI facts rebuilt from the stored events alone (checks the incremental rows)."""
    out: dict[str, kpi_rules.ApplicationFacts] = {}
    async for application_id, facts in cases.all_facts(session):
        case = await cases.get_case(session, application_id)
        excluded = await cases.excluded_steps(session, case.item_code if case else None)
        out[application_id] = recompute_facts(application_id, facts, calendar, excluded)
    return out
