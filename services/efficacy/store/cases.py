"""Events about applications, the clocks rebuilt from them, and our copy of the catalogue."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    String,
    Text,
    all_,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.domain.calendar import local_day
from services.efficacy.domain.clocks import ClockState, Fact, fingerprint, watched_now
from services.efficacy.store import supervision
from services.efficacy.store.tables import case_event, case_file, catalog_item, clock
from shared.db import dialect_of
from shared.events import Event
from shared.messaging import insert_ignore
from shared.types import UTCDateTime, utcnow


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: o.isoformat() if isinstance(o, datetime) else str(o)))


def upsert(session: AsyncSession, table: Any) -> Any:
    """`INSERT … ON CONFLICT` in the session's dialect (add `.on_conflict_do_update(…)`)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


@functools.cache
def _lock_statement(dialect: str) -> Any:
    """`lock_case`'s upsert, built once per dialect (it runs for every application of every batch)."""
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(case_file).values(
        application_id=bindparam("b_application_id", type_=String), updated_at=bindparam("b_now", type_=UTCDateTime()))
    ins = ins.on_conflict_do_update(index_elements=[case_file.c.application_id],
                                    set_={"updated_at": ins.excluded.updated_at})
    return ins.returning(*case_file.c)


async def lock_case(session: AsyncSession, application_id: str) -> Any:
    """Create the application's row if new and lock it for this transaction, so that rebuilding its clocks never
    races another consumer: one statement, as the upsert's row lock is the lock (PostgreSQL; SQLite has one
    writer anyway)."""
    return (await session.execute(_lock_statement(dialect_of(session)),
                                  {"b_application_id": application_id, "b_now": utcnow()})).one()


async def get_case(session: AsyncSession, application_id: str) -> Any:
    return (await session.execute(select(case_file).where(case_file.c.application_id == application_id))).first()


#: The case row's columns that case events set (`update_case`, `add_and_read_facts`).
CASE_COLUMNS = ("applicant", "applicant_key", "department", "item_code", "accepted_at")


async def update_case(session: AsyncSession, application_id: str, **values: Any) -> None:
    await session.execute(
        case_file.update().where(case_file.c.application_id == application_id).values(updated_at=utcnow(), **values)
    )


def _fact_rows(application_id: str, events: list[Event]) -> list[dict[str, Any]]:
    return [dict(event_id=e.id, fingerprint=fingerprint(e.type, e.data), application_id=application_id, type=e.type,
                 at=e.time, data=e.data) for e in events]


async def add_facts(session: AsyncSession, application_id: str, events: list[Event]) -> set[str]:
    """Keep the events in one statement, in their order; returns the ids of those kept now (not the ones kept
    before, nor the same payload under another id, in this batch or before)."""
    if not events:
        return set()
    res = await session.execute(insert_ignore(session, case_event).values(_fact_rows(application_id, events))
                                .returning(case_event.c.event_id))
    return set(res.scalars())


def _unnest(name: str, prefix: str = "b_", **columns: Any) -> Any:
    """`unnest(:<prefix><col>, …) WITH ORDINALITY AS name(<col>, …, n)`: rows handed over as one array per column.

    A multi-row `VALUES` is never cached by SQLAlchemy (its structure changes with the row count), so every batch
    compiled its statement again: that compiling was most of the consumer's CPU. Arrays keep one statement text
    for any number of rows, built once and compiled once per process."""
    return func.unnest(*(bindparam(f"{prefix}{k}", type_=postgresql.ARRAY(t)) for k, t in columns.items())).table_valued(
        *columns, with_ordinality="n").render_derived(name=name)


async def add_and_read_facts(session: AsyncSession, application_id: str, events: list[Event], item_code: str | None,
                             case_row: dict[str, Any] | None = None
                             ) -> tuple[set[str], list[Fact], tuple[frozenset[str], int | None]]:
    """`update_case(**case_row)` (when given: every one of `CASE_COLUMNS`), `add_facts`, then every fact of the
    application and its item's rules (as `facts_and_rules`), each a statement of its own after `lock_case`
    (SQLite: PostgreSQL does all of it with the lock in one, `lock_add_and_read_facts`)."""
    if case_row:
        await update_case(session, application_id, **case_row)
    kept = await add_facts(session, application_id, events)
    facts, rules = await facts_and_rules(session, application_id, item_code)
    return kept, facts, rules


