"""Clocks: rebuilding an application's clocks from its events (and its KPI facts with them), the supervision items
those events reveal, reading an application's clocks, and the catalogue's items the clocks depend on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.config import EfficacyConfig
from services.efficacy.domain import kpis as kpi_rules
from services.efficacy.domain.access import department_of, is_applicant, is_overseer
from services.efficacy.domain.calendar import CHINA, local_day
from services.efficacy.domain.clocks import (
    ACCEPTED,
    STOPPING,
    SUBMITTED,
    TASK_DECIDED,
    ClockState,
    ClockView,
    Fact,
    build_clocks,
    measure,
    watch_day,
)
from services.efficacy.events.contracts import (
    CALENDAR_LOADED,
    AccessAnomaly,
    ApplicationAccepted,
    CalendarLoaded,
    ItemPublished,
    ItemWithdrawn,
)
from services.efficacy.service.cards import evaluate
from services.efficacy.service.settings import current_config, policy_of
from services.efficacy.store import calendar as calendar_store
from services.efficacy.store import cases, supervision
from services.efficacy.store import kpis as kpi_store
from services.efficacy.store.calendar import current_calendar
from shared.db import dialect_of
from shared.errors import NotFound
from shared.events import Event
from shared.messaging import publish
from shared.principal import WINDOW_CLERK, Principal
from shared.types import utcnow
from shared.workdays import WorkCalendar


def applicant_key(applicant: dict[str, Any]) -> str:
    return str(applicant.get("holder_id") or applicant.get("id"))


async def record_case_event(session: AsyncSession, event: Event) -> None:
    """Keep the event, rebuild the application's clocks from every event seen, and fold it into the KPIs."""
    await record_case_events(session, [event])


async def record_case_events(session: AsyncSession, events: list[Event],
                             carrying: tuple[list[Any], dict[str, Any]] | None = None) -> None:
    """Several events at once (a fetched batch), leaving the state they leave applied one at a time: each
    application's events are kept, read back and rebuilt from together. On PostgreSQL statements are the cost, so
    they are per batch, not per application: one statement locks the batch's applications, writes their rows,
    keeps and reads their facts (`_segments`: more only where one application's events must see another's), and
    one writes every clock, card clearing and KPI row the batch changed, and carries `carrying` (other writes of
    the batch, as CTEs and their parameters: PostgreSQL only)."""
    groups = _by_application(events)
    if dialect_of(session) != "postgresql":
        for application_id, group in groups:
            read = await _lock_and_read_in_steps(session, application_id, group)
            await _apply(session, application_id, read)
        return
    pending = _PendingWrites(carrying=carrying)
    for segment in _segments([_plan(application_id, group) for application_id, group in groups]):
        if any(pending.holds(p.case.application_id) for p in segment):
            # An application seen again (events split around another's acceptance): one statement cannot write
            # its clocks twice.
            await pending.flush(session)
        reads = await cases.lock_add_and_read_facts(session, [p.case for p in segment])
        for plan, (kept, locked) in zip(segment, reads, strict=True):
            read = await _after_lock(session, plan, kept, locked)
            await _apply(session, plan.case.application_id, read, pending)
    await pending.flush(session)


def _crosses(event: Event) -> bool:
    """An event whose effects reach beyond its application: an acceptance looks for the applicant's other
    applications (and opens an item), a correction request may open an item."""
    return event.type == ACCEPTED or _asks_correction(event)


def _asks_correction(event: Event) -> bool:
    return event.type == TASK_DECIDED and event.data.get("outcome") == "request_correction"


def _by_application(events: list[Event]) -> list[tuple[str, list[Event]]]:
    """The events grouped by application, each group in the batch's order, the groups in the order of their first
    event. An event that reaches beyond its application joins its application's last group only when no event of
    that kind from another application comes after that group: those keep the batch's order among themselves (an
    acceptance sees the acceptances before it, and supervision items are opened in the order of their events)."""
    groups: list[tuple[str, list[Event]]] = []
    last: dict[str, int] = {}
    for event in events:
        application_id = str(event.data["application_id"])
        i = last.get(application_id)
        if i is not None and _crosses(event) and any(_crosses(e) for _, g in groups[i + 1:] for e in g):
            i = None
        if i is None:
            groups.append((application_id, []))
            i = last[application_id] = len(groups) - 1
        groups[i][1].append(event)
    return groups


Read = tuple[list[Event], list[Fact], tuple[frozenset[str], int | None], str | None, str | None,
             dict[str, ApplicationAccepted], set[str]]
