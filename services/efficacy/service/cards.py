"""红黄牌 and 督办: which clocks carry a card, raising the cards due (row, event, queue row, webhook), the raised
cards, the supervision queue and the departments' answers, and the dashboard's counts."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.config import EfficacyConfig
from services.efficacy.domain.access import department_of, is_overseer, oversight_scope
from services.efficacy.domain.calendar import CHINA, local_day
from services.efficacy.domain.clocks import (
    CardDecision,
    CardPolicy,
    ClockState,
    ClockView,
    decide_card,
    measure,
    next_watch_day,
    watched_now,
)
from services.efficacy.events.contracts import CARD_RED, CARD_YELLOW, CardRaised
from services.efficacy.service.settings import current_config, policy_of
from services.efficacy.store import calendar as calendar_store
from services.efficacy.store import cases, supervision
from services.efficacy.store import ratings as ratings_store
from services.efficacy.store.calendar import current_calendar
from services.efficacy.store.tables import supervision_item
from shared.db import Database
from shared.errors import Conflict, Forbidden, NotFound
from shared.events import new_event
from shared.messaging import emit_many
from shared.pagination import PageParams, paginate
from shared.principal import Principal
from shared.types import utcnow
from shared.workdays import WorkCalendar

_CARDS_REFUSAL = "Supervisors see all cards; a department's staff see their own."


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


async def evaluate(session: AsyncSession, calendar: WorkCalendar, as_of: datetime, config: EfficacyConfig,
                   ) -> list[dict[str, Any]]:
    """Raise the cards due at `as_of` on every running clock: a row (once per crossing), an event, a queue row,
    a 督办 case for red, and a webhook to supervisors when configured. Works in batches with bulk statements, so
    a pass over 100,000 open clocks that raises nothing only reads; all in the caller's transaction (the
    background job commits as it goes: `evaluate_round`)."""
    raised: list[dict[str, Any]] = []
    async for batch in cases.running_clocks(session, local_day(as_of)):
        raised += await _evaluate_clocks(session, batch, calendar, as_of, config)
    await _open_overdue_follow_ups(session, as_of)
    return raised


#: Running clocks the background round evaluates per transaction.
ROUND_BATCH = 500


@dataclass
class RoundReport:
    """What a card round leaves for the next (`domain.clocks.round_pause`): whether a clock it read is still
    watched today, so that the next round must come at the interval rather than the next day."""

    again: bool = False


async def evaluate_round(db: Database, config: EfficacyConfig, as_of: datetime | None = None, *,
                         batch: int = ROUND_BATCH, report: RoundReport | None = None,
                         ) -> AsyncIterator[list[dict[str, Any]]]:
    """`evaluate` for the background job over the clocks due (`cases.due_clocks_after`: read through the watch-day
    index, so a round costs what is due, not what is open), committing every `batch` clocks; yields the cards
    each committed transaction raised. Each transaction writes its clocks in clock_id order, the order every
    writer of clocks locks them in. A first round over thousands of new clocks neither holds their rows locked to
    its end nor loses all its work when the service stops: the next round reads only the clocks not yet evaluated
    (the others' watch days moved past today), and a crossing carded already is never carded twice. A round with
    fewer clocks is one transaction, as before. `report` learns whether a clock read is still watched today."""
    as_of = as_of or utcnow()
    today = local_day(as_of)
    calendar: WorkCalendar | None = None
    after: cases.RoundKey | None = None
    while True:
        async with db.transaction() as session:
            if calendar is None:  # another replica may have loaded a year
                calendar = await calendar_store.holder_for(session).reload(session)
            page = await cases.due_clocks_after(session, today, after, batch)
            clocks = sorted((s for _, s in page), key=lambda s: s.clock_id)
            raised = await _evaluate_clocks(session, clocks, calendar, as_of, config, report)
            done = len(page) < batch
            if done:
                await _open_overdue_follow_ups(session, as_of)
        yield raised
        if done:
            return
        after = page[-1][0]


async def _open_overdue_follow_ups(session: AsyncSession, as_of: datetime) -> None:
    await supervision.open_items(session, await ratings_store.overdue_follow_ups(session, local_day(as_of)))


async def _evaluate_clocks(session: AsyncSession, batch: list[ClockState], calendar: WorkCalendar, as_of: datetime,
                           config: EfficacyConfig, report: RoundReport | None = None) -> list[dict[str, Any]]:
    """`evaluate` for one batch of running clocks (in clock_id order)."""
    if not batch:
        return []
    raised: list[dict[str, Any]] = []
    policy = policy_of(config)
    today = local_day(as_of)
    views = [measure(s, calendar, as_of) for s in batch]
    # Read again only from the next day a card can fall due: a clock past its yellow day (or overdue) would
    # otherwise be read and counted on every round until it stops, and the evaluator's cost would grow with
    # the open cases instead of with the cards due.
    watch = {v.state.clock_id: next_watch_day(v, calendar, policy, today) for v in views}
    kept = await cases.set_watch(session, {k: day for k, day in watch.items() if day is not None}, skip_locked=True)
    if report is not None and (kept or any(watched_now(day, today) for day in watch.values())):
        # A clock a consumer held (`kept`) keeps its old watch day unless that consumer commits: read it again.
        report.again = True
    due = [Forecast(v, d) for v in views if (d := decide_card(v, policy)) is not None]
    if not due:
        return raised
    seen = await supervision.carded(session, [f.view.state.clock_id for f in due])
    fresh = [f for f in due if (f.view.state.clock_id, f.decision.colour, f.decision.deadline_key) not in seen]
    if not fresh:
        return raised
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
    return raised


async def forecast_cards(session: AsyncSession, principal: Principal, *, day: date | None, colour: str | None,
                         department: str | None) -> tuple[date, list[Forecast]]:
    """Which running clocks carry which card at noon of `day` (default today); nothing is raised."""
    scope = oversight_scope(principal, refusal=_CARDS_REFUSAL)
    day = day or datetime.now(CHINA).date()
    at = datetime.combine(day, time(12, 0), CHINA)
    cal = await current_calendar(session)
    out: list[Forecast] = []
    async for batch in cases.running_clocks(session, day):
        for f in forecast(batch, cal, at, policy_of(current_config())):
            s, d = f.view.state, f.decision
            if colour and d.colour != colour or scope and s.department != scope or department and s.department != department:
                continue
            out.append(f)
    return day, out


async def evaluate_now(session: AsyncSession, at: datetime) -> list[dict[str, Any]]:
    """Raise the cards due at `at` with the calendar in force (the route admits supervisors and admins)."""
    return await evaluate(session, await current_calendar(session), at, current_config())


async def raised_cards(session: AsyncSession, principal: Principal, *, colour: str | None,
                       application_id: str | None, open_only: bool) -> list[Any]:
    scope = oversight_scope(principal, refusal=_CARDS_REFUSAL)
    return list(await supervision.list_cards(session, colour=colour, application_id=application_id,
                                             open_only=open_only, department=scope))


async def supervision_queue(session: AsyncSession, principal: Principal, *, state: str | None, kind: str | None,
                            department: str | None, application_id: str | None,
                            page: PageParams) -> tuple[list[Any], str | None]:
    """Supervisors see every item; a department's staff see their department's."""
    scope = oversight_scope(principal, refusal=_CARDS_REFUSAL)
    q = supervision.items_query(department=scope or department, state=state, kind=kind,
                                application_id=application_id)
    ids, cursor = await paginate(session, q, key_columns=[supervision_item.c.id], params=page,
                                 key_of=lambda i: [i], descending=True)
    return list(await supervision.items_by_id(session, ids)), cursor


async def answer_supervision(session: AsyncSession, principal: Principal, item_id: int, answer: str) -> Any:
    """The department concerned (or a supervisor) answers an item once."""
    item = await supervision.get_item(session, item_id)
    if item is None:
        raise NotFound("No such supervision item.")
    if not is_overseer(principal) and department_of(principal) != item.department:
        raise Forbidden("Only the department concerned answers its supervision items.")
    if item.state == "answered":
        raise Conflict("This item has been answered already.", slug="already-answered")
    await supervision.answer_item(session, item_id, answer=answer, by=principal.subject)
    return await supervision.get_item(session, item_id)


async def dashboard_counts(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    """Open clocks, open cards and the open queue per department: the city for supervisors, a department's own
    for its staff."""
    scope = oversight_scope(principal, refusal="For supervisors and departments' staff.")
    return dict(await supervision.dashboard_counts(session, scope))