@functools.cache
def _lock_add_and_read_statement() -> Any:
    """`lock_add_and_read_facts`' statement, with bind parameters only (see `_unnest`): the applications' part as
    one array per column (`b_app_<column>`), their events likewise (`b_ev_<column>`)."""
    cf, c = case_file, case_event.c
    apps = select(_unnest(
        "app_rows", "b_app_", application_id=String, every=Boolean, unset=Boolean, item_first=String,
        item_else=String, applicant=Text, applicant_key=String, department=String, item_code=String,
        accepted_at=UTCDateTime(), repeat_event=String, repeat_applicant_key=String, repeat_item_code=String,
        repeat_from=UTCDateTime(), repeat_until=UTCDateTime(), repeat_department=String, repeat_detail_head=Text,
    )).cte("apps")
    ours = cf.c.application_id.in_(select(apps.c.application_id))
    # The rows as this statement's snapshot sees them, and the versions of them the lock must find: `xmin` names
    # the transaction that wrote a row, so the two are the same row version exactly when nobody wrote it in between.
    prior = select(literal_column("case_file.xmin").label("x"), cf.c.application_id,
                   *(cf.c[k] for k in CASE_COLUMNS)).where(ours).cte("prior")
    # The columns as each application's events leave its row as the snapshot has it (the lock below writes only
    # that row version): an acceptance (`every`) sets every column; a submission (`unset`) all but accepted_at
    # when the row has no item yet; otherwise the row keeps them (a new row: none).
    sets = or_(apps.c.every, and_(apps.c.unset, prior.c.item_code.is_(None)))
    given = {k: cast(apps.c[k], JSON) if k == "applicant" else apps.c[k] for k in CASE_COLUMNS}
    values = {k: case((apps.c.every if k == "accepted_at" else sets, v), else_=prior.c[k]) for k, v in given.items()}
    ins = postgresql.insert(cf).from_select(
        ["application_id", "updated_at", *CASE_COLUMNS],
        # In application order: two batches sharing applications lock them in the same order.
        select(apps.c.application_id, bindparam("b_now", type_=UTCDateTime()), *values.values())
        .select_from(apps.outerjoin(prior, prior.c.application_id == apps.c.application_id))
        .order_by(apps.c.application_id))
    locked = ins.on_conflict_do_update(
        index_elements=[cf.c.application_id],
        set_={k: ins.excluded[k] for k in ("updated_at", *CASE_COLUMNS)},
        # Not met when another transaction wrote the row after this statement's snapshot was taken: the row is
        # locked all the same, and not returned (the facts read here may then miss that transaction's).
        # (As text: SQLAlchemy does not correlate a subquery in ON CONFLICT's WHERE with the conflicting row.)
        where=text("case_file.xmin = (SELECT prior.x FROM prior WHERE prior.application_id = case_file.application_id)"),
    ).returning(cf.c.application_id).cte("locked")
    rows = _unnest("rows", "b_ev_", application_id=String, event_id=String, fingerprint=String, type=String,
                   at=UTCDateTime(), data=Text)
    added = postgresql.insert(case_event).from_select(
        ["event_id", "fingerprint", "application_id", "type", "at", "data"],
        select(rows.c.event_id, rows.c.fingerprint, rows.c.application_id, rows.c.type, rows.c.at,
               cast(rows.c.data, JSON)).order_by(rows.c.n)).on_conflict_do_nothing().returning(
        c.id, c.event_id, c.application_id, c.type, c.at, c.data, c.fingerprint).cte("added")
    before = select(c.id, c.event_id, c.application_id, c.type, c.at, c.data, c.fingerprint,
                    literal(False).label("new")).where(c.application_id.in_(select(apps.c.application_id)))
    now = select(added.c.id, added.c.event_id, added.c.application_id, added.c.type, added.c.at, added.c.data,
                 added.c.fingerprint, literal(True).label("new"))
    f = union_all(before, now).subquery("f")
    # 重复提交 looked for (`supervision.repeated_items`) for the acceptance named by `repeat_event`, when kept now.
    looking = apps.join(added, added.c.event_id == apps.c.repeat_event)
    repeated = supervision.repeated_items_among(
        looking, apps.c.n, application_id=apps.c.application_id, applicant_key=apps.c.repeat_applicant_key,
        item_code=apps.c.repeat_item_code, since=apps.c.repeat_from, until=apps.c.repeat_until,
        department=apps.c.repeat_department, detail_head=apps.c.repeat_detail_head).cte("repeated")
    # The item the events leave: an acceptance's, else the row's, else a submission's.
    item = func.coalesce(apps.c.item_first, prior.c.item_code, apps.c.item_else)
    return (select(apps.c.application_id.label("app"), f.c.id, f.c.event_id, f.c.type, f.c.at, f.c.data,
                   f.c.fingerprint, f.c.new, catalog_item.c.code.label("rules_code"), catalog_item.c.excluded_steps,
                   catalog_item.c.acceptance_days, locked.c.application_id.label("locked"),
                   # The applicant as text: read only in the rare case it is needed (see `LockedCase`).
                   cast(prior.c.applicant, Text).label("prior_applicant"),
                   *(prior.c[k].label(f"prior_{k}") for k in CASE_COLUMNS if k != "applicant"))
            .select_from(apps.outerjoin(f, f.c.application_id == apps.c.application_id)
                         .outerjoin(prior, prior.c.application_id == apps.c.application_id)
                         .outerjoin(locked, locked.c.application_id == apps.c.application_id)
                         .outerjoin(catalog_item, catalog_item.c.code == item))
            .order_by(apps.c.n, f.c.id).add_cte(repeated))


