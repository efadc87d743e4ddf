"""The public status projection (办件进度查询): each receipt's public view, rendered once per change.

The status query is the most frequent public read, and it used to join the application, its timeline and the
units' names and render the result on every request. Here the view is rendered when it changes instead: the
store functions that change what it shows (an application's state, a timeline step, a unit's name) mark the
application, and just before the transaction commits, every application marked in it is rendered from the
tables, as they are at that moment, into `public_status` (one read and one upsert per transaction, whatever the
number of steps). The row commits with the change or not at all, so it is never behind what it was rendered
from; the route returns its body as it is.

Most changes need no render from the tables: a department's step or a new status is applied to the body the
transaction read with the application's lock (`body_of` rides on that statement), and written back by one
`UPDATE … WHERE body = <what was read>` (`_advance`): one statement instead of the render's read and upsert. The
body read with the lock can be older than the row (PostgreSQL's lock wait re-reads the locked row, not the
subquery), and a concurrent department's step may have advanced it meanwhile: then the guard matches no row
and the view is rendered from the tables as before, so two departments' steps never overwrite each other.

A consumer's transaction holds its timeline steps to the commit (`hold_steps`): on PostgreSQL the steps' insert
and the guarded updates of every view the transaction advanced are one statement (`UPDATE … FROM unnest(…)` with
the insert as its CTE; the update reads no timeline, and what it did not write is rendered from the tables after
it, which hold the steps by then). SQLite writes the steps first, then each view as before.

The body is exactly what the route returned when it rendered the view per request (`PublicStatus` of the API's
schemas, serialised by pydantic as FastAPI does): no one's personal data, units and never people."""

from __future__ import annotations

import json
import time
from bisect import bisect_right
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from pydantic_core import to_json
from sqlalchemy import String, Text, bindparam, func, literal_column, or_, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import greenlet_spawn

from services.intake.domain import timeline
from services.intake.store.tables import Application, Department, PublicStatusRow, TimelineEntry
from shared.db import Database, dialect_of
from shared.messaging import take_commit_write
from shared.types import UTCDateTime

#: Applications (ids) and units (codes) whose public view changed in the current transaction (`session.info`).
_APPS = "intake_public_status_apps"
_UNITS = "intake_public_status_units"
#: Applications whose row this transaction has updated, and so holds locked until it ends.
_LOCKED = "intake_public_status_locked"
#: What this transaction changed in each application's view (`_Change`), and the bodies it read with the locks.
_CHANGES = "intake_public_status_changes"
_READ = "intake_public_status_read"
#: Timeline steps noted in this transaction and written as it commits, with the views they change (`hold_steps`).
_STEPS = "intake_public_status_steps"
#: Applications whose whole view this transaction read under its lock, after its last change to them (`read_whole`).
_WHOLE = "intake_public_status_whole"
#: Applications rendered per statement when a unit's new name touches many of them.
_CHUNK = 500
#: The fields of an application the public view shows.
SHOWN = frozenset({"status", "item_name", "department", "receipt_number", "verification_code"})
#: Of those, the ones the stored body takes as they are (the others change the row's key or a unit's name).
_IN_PLACE = ("status", "item_name")
#: Above this many applications in one transaction (a consumer's batch), one render of them all from the tables
#: (two statements) costs less than one guarded update each.
_MAX_ADVANCED = 2


@dataclass
class _Change:
    fields: dict[str, Any] = field(default_factory=dict)
    #: The new steps in the order they were added (so in the order of their ids): (at, status, step, code, unit).
    steps: list[tuple[datetime, str, str, str, str]] = field(default_factory=list)
    #: Every new step's id is above every stored step's: the steps of the same instant go after the stored ones.
    ids_after: bool = True
    #: Rendered from the tables at the commit, whatever else is known.
    full: bool = False


def _change(session: AsyncSession | Session, application_id: str) -> _Change:
    return session.info.setdefault(_CHANGES, {}).setdefault(application_id, _Change())


def moved(session: AsyncSession | Session, application_id: str, values: dict[str, Any]) -> None:
    """These shown fields of the application changed in this transaction."""
    session.info.get(_WHOLE, {}).pop(application_id, None)
    c = _change(session, application_id)
    c.fields.update({k: values[k] for k in _IN_PLACE if k in values})
    if SHOWN.difference(_IN_PLACE).intersection(values):
        c.full = True