"""What `_apply` starts from: the new events, every fact, the item's rules, the item code before and after the
events, the acceptances among the new events, and those already looked for repeats (重复提交)."""


async def _apply(session: AsyncSession, application_id: str, read: Read, pending: _PendingWrites | None = None
                 ) -> None:
    new, facts, rules, before, item_code, accepted, looked = read
    if not new:
        return
    position = {f.event_id: n for n, f in enumerate(facts)}
    for event in new:
        if event.id in looked:
            continue
        if event.id in accepted:
            a = accepted[event.id]
            await _flag_repeated(session, a)
        elif _asks_correction(event):
            # What the application carried when the correction was asked for: the facts up to this one.
            await _flag_material_asked_again(session, event, facts[:position[event.id] + 1], application_id)
    await _rebuild(session, application_id, facts, item_code, [e.id for e in new], before=before, rules=rules,
                   pending=pending)


@dataclass(frozen=True)
class _Plan:
    """An application's events as the batch statement takes them (`cases.CaseEvents`), with the acceptances among
    them, the one whose look for repeats the statement carries, and whether any asks for a correction."""

    case: cases.CaseEvents
    acceptances: dict[str, ApplicationAccepted]
    carried: Event | None
    corrects: bool

    @property
    def repeat_keys(self) -> set[tuple[str, str]]:
        return {(applicant_key(a.applicant.model_dump()), a.item_code) for a in self.acceptances.values()}


def _plan(application_id: str, events: list[Event]) -> _Plan:
    # Written as if every event were new (the events kept before, or the same payload under another id, are few
    # and rarely set a column: told apart in `_after_lock`), and as if the row had no item yet: the statement keeps
    # the row's columns when it has one and only a submission would set them.
    item, columns, acceptances = _case_changes(None, events)
    carried = _repeat_to_carry(events, acceptances)
    return _Plan(cases.CaseEvents(
        application_id, events, columns=columns, every=bool(acceptances),
        item_first=item if acceptances else None, item_else=None if acceptances else item,
        repeat=None if carried is None else (carried.id, supervision.repeated_params(
            **_repeat_params(acceptances[carried.id])))), acceptances, carried, any(map(_asks_correction, events)))


def _segments(plans: list[_Plan]) -> list[list[_Plan]]:
    """The groups in runs that one statement may lock, keep and read together (`cases.lock_add_and_read_facts`):
    all of them but where that would not leave what one group after the other leaves. Such a statement reads as
    of its start, so a run holds each application once (its second group must read the first's facts), and an
    acceptance's look for repeats, carried by the statement, must not miss an earlier group's case row it would
    match (the same applicant and item), nor open its item before an earlier group's correction request opens
    its own, nor come after an acceptance looked for in Python (that one would see the later group's row)."""
    runs: list[list[_Plan]] = []
    run: list[_Plan] = []
    apps: set[str] = set()
    keys: set[tuple[str, str]] = set()
    corrected = looked_later = False
    for plan in plans:
        mine = plan.repeat_keys
        if run and (plan.case.application_id in apps or (plan.acceptances and (
                corrected or looked_later or plan.carried is None or bool(mine & keys)))):
            runs.append(run)
            run, apps, keys, corrected, looked_later = [], set(), set(), False, False
        run.append(plan)
        apps.add(plan.case.application_id)
        keys |= mine
        corrected = corrected or plan.corrects
        looked_later = looked_later or (bool(plan.acceptances) and plan.carried is None)
    return [*runs, run] if run else runs


async def _after_lock(session: AsyncSession, plan: _Plan, kept: set[str], read: cases.LockedCase | None) -> Read:
    """An application's part of the batch statement's answer, as `_apply` takes it."""
    application_id, events = plan.case.application_id, plan.case.events
    carried = plan.carried
    new = [e for e in events if e.id in kept]
    if read is None:
        # Another transaction had the application between the statement's snapshot and its lock (another
        # replica, or a catalogue rebuild): locked now, the row and the facts are read again.
        case = await cases.get_case(session, application_id)
        item_code, changes, accepted = _case_changes(case.item_code, new)
        if changes:
            await cases.update_case(session, application_id, **changes)
        facts, rules = await cases.facts_and_rules(session, application_id, item_code)
        # A repeat looked for in that statement was looked for in its snapshot too: again (a pair is kept once).
        return new, facts, rules, case.item_code, item_code, accepted, set()
    before = read.prior["item_code"]
    item_code, changes, accepted = _case_changes(before, new)
    rules = read.rules
    if len(new) < len(events):
        if (wanted := {**read.prior, **changes}) != {**read.prior, **_case_changes(before, events)[1]}:
            # An event kept before set a column: the row as the new events alone leave it (as it was, for none).
            await cases.update_case(session, application_id, **wanted)
        if item_code != read.item_code and new:
            rules = await cases.item_rules(session, item_code)
    return new, read.facts, rules, before, item_code, accepted, set() if carried is None else {carried.id}