@dataclass(frozen=True)
class LockedCase:
    """What `lock_add_and_read_facts` found for an application: the events kept now, every fact, the item's rules
    as read for `item_code`, and the case row's columns as they were before the statement wrote them."""

    kept: set[str]
    facts: list[Fact]
    rules: tuple[frozenset[str], int | None]
    item_code: str | None
    prior: dict[str, Any]


@dataclass(frozen=True)
class CaseEvents:
    """One application's part of `lock_add_and_read_facts`: its events and what they write of its case row (all of
    `columns` when `every`, else those but `accepted_at` when the row has no item yet, else none), the item whose
    rules to read (`item_first`, else the row's, else `item_else`), and `repeat`: an acceptance's id and
    `supervision.repeated_params` for it, looked for when it is kept now."""

    application_id: str
    events: list[Event]
    columns: dict[str, Any]
    every: bool
    item_first: str | None
    item_else: str | None
    repeat: tuple[str, dict[str, Any]] | None = None


def _array_params(cases_: list[CaseEvents]) -> dict[str, Any]:
    repeats = [c.repeat[1] if c.repeat else {} for c in cases_]
    events = [(c.application_id, e) for c in cases_ for e in c.events]
    return dict(
        b_now=utcnow(), b_opened_at=utcnow(),
        b_app_application_id=[c.application_id for c in cases_], b_app_every=[c.every for c in cases_],
        b_app_unset=[bool(c.columns) and not c.every for c in cases_],
        b_app_item_first=[c.item_first for c in cases_], b_app_item_else=[c.item_else for c in cases_],
        b_app_applicant=[json.dumps(c.columns["applicant"]) if c.columns.get("applicant") is not None else None
                         for c in cases_],
        **{f"b_app_{k}": [c.columns.get(k) for c in cases_] for k in CASE_COLUMNS if k != "applicant"},
        b_app_repeat_event=[c.repeat[0] if c.repeat else None for c in cases_],
        **{f"b_app_repeat_{k}": [r.get(f"b_{p}") for r in repeats] for k, p in (
            ("applicant_key", "applicant_key"), ("item_code", "item_code"), ("from", "from"), ("until", "until"),
            ("department", "department"), ("detail_head", "detail_head"))},
        b_ev_application_id=[a for a, _ in events], b_ev_event_id=[e.id for _, e in events],
        b_ev_fingerprint=[fingerprint(e.type, e.data) for _, e in events], b_ev_type=[e.type for _, e in events],
        b_ev_at=[e.time for _, e in events], b_ev_data=[json.dumps(e.data) for _, e in events])