def stepped(session: AsyncSession | Session, application_id: str, *, at: datetime, status: str, step: str,
            code: str | None, unit: str | None) -> None:
    """A step was added to the application's timeline in this transaction (its id is above the ones before)."""
    session.info.get(_WHOLE, {}).pop(application_id, None)
    if unit is None:  # never so from `note`; the tables know how to show it
        _change(session, application_id).full = True
        return
    c = _change(session, application_id)
    c.steps.append((at.astimezone(UTC), status, step, code or timeline.code_for(step), unit))
    # A stored step was committed by a transaction that held the application's lock at its commit (every render
    # does), so before this one took the lock; ids come from a sequence in the order they are taken. A step added
    # under the lock therefore has an id above every stored step's. (SQLite: one writer at a time, and ids follow
    # the writes.)
    if application_id not in session.info.get(_LOCKED, ()) and dialect_of(session) != "sqlite":
        c.ids_after = False


def body_of(application: Any) -> Any:
    """The stored body of an application's view, as a column of the statement that locks the application."""
    p = PublicStatusRow.__table__
    # Named in full as text: SQLAlchemy writes an UPDATE's RETURNING columns unqualified on SQLite, which would turn
    # the correlation into `receipt_number = receipt_number` (public_status with itself: any row's body).
    outer = literal_column(f"{application.name}.receipt_number")
    return select(p.c.body).where(p.c.receipt_number == outer).scalar_subquery()


def read_with_lock(session: AsyncSession | Session, application_id: str, receipt_number: str | None,
                   body: str | None) -> None:
    """The application's row is locked by this transaction, and this is its view's body as the locking statement
    read it (None: no view yet); the first reading counts (the transaction's own changes are applied to it)."""
    locked(session, application_id)
    if receipt_number is not None and body is not None:
        session.info.setdefault(_READ, {}).setdefault(application_id, (receipt_number, body))


def locked(session: AsyncSession | Session, application_id: str) -> None:
    """This transaction updated the application's row (and holds its lock until it ends): the render at commit
    needs no lock of its own for it."""
    session.info.setdefault(_LOCKED, set()).add(application_id)


def unit_renamed(session: AsyncSession | Session, code: str) -> None:
    """A unit's name changed (or became known): every view that names it is rendered again before the commit."""
    session.info.setdefault(_UNITS, set()).add(code)
    session.info.pop(_WHOLE, None)
    for key in [k for k in _names if k[1] == code]:
        _names.pop(key, None)


class _ViewRow(NamedTuple):
    """A row as `_VIEW_QUERY` returns it."""

    application_id: str
    receipt_number: str
    verification_code: str | None
    app_status: str
    item_name: str
    department: str
    department_name: str | None
    step_id: int | None
    at: datetime | None
    status: str | None
    step: str | None
    code: str | None
    unit: str | None
    unit_name: str | None


def read_whole(session: AsyncSession | Session, app: Any, steps: Iterable[Any], names: dict[str, str]) -> None:
    """This transaction has just read everything the application's view shows: the application as it is now, its
    whole timeline in order (`at`, `id`) with the units' names (`names`, a unit without a name left out), the
    application's department among them. When that happened under the transaction's lock of the application,
    the render at the commit takes the view from it instead of reading the tables again, unless the transaction
    changes the application's view after this (`moved`, `stepped`, `unit_renamed` forget it)."""
    if app.receipt_number is None or app.id not in session.info.get(_LOCKED, ()):
        return
    head = (app.id, app.receipt_number, app.verification_code, app.status, app.item_name, app.department,
            names.get(app.department))
    rows = [_ViewRow(*head, t.id, t.at, t.status, t.step, t.code, t.unit, names.get(t.unit) if t.unit else None)
            for t in steps]
    session.info.setdefault(_WHOLE, {})[app.id] = rows or [_ViewRow(*head, *(None,) * 7)]


#: Units' names by (database, code), for the steps that name a unit their body does not name yet. Never trusted:
#: the guarded update checks each against the table in the statement that writes it (another replica may have
#: applied a new name).
_names: dict[tuple[str, str], str | None] = {}
_NAMES_MAX = 10_000


def _name_of(code: Any) -> Any:
    return select(Department.name).where(Department.code == code).scalar_subquery()