def _repeat_to_carry(events: list[Event], acceptances: dict[str, ApplicationAccepted]) -> Event | None:
    """The acceptance whose look for repeats rides in the statement that keeps it: the events' only one, when no
    correction request comes before it (whose supervision item, opened after that statement, would otherwise
    come first)."""
    if len(acceptances) != 1:
        return None
    for event in events:
        if event.id in acceptances:
            return event
        if event.type == TASK_DECIDED and event.data.get("outcome") == "request_correction":
            return None
    return None


def _repeat_params(accepted: ApplicationAccepted) -> dict[str, Any]:
    """What an acceptance looks for repeats by (`supervision.open_repeated_items`' keywords)."""
    return dict(application_id=accepted.application_id, applicant_key=applicant_key(accepted.applicant.model_dump()),
                item_code=accepted.item_code, accepted_at=accepted.accepted_at,
                window=timedelta(days=current_config().repeat_window_days), department=accepted.department)


async def _lock_and_read_in_steps(session: AsyncSession, application_id: str, events: list[Event]) -> Read:
    """Lock the application, keep its events, write its case row as the new ones leave it, and read every fact
    and its item's rules, each a statement of its own (SQLite; PostgreSQL: the batch statement)."""
    case = await cases.lock_case(session, application_id)
    item_code, changes, accepted = _case_changes(case.item_code, events)
    written = _case_row(case, changes) if changes else None
    kept, facts, rules = await cases.add_and_read_facts(session, application_id, events, item_code, written)
    new = [e for e in events if e.id in kept]
    if len(new) < len(events):
        used = item_code
        item_code, changes, accepted = _case_changes(case.item_code, new)
        if written is not None and (wanted := _case_row(case, changes)) != written:
            # An event kept before set a column: the row as the new events alone leave it (as it was, for none).
            await cases.update_case(session, application_id, **wanted)
        if item_code != used and new:
            rules = await cases.item_rules(session, item_code)
    return new, facts, rules, case.item_code, item_code, accepted, set()