async def lock_add_and_read_facts(session: AsyncSession, cases_: list[CaseEvents]
                                  ) -> list[tuple[set[str], LockedCase | None]]:
    """PostgreSQL, one statement for any number of applications (each once): for each, `lock_case` writing its
    case row's columns, `add_facts`, then every fact of the application and the rules of its item, and the look
    for repeats its acceptance carries. Per application, in order: the ids kept now, and what was read, or None
    when another transaction wrote the row between this statement's snapshot and its lock: then the row is locked
    but not written, and a read after this one sees what the snapshot missed."""
    rows = (await session.execute(_lock_add_and_read_statement(), _array_params(cases_))).all()
    by_app: dict[str, list[Any]] = {c.application_id: [] for c in cases_}
    for r in rows:
        by_app[r.app].append(r)
    out: list[tuple[set[str], LockedCase | None]] = []
    for c in cases_:
        mine = by_app[c.application_id]
        facts_ = [r for r in mine if r.id is not None]
        kept = {r.event_id for r in facts_ if r.new}
        first = mine[0]
        if first.locked is None:
            out.append((kept, None))
            continue
        applicant = first.prior_applicant
        prior = {"applicant": json.loads(applicant) if applicant is not None else None,
                 **{k: getattr(first, f"prior_{k}") for k in CASE_COLUMNS if k != "applicant"}}
        rules = (frozenset(first.excluded_steps), first.acceptance_days) if first.rules_code is not None else (
            frozenset(), None)
        item_code = c.item_first or prior["item_code"] or c.item_else
        out.append((kept, LockedCase(kept, [Fact(r.event_id, r.type, r.at, r.data, r.fingerprint) for r in facts_],
                                     rules, item_code, prior)))
    return out


async def facts(session: AsyncSession, application_id: str) -> list[Fact]:
    rows = (await session.execute(
        select(case_event).where(case_event.c.application_id == application_id).order_by(case_event.c.id)
    )).all()
    return [Fact(r.event_id, r.type, r.at, r.data, r.fingerprint) for r in rows]


async def facts_and_rules(session: AsyncSession, application_id: str, item_code: str | None
                          ) -> tuple[list[Fact], tuple[frozenset[str], int | None]]:
    """The application's facts and its item's rules (as `item_rules`) in one read: each fact row carries the
    item's two columns through an outer join (a handful of rows; the rules read alone when there is no fact)."""
    if not item_code:
        return await facts(session, application_id), (frozenset(), None)
    rows = (await session.execute(
        select(case_event.c.event_id, case_event.c.type, case_event.c.at, case_event.c.data,
               case_event.c.fingerprint, catalog_item.c.code.label("rules_code"), catalog_item.c.excluded_steps,
               catalog_item.c.acceptance_days)
        .select_from(case_event.outerjoin(catalog_item, catalog_item.c.code == literal(item_code)))
        .where(case_event.c.application_id == application_id).order_by(case_event.c.id)
    )).all()
    if not rows:
        return [], await item_rules(session, item_code)
    first = rows[0]
    rules = (frozenset(first.excluded_steps), first.acceptance_days) if first.rules_code is not None else (
        frozenset(), None)
    return [Fact(r.event_id, r.type, r.at, r.data, r.fingerprint) for r in rows], rules


async def all_facts(session: AsyncSession, batch: int = 5000) -> AsyncIterator[tuple[str, list[Fact]]]:
    """Every application's facts, application by application (for recomputing from scratch)."""
    last = ""
    while True:
        ids = list((await session.execute(
            select(case_file.c.application_id).where(case_file.c.application_id > last)
            .order_by(case_file.c.application_id).limit(batch)
        )).scalars())
        if not ids:
            return
        rows = (await session.execute(
            select(case_event).where(case_event.c.application_id.in_(ids)).order_by(case_event.c.id)
        )).all()
        grouped: dict[str, list[Fact]] = {i: [] for i in ids}
        for r in rows:
            grouped[r.application_id].append(Fact(r.event_id, r.type, r.at, r.data, r.fingerprint))
        for i in ids:
            yield i, grouped[i]
        last = ids[-1]


def _clock_rows(application_id: str, states: list[ClockState], watch: dict[str, date | None]) -> list[dict[str, Any]]:
    now = utcnow()
    return [dict(clock_id=s.clock_id, application_id=application_id, task_id=s.task_id, kind=s.kind,
                 department=s.department, state=s.state, watch_on=watch.get(s.clock_id), body=s.to_body(),
                 updated_at=now) for s in states]


_CLOCK_SET = ("task_id", "kind", "department", "state", "watch_on", "body", "updated_at")