def _view_query() -> Any:
    """The applications (`application_ids`) with a receipt number, their timelines and the units' names: one
    statement."""
    a, t = Application.__table__, TimelineEntry.__table__
    return (
        select(a.c.id.label("application_id"), a.c.receipt_number, a.c.verification_code,
               a.c.status.label("app_status"), a.c.item_name, a.c.department,
               _name_of(a.c.department).label("department_name"), t.c.id.label("step_id"), t.c.at, t.c.status,
               t.c.step, t.c.code, t.c.unit, _name_of(t.c.unit).label("unit_name"))
        .select_from(a.outerjoin(t, t.c.application_id == a.c.id))
        .where(a.c.id.in_(bindparam("application_ids", expanding=True)), a.c.receipt_number.is_not(None))
        # Steps in the order they happened (events from several departments arrive in any order); steps of
        # the same instant in the order intake learned of them.
        .order_by(a.c.id, t.c.at, t.c.id)
    )


#: Built once, as the other hot statements here.
_VIEW_QUERY = _view_query()


def render(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """The projection rows (receipt number, application, code, body) of the rows of `_view_query`."""
    by_app: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_app[r.application_id].append(r)
    out = []
    for app_id, steps in by_app.items():
        r = steps[0]
        body = {
            "receipt_number": r.receipt_number, "status": r.app_status, "item_name": r.item_name,
            "handling_unit": r.department, "handling_unit_name": r.department_name,
            # Staff names and notes stay out: the public view carries no one's personal data.
            "timeline": [{"at": x.at, "status": x.status, "step": x.step, "code": x.code or timeline.code_for(x.step),
                          "unit": x.unit, "unit_name": x.unit_name} for x in steps if x.step_id is not None],
        }
        out.append({"receipt_number": r.receipt_number, "application_id": app_id,
                    "verification_code": r.verification_code, "body": to_json(body).decode()})
    return out


def _upsert(dialect: str) -> Any:
    table = PublicStatusRow.__table__
    stmt = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.receipt_number],
        set_={c: stmt.excluded[c] for c in ("application_id", "verification_code", "body")},
    )


#: `_upsert` (PostgreSQL) with the commit's events or key's answer as a CTE, by their statement: built once.
_UPSERTS_WITH: dict[Any, Any] = {}


def _upsert_with(events: Any) -> Any:
    stmt = _UPSERTS_WITH.get(events)
    if stmt is None:
        # A CTE runs whether or not the statement refers to it.
        stmt = _UPSERTS_WITH[events] = _upsert("postgresql").add_cte(events.cte("events"))
    return stmt


def rebuild(conn: Session | Connection, application_ids: Iterable[str], held: Iterable[str] = ()) -> int:
    """Render these applications' views from the tables and store them (synchronous: the commit hook and the
    migration's backfill). `held`: applications whose rows the transaction has locked already. Returns how many
    rows were written."""
    held = set(held)
    ids = sorted(set(application_ids))
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    written = 0
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i:i + _CHUNK]
        if dialect == "postgresql" and not held.issuperset(chunk):
            # Two transactions adding steps to one application (two departments' events) would each render
            # without the other's uncommitted step, and the later upsert would drop the earlier one's. Holding
            # the application's row until the commit orders them: the later renders after the earlier
            # committed, and sees it. (SQLite has one writer at a time: nothing to order.)
            a = Application.__table__
            conn.execute(select(a.c.id).where(a.c.id.in_(chunk)).order_by(a.c.id).with_for_update())
        rows = render(conn.execute(_VIEW_QUERY, {"application_ids": chunk}))
        if rows:
            conn.execute(_upsert(dialect), rows)
            written += len(rows)
    return written


def naming(conn: Session | Connection, codes: Iterable[str]) -> list[str]:
    """The applications with a receipt whose view names one of these units."""
    a, t = Application.__table__, TimelineEntry.__table__
    codes = list(codes)
    stmt = select(a.c.id).where(a.c.receipt_number.is_not(None), or_(
        a.c.department.in_(codes), a.c.id.in_(select(t.c.application_id).where(t.c.unit.in_(codes)))))
    return list(conn.execute(stmt).scalars())