def _case_row(case: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """Every column of `cases.CASE_COLUMNS` as `changes` leave the locked row `case` (one statement text for any
    change)."""
    return {**{k: getattr(case, k) for k in cases.CASE_COLUMNS}, **changes}


def _case_changes(item_code: str | None, events: list[Event]
                  ) -> tuple[str | None, dict[str, Any], dict[str, ApplicationAccepted]]:
    """The item code after the events, the case row's columns as they set them one after the other, and the
    acceptances among them."""
    changes: dict[str, Any] = {}
    accepted: dict[str, ApplicationAccepted] = {}
    for event in events:
        if event.type == ACCEPTED:
            a = accepted[event.id] = ApplicationAccepted.model_validate(event.data)
            applicant = a.applicant.model_dump()
            changes.update(applicant=applicant, applicant_key=applicant_key(applicant), department=a.department,
                           item_code=a.item_code, accepted_at=a.accepted_at)
            item_code = a.item_code
        elif event.type == SUBMITTED and item_code is None:
            # Known from the submission on: the acceptance step has a clock (and cards) of its own, and a case
            # returned before acceptance still counts for its item where people get stuck (卡点分析).
            applicant = dict(event.data.get("applicant") or {})
            item_code = event.data.get("item_code")
            changes.update(applicant=applicant or None, applicant_key=applicant_key(applicant) if applicant else None,
                           department=event.data.get("department"), item_code=item_code)
    return item_code, changes, accepted


def _clock_list(app_clock: ClockState, task_clocks: dict[str, ClockState]) -> list[ClockState]:
    return [app_clock, *task_clocks.values()] if app_clock.started_at or app_clock.stopped_at else [
        *task_clocks.values()]


async def _rebuild(session: AsyncSession, application_id: str, facts: list[Fact], item_code: str | None,
                   new: list[str] | None = None, *, before: str | None = None,
                   rules: tuple[frozenset[str], int | None] | None = None,
                   pending: _PendingWrites | None = None) -> None:
    """Rebuild and save the application's clocks and its KPI row (folded from every fact, as from scratch).

    For new events (the last of `facts`, `new` their ids) under the item the previous rebuild used, the clocks
    and KPI row stored by that rebuild are those of the facts before them: they are built again in memory rather
    than read back, and only what the events changed is written (statements are the cost). Otherwise every clock
    is replaced. On PostgreSQL the writes join `pending` (the batch's, written together), else are written now."""
    excluded, acceptance_days = rules if rules is not None else await cases.item_rules(session, item_code)
    app_clock, task_clocks = build_clocks(application_id, facts, excluded_steps=excluded,
                                          acceptance_days=acceptance_days)
    clocks = _clock_list(app_clock, task_clocks)
    calendar = await current_calendar(session)
    policy = policy_of(current_config())
    f = kpi_rules.fold(application_id, facts)
    kpi_rules.settle(f, _settled_view(app_clock, calendar))
    n = len(new or ())
    # Applied one at a time, each of the events would be rebuilt in place of the one before under the same item
    # while the application is not stopped; a stopped application is not rebuilt when its item's rules change
    # (item_steps_changed), so its stored clocks may be those of older rules and are replaced in full. Only a
    # stopping event stops it, so it holds for every one of the events when no fact before the last one stops it.
    incremental = (n > 0 and before == item_code and [x.event_id for x in facts[-n:]] == new
                   and not any(x.type in STOPPING for x in facts[:-1]))
    # Every stopped clock's cards cleared, as before: a card raised while its clock was being stopped is cleared
    # by the next event.
    stopped = [c.clock_id for c in clocks if c.state == "stopped"]
    if not incremental:
        # Nothing to delete when every fact is new: no rebuild before this one stored a clock.
        stored = {x.event_id for x in facts} != set(new or ())
        write = cases.ClockWrite(application_id, clocks, {c.clock_id: watch_day(c, calendar, policy) for c in clocks},
                                 gone=[], replace=stored)
        save: kpi_rules.ApplicationFacts | None = f
    else:
        prior_facts = facts[:-n]
        prior_app, prior_tasks = build_clocks(application_id, prior_facts, excluded_steps=excluded,
                                              acceptance_days=acceptance_days)
        prior = {c.clock_id: c for c in _clock_list(prior_app, prior_tasks)}
        # A clock equal to the stored one has the stored watch day too (the same function of it, calendar and
        # policy).
        changed = [c for c in clocks if prior.get(c.clock_id) != c]
        current = {c.clock_id for c in clocks}
        prior_f = kpi_rules.fold(application_id, prior_facts)
        kpi_rules.settle(prior_f, _settled_view(prior_app, calendar))
        # A settled row depends on the calendar, which may have been loaded since: written again, as before.
        save = f if f != prior_f or app_clock.stopped_at is not None else None
        write = cases.ClockWrite(application_id, changed,
                                 {c.clock_id: watch_day(c, calendar, policy) for c in changed},
                                 gone=[i for i in prior if i not in current], replace=False)
    if dialect_of(session) == "postgresql":
        batch = pending if pending is not None else _PendingWrites()
        batch.add(write, stopped, save)
        if pending is None:
            await batch.flush(session)
        return
    if incremental:
        await cases.write_clocks(session, application_id, write.states, write.watch, write.gone)
    else:
        await cases.save_clocks(session, application_id, write.states, write.watch, stored=write.replace)
    await supervision.clear_cards(session, stopped, utcnow())
    if save is not None:
        await kpi_store.save_facts(session, save)


@dataclass
class _PendingWrites:
    """A batch's clocks, cards to clear and KPI rows (PostgreSQL), written by one statement at its end
    (`cases.write_clocks_of`): statements are the cost, one per application was most of a batch's."""

    writes: list[cases.ClockWrite] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    facts: list[kpi_rules.ApplicationFacts] = field(default_factory=list)
    carrying: tuple[list[Any], dict[str, Any]] | None = None

    def holds(self, application_id: str) -> bool:
        return any(w.application_id == application_id for w in self.writes)

    def add(self, write: cases.ClockWrite, stopped: list[str], save: kpi_rules.ApplicationFacts | None) -> None:
        self.writes.append(write)
        self.stopped += stopped
        if save is not None:
            self.facts.append(save)

    async def flush(self, session: AsyncSession) -> None:
        writes = [w for w in self.writes if w.states or w.gone or w.replace]
        if writes or self.stopped or self.facts or self.carrying:
            clearing = supervision.clearing(session, self.stopped, utcnow())
            saving = kpi_store.saving(session, self.facts)
            assert clearing is not None and saving is not None  # PostgreSQL
            other = self.carrying or ([], {})
            await cases.write_clocks_of(session, writes, ([*clearing[0], *saving[0], *other[0]],
                                                          {**clearing[1], **saving[1], **other[1]}))
        self.writes, self.stopped, self.facts, self.carrying = [], [], [], None


async def item_steps_changed(session: AsyncSession, item_code: str) -> int:
    """The catalog (re)published an item: its open applications' clocks are rebuilt, since the steps excluded
    from the limit (special procedures) may have changed or arrived after the tasks."""
    n = 0
    for application_id in await cases.open_applications_of(session, item_code):
        await cases.lock_case(session, application_id)
        await _rebuild(session, application_id, await cases.facts(session, application_id), item_code)
        n += 1
    return n


async def calendar_loaded(session: AsyncSession, year: int, config: EfficacyConfig, *,
                          holidays: frozenset[date] = frozenset(), workdays: frozenset[date] = frozenset(),
                          source: str = "") -> int:
    """A year's official table replaced what was assumed (or an older table): every running clock that started
    by the end of that year gets its watch day counted again with the new calendar, and the cards due now are
    re-evaluated, so a deadline the estimate put too early or too late moves and its card follows. The table is
    announced (`efficacy.calendar.loaded`) so workflow counts its due dates again too."""
    await cases.hold_clocks_still(session)
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


async def _flag_repeated(session: AsyncSession, accepted: ApplicationAccepted) -> None:
    """重复提交: the same applicant accepted again for the same item within the window is a supervision item (one
    per pair of applications). Looked for and written by one statement: an acceptance that repeats nothing, the
    common case, writes no row."""
    await supervision.open_repeated_items(session, **_repeat_params(accepted))


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


async def _flag_material_asked_again(session: AsyncSession, event: Event, facts: list[Fact],
                                     application_id: str) -> None:
    """A correction asking for a material the application already carried is a repeated demand (重复索要)."""
    given = {m.get("code") for f in facts if f.type == ACCEPTED for m in f.data.get("materials") or []}
    asked = {m.get("material_code") for m in event.data.get("missing") or [] if isinstance(m, dict)}
    again = sorted(c for c in given & asked if c)
    if again:
        await supervision.open_item(
            session, dedupe_key=f"material-again:{event.data.get('task_id')}:{','.join(again)}",
            kind="material_asked_again", is_case=False, department=event.data.get("department"),
            application_id=application_id,
            detail=f"Task {event.data.get('task_id')} asked again for material(s) already provided: {', '.join(again)}.")


async def recomputed_facts(session: AsyncSession, calendar: WorkCalendar) -> dict[str, kpi_rules.ApplicationFacts]:
    """Every application's KPI facts rebuilt from the stored events alone (checks the incremental rows)."""
    out: dict[str, kpi_rules.ApplicationFacts] = {}
    async for application_id, facts in cases.all_facts(session):
        case = await cases.get_case(session, application_id)
        excluded = await cases.excluded_steps(session, case.item_code if case else None)
        out[application_id] = recompute_facts(application_id, facts, calendar, excluded)
    return out


# ---- the catalogue's items -------------------------------------------------------------------------------


async def item_published(session: AsyncSession, item: ItemPublished) -> None:
    """Keep the item for the fully-online rate and the steps excluded from the limit; when those steps changed,
    its open applications' clocks are rebuilt."""
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


async def item_withdrawn(session: AsyncSession, withdrawn: ItemWithdrawn) -> None:
    await cases.withdraw_item(session, withdrawn.code, withdrawn.version)


# ---- reading an application's clocks ---------------------------------------------------------------------


def as_instant(value: datetime | None) -> datetime:
    """An instant from a query: now when absent; a naive one is Asia/Shanghai."""
    if value is None:
        return datetime.now(UTC)
    return value if value.tzinfo else value.replace(tzinfo=CHINA)


async def application_clocks(session: AsyncSession, principal: Principal, application_id: str,
                             at: datetime) -> list[ClockView]:
    """An application's clocks measured at `at`: for the applicant, supervisors, window clerks and the departments
    involved; anyone else is told there is none, as for an unknown application."""
    case = await cases.get_case(session, application_id)
    states = await cases.clocks_of(session, application_id)
    # A stranger learns nothing, not even that the application exists (as in intake and workflow).
    unknown = NotFound("No clock for this application (not accepted, or not seen yet).")
    if case is None or not states:
        raise unknown
    departments = {s.department for s in states if s.department} | {case.department}
    dept = department_of(principal)
    allowed = (
        is_overseer(principal) or (principal.is_staff and principal.has(WINDOW_CLERK))
        or (dept is not None and dept in departments) or is_applicant(principal, case.applicant)
    )
    if not allowed:
        raise unknown
    cal = await current_calendar(session)
    return [measure(s, cal, at) for s in states]