@functools.cache
def _clocks_statement(carrying: tuple[Any, ...]) -> Any:
    """`write_clocks_of`' statement (PostgreSQL) with bind parameters only (see `_unnest`), carrying the CTEs given:
    the clocks of any number of applications upserted, and the delete of the clocks no longer built (`b_gone`)
    and of every other clock of the applications whose clocks are replaced in full (`b_replace_of`)."""
    rows = _unnest("rows", "b_clock_", clock_id=String, application_id=String, task_id=String, kind=String,
                   department=String, state=String, watch_on=Date, body=Text)
    ins = postgresql.insert(clock).from_select(
        ["clock_id", "application_id", "task_id", "kind", "department", "state", "watch_on", "body", "updated_at"],
        select(rows.c.clock_id, rows.c.application_id, rows.c.task_id, rows.c.kind,
               rows.c.department, rows.c.state, rows.c.watch_on, cast(rows.c.body, JSON),
               bindparam("b_updated_at", type_=UTCDateTime())).order_by(rows.c.n))
    ins = ins.on_conflict_do_update(index_elements=[clock.c.clock_id],
                                    set_={k: ins.excluded[k] for k in _CLOCK_SET})
    # Never a row the insert writes (those are kept), so no row is touched twice by the statement.
    replaced = clock.delete().where(or_(
        and_(clock.c.application_id == any_(bindparam("b_replace_of", type_=postgresql.ARRAY(String))),
             clock.c.clock_id != all_(bindparam("b_clock_clock_id", type_=postgresql.ARRAY(String)))),
        clock.c.clock_id == any_(bindparam("b_gone", type_=postgresql.ARRAY(String))))
    ).returning(clock.c.clock_id).cte("replaced_clocks")
    return ins.add_cte(replaced, *carrying)


@dataclass(frozen=True)
class ClockWrite:
    """An application's clocks to write: `states` upserted with their watch days, `gone` deleted, and when
    `replace` every other clock of the application deleted too."""

    application_id: str
    states: list[ClockState]
    watch: dict[str, date | None]
    gone: list[str]
    replace: bool


async def write_clocks_of(session: AsyncSession, writes: list[ClockWrite],
                          also: tuple[list[Any], dict[str, Any]]) -> None:
    """PostgreSQL: the `writes` (of distinct applications) in one statement carrying `also` (CTEs and their
    parameters: other writes of the same transaction, in the same round trip), whatever their number."""
    states = sorted(((w.application_id, s, w.watch.get(s.clock_id)) for w in writes for s in w.states),
                    key=lambda r: r[1].clock_id)
    _note_watched(session, [(s, watch) for _, s, watch in states])
    await session.execute(_clocks_statement(tuple(also[0])), dict(
        also[1], b_updated_at=utcnow(), b_replace_of=[w.application_id for w in writes if w.replace],
        b_gone=[i for w in writes for i in w.gone],
        b_clock_clock_id=[s.clock_id for _, s, _ in states], b_clock_application_id=[a for a, _, _ in states],
        b_clock_task_id=[s.task_id for _, s, _ in states], b_clock_kind=[s.kind for _, s, _ in states],
        b_clock_department=[s.department for _, s, _ in states], b_clock_state=[s.state for _, s, _ in states],
        b_clock_watch_on=[watch for _, _, watch in states],
        b_clock_body=[json.dumps(s.to_body()) for _, s, _ in states]))


#: `session.info` mark of a transaction that wrote a running clock the card round reads today: its commit wakes
#: the round (which otherwise sleeps until the next local midnight when nothing it read is watched today).
CLOCKS_WATCHED = "efficacy_clocks_watched"


def _note_watched(session: AsyncSession, states: list[tuple[ClockState, date | None]]) -> None:
    today = local_day(utcnow())
    if any(s.state == "running" and watched_now(watch, today) for s, watch in states):
        session.info[CLOCKS_WATCHED] = True