def _unit_names(session: Session, codes: set[str]) -> tuple[dict[str, str | None], set[str]]:
    """The names of these units (None: not known), and which of them were read just now (the others came from
    `_names`)."""
    db = str(session.get_bind().url)
    names = {c: _names[(db, c)] for c in codes if (db, c) in _names}
    missing = codes - names.keys()
    if missing:
        found = dict(session.execute(select(Department.code, Department.name).where(Department.code.in_(missing))).all())
        if len(_names) >= _NAMES_MAX:
            _names.clear()
        for c in missing:
            names[c] = _names[(db, c)] = found.get(c)
    return names, missing


#: Built once: the guarded update of a view's body (a unit's name it took from `_names` adds a guard of its own).
_ADVANCE = (update(PublicStatusRow.__table__)
            .where(PublicStatusRow.__table__.c.receipt_number == bindparam("receipt"),
                   PublicStatusRow.__table__.c.body == bindparam("old_body"))
            .values(body=bindparam("new_body")))


def _arrays(name: str, **columns: Any) -> Any:
    """`unnest(:<name>_<col>, …) WITH ORDINALITY AS <name>(<col>, …, n)` (PostgreSQL): rows as one array per
    column, so that one statement text serves any number of rows."""
    params = [bindparam(f"{name}_{k}", type_=postgresql.ARRAY(t)) for k, t in columns.items()]
    return func.unnest(*params).table_valued(*columns, with_ordinality="n").render_derived(name=name)


_STEP_COLUMNS: dict[str, Any] = {
    "application_id": String, "at": UTCDateTime(), "status": String, "step": String, "unit": String,
    "staff_name": String, "staff_contact": String, "note": Text, "code": String, "purpose": String}


def _steps_insert() -> Any:
    """The held steps in one insert (PostgreSQL), in the order they were noted: their ids follow it."""
    t, s = TimelineEntry.__table__, _arrays("s", **_STEP_COLUMNS)
    return postgresql.insert(t).from_select(list(_STEP_COLUMNS), select(*(s.c[k] for k in _STEP_COLUMNS))
                                            .order_by(s.c.n))


def _advance_all() -> Any:
    """Every advanced view of the transaction in one guarded update (PostgreSQL), returning the receipts it wrote."""
    p, v = PublicStatusRow.__table__, _arrays("v", receipt=String, old_body=Text, new_body=Text)
    return (update(p).where(p.c.receipt_number == v.c.receipt, p.c.body == v.c.old_body)
            .values(body=v.c.new_body).returning(p.c.receipt_number))


#: Built once, as the other hot statements here. A consumer's batch writes its steps and its views in one
#: statement: the steps' insert rides on the views' update as a CTE (the update does not read the timeline).
_STEPS_INSERT = _steps_insert()
_ADVANCE_ALL = _advance_all()
_STEPS_AND_ADVANCE_ALL = _advance_all().add_cte(_steps_insert().returning(TimelineEntry.__table__.c.id).cte("steps"))


def hold_steps(session: AsyncSession | Session) -> None:
    """The timeline steps this transaction notes from now on are written as it commits (`steps_written` before
    any read of the timeline): on PostgreSQL in the statement that advances the views they change."""
    session.info.setdefault(_STEPS, [])


def held_steps(session: AsyncSession | Session) -> list[dict[str, Any]] | None:
    """Where to note a step that is to be written at the commit; None when steps are written as they are noted."""
    held: list[dict[str, Any]] | None = session.info.get(_STEPS)
    return held


def steps_written(session: AsyncSession | Session) -> tuple[Any, Any] | None:
    """The statement and parameters that write the steps held so far (which are then no longer held), or None."""
    held = session.info.get(_STEPS)
    if not held:
        return None
    session.info[_STEPS] = []
    return _steps_write(dialect_of(session) == "postgresql", held)


def steps_insert() -> Any:
    """The statement of `steps_written` on PostgreSQL (its parameters are one array per column), for a statement
    that writes the held steps as a CTE of its own."""
    return _STEPS_INSERT


def _steps_write(pg: bool, rows: list[dict[str, Any]]) -> tuple[Any, Any]:
    # SQLite: one executemany, in order.
    return (_STEPS_INSERT, _step_arrays(rows)) if pg else (TimelineEntry.__table__.insert(), rows)