async def _upsert_clocks(session: AsyncSession, application_id: str, states: list[ClockState],
                         watch: dict[str, date | None], replace: bool = False) -> None:
    # Rows locked in clock_id order, the order the card evaluator updates watch days in (`set_watch` over
    # `running_clocks`): in another order (the application's clock before its acceptance clock) the two deadlocked,
    # and the evaluator's whole round was rolled back and redone (seen at 3,000 open cases).
    states = sorted(states, key=lambda s: s.clock_id)
    _note_watched(session, [(s, watch.get(s.clock_id)) for s in states])
    if replace:
        await session.execute(delete(clock).where(clock.c.application_id == application_id))
    ins = upsert(session, clock).values(_clock_rows(application_id, states, watch))
    await session.execute(ins.on_conflict_do_update(index_elements=[clock.c.clock_id],
                                                    set_={k: ins.excluded[k] for k in _CLOCK_SET}))


async def save_clocks(session: AsyncSession, application_id: str, states: list[ClockState],
                      watch: dict[str, date | None] | None = None, *, stored: bool = True) -> None:
    """Replace the application's clocks with the ones just rebuilt (SQLite; PostgreSQL: `write_clocks_of`).
    `stored`: False when the application can have none yet (its first facts), so there is nothing to delete."""
    if not states:
        if stored:
            await session.execute(delete(clock).where(clock.c.application_id == application_id))
        return
    await _upsert_clocks(session, application_id, states, watch or {}, replace=stored)


async def write_clocks(session: AsyncSession, application_id: str, changed: list[ClockState],
                       watch: dict[str, date | None], gone: list[str]) -> None:
    """Write only the clocks an event changed (SQLite; PostgreSQL: `write_clocks_of`): one multi-row upsert for
    new or changed clocks (and a delete for clocks no longer built, which is rare); nothing at all for an event
    that changed none."""
    if gone:
        await session.execute(delete(clock).where(clock.c.clock_id.in_(gone)))
    if changed:
        await _upsert_clocks(session, application_id, changed, watch)


async def hold_clocks_still(session: AsyncSession) -> None:
    """Hold every clock still until the transaction ends (a calendar's recount of every running clock). On
    PostgreSQL a table lock that waits for the case consumers' transactions in flight and keeps new ones from
    writing clocks: row by row, the recount (all clocks in clock_id order) and a consumer's batch (application by
    application) deadlocked, and the admin's calendar load failed with it. SQLite has one writer at a time."""
    if dialect_of(session) == "postgresql":
        await session.execute(text("LOCK TABLE clock IN SHARE ROW EXCLUSIVE MODE"))


async def set_watch(session: AsyncSession, watch: dict[str, date | None], *, skip_locked: bool = False) -> bool:
    """New watch days for clocks (their deadlines counted again, or their crossings evaluated): one executemany.
    True when a clock was passed over (`skip_locked`).

    `skip_locked` (the card round): on PostgreSQL a clock another transaction holds keeps its row. That writer is
    a case consumer rewriting the clock, with a watch day of its own counting; the round waiting for it instead
    deadlocked: a consumer's batch locks clocks application by application, the round all of its page in clock_id
    order (bench, 10 clients: 1-2 deadlocks a run, each a second's wait before PostgreSQL broke it)."""
    if skip_locked and watch and dialect_of(session) == "postgresql":
        free = (await session.execute(
            select(clock.c.clock_id).where(clock.c.clock_id.in_(sorted(watch))).order_by(clock.c.clock_id)
            .with_for_update(skip_locked=True))).scalars().all()
        passed = len(free) < len(watch)
        watch = {k: watch[k] for k in free}
    else:
        passed = False
    if not watch:
        return passed
    await session.execute(
        clock.update().where(clock.c.clock_id == bindparam("b_clock_id")).values(watch_on=bindparam("b_watch_on")),
        # In clock_id order, as the consumers lock clocks (`_upsert_clocks`), so the two never deadlock.
        [{"b_clock_id": k, "b_watch_on": v} for k, v in sorted(watch.items())])
    return passed


async def clocks_of(session: AsyncSession, application_id: str) -> list[ClockState]:
    rows = (await session.execute(
        select(clock.c.body).where(clock.c.application_id == application_id).order_by(clock.c.clock_id)
    )).scalars()
    return [ClockState.from_json(b) for b in rows]


async def running_clocks_after(session: AsyncSession, day: date | None, after: str, limit: int
                               ) -> list[ClockState]:
    """The first `limit` running clocks after clock id `after`, in clock_id order (a keyset page); with `day`,
    only those being watched by then."""
    # The day goes into the text, not as a parameter. As a parameter, PostgreSQL's generic plan of the prepared
    # statement (chosen after five runs) cannot know how few clocks are due, guesses a third of them, and walks
    # the primary key in clock_id order filtering every running clock: 83,000 pages per call at 100,000 open
    # cases (bench run K) where the (state, watch_on) index finds the few due in a few pages. (A date is not input.)
    watched = (or_(clock.c.watch_on.is_(None), clock.c.watch_on <= literal_column(f"'{day.isoformat()}'", Date))
               if day else true())
    rows = (await session.execute(
        select(clock.c.clock_id, clock.c.body).where(clock.c.state == "running", watched, clock.c.clock_id > after)
        .order_by(clock.c.clock_id).limit(limit)
    )).scalars(1)
    return [ClockState.from_json(b) for b in rows]


#: Where the card round is in its pass: undated clocks after a clock id, then dated ones after (watch day, id).
RoundKey = tuple[date | None, str]


async def due_clocks_after(session: AsyncSession, day: date, after: RoundKey | None, limit: int
                           ) -> list[tuple[RoundKey, ClockState]]:
    """The card round's page: the next `limit` running clocks due by `day` after `after` (None: from the start),
    each with its key. First the clocks with no watch day (watched always), in clock_id order; then those whose
    watch day has come, in (watch_on, clock_id) order: `ix_clock_state_watch_clock`'s own order, so the scan
    reads the due clocks and stops, whatever the planner guesses of how many are due. (As one read in clock_id
    order, `watch_on IS NULL OR watch_on <= day`, the planner took stopped clocks' null watch days for running
    ones, guessed a third of the running clocks due, and walked the primary key filtering all of them: 305,000
    pages and 1.9 s for a round that found nothing, at 100,000 open cases, none due; 3 pages each read now.)
    The day goes in the text (not a parameter; a date is not input)."""
    rows: list[tuple[RoundKey, ClockState]] = []
    running = clock.c.state == "running"
    if after is None or after[0] is None:
        undated = (await session.execute(
            select(clock.c.clock_id, clock.c.body)
            .where(running, clock.c.watch_on.is_(None), clock.c.clock_id > (after[1] if after else ""))
            # watch_on too, all null here: so the order is the index's (PostgreSQL takes `IS NULL` for no key).
            .order_by(clock.c.watch_on, clock.c.clock_id).limit(limit))).all()
        rows += [((None, r.clock_id), ClockState.from_json(r.body)) for r in undated]
        if len(rows) == limit:
            return rows
        after = None
    dated = clock.c.watch_on <= literal_column(f"'{day.isoformat()}'", Date)
    if after is not None:
        dated = and_(dated, tuple_(clock.c.watch_on, clock.c.clock_id) > tuple_(literal(after[0], Date),
                                                                                  literal(after[1], String)))
    due = (await session.execute(
        select(clock.c.watch_on, clock.c.clock_id, clock.c.body).where(running, dated)
        .order_by(clock.c.watch_on, clock.c.clock_id).limit(limit - len(rows)))).all()
    return rows + [((r.watch_on, r.clock_id), ClockState.from_json(r.body)) for r in due]


async def running_clocks(session: AsyncSession, day: date | None = None,
                         batch: int = 2000) -> AsyncIterator[list[ClockState]]:
    """Running clocks in batches (keyset over clock_id, so memory stays flat for 100,000 open cases); with `day`,
    only those being watched by then."""
    last = ""
    while True:
        states = await running_clocks_after(session, day, last, batch)
        if not states:
            return
        yield states
        last = states[-1].clock_id


async def upsert_item(session: AsyncSession, *, code: str, version: int, name: str | None, department: str | None,
                      fully_online: bool, excluded_steps: list[str], acceptance_days: int | None = None) -> None:
    row = (await session.execute(select(catalog_item.c.version).where(catalog_item.c.code == code))).first()
    values = dict(version=version, name=name, department=department, fully_online=fully_online,
                  excluded_steps=excluded_steps, withdrawn=False, acceptance_days=acceptance_days)
    if row is None:
        await session.execute(catalog_item.insert().values(code=code, **values))
    elif row.version <= version:
        await session.execute(catalog_item.update().where(catalog_item.c.code == code).values(**values))


async def withdraw_item(session: AsyncSession, code: str, version: int) -> None:
    await session.execute(catalog_item.update().where(catalog_item.c.code == code, catalog_item.c.version <= version)
                          .values(withdrawn=True))