def _step_arrays(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {f"s_{k}": [r[k] for r in rows] for k in _STEP_COLUMNS}


def _advanced(session: Session, old: str,
              change: _Change) -> tuple[str, dict[str, str | None], dict[str, str | None]] | None:
    """This transaction's change applied to the body read with the lock: the new body, the names it took from
    `_names` (to be checked by the update, `_guards`), and every name it looked up; None when a step's place among
    the stored ones is not certain (then the view is rendered from the tables)."""
    body = json.loads(old)
    body.update(change.fields)
    steps: list[dict[str, Any]] = body["timeline"]
    stored_at = [datetime.fromisoformat(s["at"]) for s in steps]
    if not change.ids_after and any(at in stored_at for at, *_ in change.steps):
        # Steps of the same instant are in the order of their ids, which the stored body does not carry.
        return None
    names: dict[str, str | None] = {s["unit"]: s["unit_name"] for s in steps if s["unit"] is not None}
    if body["handling_unit"] is not None:
        names[body["handling_unit"]] = body["handling_unit_name"]
    looked_up, read_now = _unit_names(session, {s[4] for s in change.steps} - names.keys())
    at_list = list(stored_at)
    for at, status, step, code, unit in change.steps:
        i = bisect_right(at_list, at)  # after the steps of its own instant this transaction added before it
        at_list.insert(i, at)
        steps.insert(i, {"at": at, "status": status, "step": step, "code": code, "unit": unit,
                         "unit_name": names[unit] if unit in names else looked_up[unit]})
    return to_json(body).decode(), {c: n for c, n in looked_up.items() if c not in read_now}, looked_up


def _guards(names: dict[str, str | None]) -> list[Any]:
    """The update's check that each unit still has the name taken from memory (another replica may have renamed it)."""
    return [_name_of(code).is_(None) if name is None else _name_of(code) == name for code, name in sorted(names.items())]


def _forget_names(session: Session, codes: Iterable[str]) -> None:
    db = str(session.get_bind().url)
    for code in codes:
        _names.pop((db, code), None)


def _advance(session: Session, receipt_number: str, old: str, change: _Change) -> bool:
    """Apply this transaction's change to the body read with the lock and store it, guarded by that body (and the
    names it took from `_names`); False when the stored row is not that body any more, or a step's place among
    the stored ones is not certain: then the view is rendered from the tables."""
    advanced = _advanced(session, old, change)
    if advanced is None:
        return False
    new, guarded, looked_up = advanced
    stmt = _ADVANCE.where(*_guards(guarded)) if guarded else _ADVANCE
    if session.execute(stmt, {"receipt": receipt_number, "old_body": old, "new_body": new}).rowcount == 1:
        return True
    _forget_names(session, looked_up)
    return False


#: `_STEPS_AND_ADVANCE_ALL` and `_ADVANCE_ALL` with the transaction's events as one more CTE, by (the outbox's insert,
#: whether with steps): built once.
_WITH_EVENTS: dict[tuple[Any, bool], Any] = {}


def _with_events(events: Any, steps: bool) -> Any:
    stmt = _WITH_EVENTS.get((events, steps))
    if stmt is None:
        # A CTE runs whether or not the statement refers to it.
        stmt = _WITH_EVENTS[(events, steps)] = (
            (_STEPS_AND_ADVANCE_ALL if steps else _ADVANCE_ALL).add_cte(events.cte("events")))
    return stmt


def _write_together(session: Session, steps: list[dict[str, Any]], read: dict[str, tuple[str, str]],
                    advance: dict[str, _Change], events: tuple[Any, dict[str, Any]] | None = None,
                    ) -> tuple[set[str], tuple[Any, dict[str, Any]] | None]:
    """PostgreSQL: the held steps and every advanced view in one statement, with `events` (the outbox's insert and
    its parameters) when there is that statement. Returns the applications whose view it did not write (to be
    rendered from the tables, which hold the steps by then), and `events` if it did not write them."""
    rows: list[tuple[str, str, str, str]] = []
    looked: dict[str, str | None] = {}
    guarded: dict[str, str | None] = {}
    failed: set[str] = set()
    for app_id in sorted(advance):
        receipt, old = read[app_id]
        advanced = _advanced(session, old, advance[app_id])
        if advanced is None:
            failed.add(app_id)
            continue
        new, names, looked_up = advanced
        rows.append((app_id, receipt, old, new))
        guarded.update(names)
        looked.update(looked_up)
    params = _step_arrays(steps) if steps else {}
    if not rows:
        if steps:
            session.execute(*_steps_write(True, steps))
        return failed, events
    stmt = _STEPS_AND_ADVANCE_ALL if steps else _ADVANCE_ALL
    if events is not None:
        stmt = _with_events(events[0], bool(steps))
        params.update(events[1])
    if guarded:  # a name taken from memory changed meanwhile: every view of the statement is rendered again
        stmt = stmt.where(*_guards(guarded))
    written = set(session.execute(stmt, {**params, "v_receipt": [r[1] for r in rows], "v_old_body": [r[2] for r in rows],
                                         "v_new_body": [r[3] for r in rows]}).scalars())
    missed = {app_id for app_id, receipt, _, _ in rows if receipt not in written}
    if missed:
        _forget_names(session, looked)
    return failed | missed, None


def _render_changed(session: Session) -> None:
    """Runs inside AsyncSession.commit's greenlet (as the outbox's hook does), so the synchronous statements go
    through the async driver, in the transaction that is committing. Before the outbox's hook: a commit that
    writes views takes its events and its key's answer along (`take_commit_write`), in the statement that writes
    them (a submission's commit: one statement instead of two)."""
    if _STEPS in session.info or _APPS in session.info or _UNITS in session.info or _CHANGES in session.info:
        write_changed(session, take_commit_write(session))


sa_event.listen(Session, "before_commit", _render_changed, insert=True)


def write_changed(session: Session, events: tuple[Any, dict[str, Any]] | None = None) -> None:
    """What the commit writes of this transaction's views and held steps (`_render_changed`), now: a consumer's
    batch calls it as its last step, with the events it emitted (`events`: the outbox's insert and its
    parameters, PostgreSQL), which then ride on the statement that writes the steps and advances the views
    instead of taking one of their own; they are written whatever else is."""
    steps: list[dict[str, Any]] = session.info.pop(_STEPS, None) or []
    apps: set[str] = session.info.pop(_APPS, None) or set()
    units: set[str] | None = session.info.pop(_UNITS, None)
    held: set[str] = session.info.pop(_LOCKED, set())
    changes: dict[str, _Change] = session.info.pop(_CHANGES, None) or {}
    if steps or apps or units or changes:
        # The views this commit writes are dropped from every `ViewCache` of the process once it has committed.
        session.info[VIEWS_WRITTEN] = True
    read: dict[str, tuple[str, str]] = session.info.pop(_READ, None) or {}
    pg = session.get_bind().dialect.name == "postgresql"
    if steps and (units or not pg):
        # Before anything reads the timeline; on PostgreSQL they wait for the views' update below.
        session.execute(*_steps_write(pg, steps))
        steps = []
    if units:
        apps |= set(naming(session, units))
    # Advanced in place only under this transaction's own lock of the application: every writer of a body then
    # holds it, and a render from the tables never overwrites a step committed after the tables were read.
    advance = {a: c for a, c in changes.items()
               if not c.full and a not in apps and a in held and a in read and (c.fields or c.steps)}
    if not pg and len(advance) > _MAX_ADVANCED:
        advance = {}
    apps |= changes.keys() - advance.keys()
    if pg:
        failed, events = _write_together(session, steps, read, advance, events)
        apps |= failed
    else:
        for app_id in sorted(advance):
            if not _advance(session, *read[app_id], advance[app_id]):
                apps.add(app_id)
    whole: dict[str, list[_ViewRow]] = session.info.pop(_WHOLE, None) or {}
    known = sorted(a for a in apps if a in whole and a in held) if not units else []
    if known:
        # Read whole under this transaction's lock, and not changed since: rendered without reading it again.
        rendered = render(r for a in known for r in whole[a])
        if events is not None and len(rendered) == 1:  # (several are an executemany: it would repeat the CTE)
            session.execute(_upsert_with(events[0]), {**rendered[0], **events[1]})
            events = None
        else:
            session.execute(_upsert(session.get_bind().dialect.name), rendered)
        apps.difference_update(known)
    if apps:
        rebuild(session, apps, held)
    if events is not None:
        session.execute(*events)


@sa_event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        # A savepoint rolled back releases the row locks taken inside it: lock again rather than trust them. And
        # the steps noted inside it may be gone: render from the tables what it changed.
        session.info.pop(_LOCKED, None)
        session.info.pop(_WHOLE, None)
        session.info.setdefault(_APPS, set()).update(session.info.pop(_CHANGES, None) or {})
    if transaction.parent is None:  # committed (rendered above) or rolled back: nothing is owed any more
        for key in (_STEPS, _APPS, _UNITS, _LOCKED, _CHANGES, _READ, _WHOLE):
            session.info.pop(key, None)


#: Set on a session whose commit writes views (`Database.commit_signal(VIEWS_WRITTEN)`: `ViewCache`).
VIEWS_WRITTEN = "intake_public_status_written"
#: How long a view read by this process is answered from its memory. Its own commits that write views drop them
#: at once; this is how far behind another process's commit (another replica, a worker apart) it can be.
VIEW_TTL_SECONDS = 1.0
#: Views kept in memory at most, the least recently read forgotten first (each a few kilobytes).
VIEW_CACHE_ENTRIES = 10_000


class ViewCache:
    """The views this process read lately, for the status query: the one statement of a read that reaches the
    database was the whole of its cost (one round trip, a pooled connection checked out and in).

    A view is kept `ttl` seconds. Every commit of this process that writes views empties the cache as soon as
    it has committed (`VIEWS_WRITTEN`), so a replica serves its own changes at once; a change committed by another
    process shows here within `ttl`. A read that began before such a commit may return the view as it was: it is
    not kept (the cache's generation moved on meanwhile), so the cache never holds a view older than the last
    commit it heard of. Unknown receipts are not kept: each wrong guess still reaches the database and the route
    that counts it."""

    def __init__(self, db: Database, ttl: float = VIEW_TTL_SECONDS, max_entries: int = VIEW_CACHE_ENTRIES) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self.written = db.commit_signal(VIEWS_WRITTEN)
        self.generation = 0
        self._views: OrderedDict[str, tuple[float, str | None, str]] = OrderedDict()

    def _current(self) -> int:
        if self.written.is_set():
            self.written.clear()
            self._views.clear()
            self.generation += 1
        return self.generation

    async def read(self, engine: AsyncEngine, receipt_number: str) -> tuple[str | None, str] | None:
        """`read`, from memory when this process read the view less than `ttl` ago and wrote none since."""
        generation = self._current()
        now = time.monotonic()
        kept = self._views.get(receipt_number)
        if kept is not None and kept[0] > now:
            return kept[1], kept[2]
        found = await read(engine, receipt_number)
        if found is not None and self._current() == generation:
            self._views[receipt_number] = (now + self.ttl, *found)
            self._views.move_to_end(receipt_number)
            if len(self._views) > self.max_entries:
                self._views.popitem(last=False)
        return found


_CACHES: WeakKeyDictionary[Database, ViewCache] = WeakKeyDictionary()


def view_cache(db: Database) -> ViewCache:
    """The process's `ViewCache` of the service's database."""
    cache = _CACHES.get(db)
    if cache is None:
        cache = _CACHES[db] = ViewCache(db)
    return cache


#: Built once: constructing the statement and its cache key took as long as the rest of the read's Python.
_READ_STATUS = select(PublicStatusRow.__table__.c.verification_code, PublicStatusRow.__table__.c.body).where(
    PublicStatusRow.__table__.c.receipt_number == bindparam("receipt_number"))


async def read(engine: AsyncEngine, receipt_number: str) -> tuple[str | None, str] | None:
    """The verification code and the body of a receipt's view; None when the receipt is unknown. One statement
    on a connection of its own in autocommit, outside any transaction: the row is written whole in the
    transaction that changed the view, so a single read sees it consistent, and skipping `BEGIN`/`COMMIT` saves
    two round trips on the most frequent public read. Checkout, statement and check-in run in one greenlet:
    through `AsyncConnection` each is a greenlet of its own, which cost more than the statement."""
    return await greenlet_spawn(_read, engine.sync_engine, receipt_number)


def _read(engine: Engine, receipt_number: str) -> tuple[str | None, str] | None:
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        row = conn.execute(_READ_STATUS, {"receipt_number": receipt_number}).first()
    return None if row is None else (row.verification_code, row.body)