async def item_rules(session: AsyncSession, item_code: str | None) -> tuple[frozenset[str], int | None]:
    """The item's steps excluded from the limit and its acceptance limit, in one read."""
    if not item_code:
        return frozenset(), None
    row = (await session.execute(select(catalog_item.c.excluded_steps, catalog_item.c.acceptance_days)
                                 .where(catalog_item.c.code == item_code))).first()
    return (frozenset(row.excluded_steps), row.acceptance_days) if row else (frozenset(), None)


async def acceptance_days(session: AsyncSession, item_code: str | None) -> int | None:
    if not item_code:
        return None
    row = (await session.execute(select(catalog_item.c.acceptance_days).where(catalog_item.c.code == item_code))).first()
    return row.acceptance_days if row else None


async def excluded_steps(session: AsyncSession, item_code: str | None) -> frozenset[str]:
    if not item_code:
        return frozenset()
    row = (await session.execute(select(catalog_item.c.excluded_steps).where(catalog_item.c.code == item_code))).first()
    return frozenset(row.excluded_steps) if row else frozenset()


async def items(session: AsyncSession, *, department: str | None = None, item: str | None = None) -> list[Any]:
    q = select(catalog_item).where(catalog_item.c.withdrawn.is_(False))
    if department:
        q = q.where(catalog_item.c.department == department)
    if item:
        q = q.where(catalog_item.c.code == item)
    return list((await session.execute(q)).all())


async def open_applications_of(session: AsyncSession, item_code: str) -> list[str]:
    stopped = select(clock.c.application_id).where(clock.c.kind == "application", clock.c.state == "stopped")
    return list((await session.execute(
        select(case_file.c.application_id).where(case_file.c.item_code == item_code,
                                                 case_file.c.application_id.not_in(stopped))
    )).scalars())


async def co_applied_items(session: AsyncSession, item_code: str, limit: int = 10) -> list[tuple[str, int]]:
    """Items that applicants of `item_code` also applied for, most frequent first (精准推送)."""
    a, b = case_file.alias("a"), case_file.alias("b")
    q = (select(b.c.item_code, func.count(func.distinct(b.c.applicant_key)).label("n"))
         .select_from(a.join(b, a.c.applicant_key == b.c.applicant_key))
         .where(a.c.item_code == item_code, b.c.item_code != item_code, b.c.item_code.is_not(None),
                a.c.accepted_at.is_not(None), b.c.accepted_at.is_not(None))
         .group_by(b.c.item_code).order_by(func.count(func.distinct(b.c.applicant_key)).desc(), b.c.item_code)
         .limit(limit))
    return [(r.item_code, r.n) for r in (await session.execute(q)).all()]


async def correction_events(session: AsyncSession, *, start: datetime, end: datetime, department: str | None,
                            item: str | None, types: tuple[str, ...], limit: int) -> list[Any]:
    """Returns and correction requests in [start, end), with the case's item: `limit` rows at most."""
    q = (select(case_file.c.item_code, case_event.c.type, case_event.c.data)
         .join(case_file, case_file.c.application_id == case_event.c.application_id)
         .where(case_event.c.type.in_(types), case_event.c.at >= start, case_event.c.at < end)
         .order_by(case_event.c.id.desc()).limit(limit))
    if department:
        q = q.where(case_file.c.department == department)
    if item:
        q = q.where(case_file.c.item_code == item)
    return list((await session.execute(q)).all())


async def settled_task_clocks(session: AsyncSession, *, since: datetime, department: str | None, item: str | None,
                              limit: int) -> list[tuple[str | None, ClockState]]:
    """Stopped task clocks last rebuilt since `since` (their stop lies before that) with their case's item:
    `limit` at most."""
    q = (select(case_file.c.item_code, clock.c.body)
         .join(case_file, case_file.c.application_id == clock.c.application_id)
         .where(clock.c.kind == "task", clock.c.state == "stopped", clock.c.updated_at >= since)
         .order_by(clock.c.updated_at.desc()).limit(limit))
    if department:
        q = q.where(clock.c.department == department)
    if item:
        q = q.where(case_file.c.item_code == item)
    return [(r.item_code, ClockState.from_json(r.body)) for r in (await session.execute(q)).all()]
