"""The public status projection (办件进度查询): each receipt's public view, rendered once per change.

The status query is the most frequent public read, and it used to join the application, its timeline and the
units' names and render the result on every request. Here the view is rendered when it changes instead: the
store functions that change what it shows (an application's state, a timeline step, a unit's name) mark the
application, and just before the transaction commits, every application marked in it is rendered from the
tables, as they are at that moment, into `public_status` (one read and one upsert per transaction, whatever the
number of steps). The row commits with the change or not at all, so it is never behind what it was rendered
from; the route returns its body as it is.

The body is exactly what the route returned when it rendered the view per request (`PublicStatus` of the API's
schemas, serialised by pydantic as FastAPI does): no one's personal data, units and never people."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from pydantic_core import to_json
from sqlalchemy import bindparam, or_, select
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from services.intake.domain import timeline
from services.intake.store.tables import Application, Department, PublicStatusRow, TimelineEntry

#: Applications (ids) and units (codes) whose public view changed in the current transaction (`session.info`).
_APPS = "intake_public_status_apps"
_UNITS = "intake_public_status_units"
#: Applications whose row this transaction has updated, and so holds locked until it ends.
_LOCKED = "intake_public_status_locked"
#: Applications rendered per statement when a unit's new name touches many of them.
_CHUNK = 500
#: The fields of an application the public view shows.
SHOWN = frozenset({"status", "item_name", "department", "receipt_number", "verification_code"})


def changed(session: AsyncSession | Session, application_id: str) -> None:
    """The public view of this application changed in this transaction: render it before the commit."""
    session.info.setdefault(_APPS, set()).add(application_id)


def locked(session: AsyncSession | Session, application_id: str) -> None:
    """This transaction updated the application's row (and holds its lock until it ends): the render at commit
    needs no lock of its own for it."""
    session.info.setdefault(_LOCKED, set()).add(application_id)


def unit_renamed(session: AsyncSession | Session, code: str) -> None:
    """A unit's name changed (or became known): every view that names it is rendered again before the commit."""
    session.info.setdefault(_UNITS, set()).add(code)


def _name_of(code: Any) -> Any:
    return select(Department.name).where(Department.code == code).scalar_subquery()


def _view_query(application_ids: list[str]) -> Any:
    """The applications with a receipt number, their timelines and the units' names: one statement."""
    a, t = Application.__table__, TimelineEntry.__table__
    return (
        select(a.c.id.label("application_id"), a.c.receipt_number, a.c.verification_code,
               a.c.status.label("app_status"), a.c.item_name, a.c.department,
               _name_of(a.c.department).label("department_name"), t.c.id.label("step_id"), t.c.at, t.c.status,
               t.c.step, t.c.code, t.c.unit, _name_of(t.c.unit).label("unit_name"))
        .select_from(a.outerjoin(t, t.c.application_id == a.c.id))
        .where(a.c.id.in_(application_ids), a.c.receipt_number.is_not(None))
        # Steps in the order they happened (events from several departments arrive in any order); steps of
        # the same instant in the order intake learned of them.
        .order_by(a.c.id, t.c.at, t.c.id)
    )


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
        rows = render(conn.execute(_view_query(chunk)))
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


@sa_event.listens_for(Session, "before_commit")
def _render_changed(session: Session) -> None:
    """Runs inside AsyncSession.commit's greenlet (as the outbox's hook does), so the synchronous statements go
    through the async driver, in the transaction that is committing."""
    apps: set[str] | None = session.info.pop(_APPS, None)
    units: set[str] | None = session.info.pop(_UNITS, None)
    held: set[str] = session.info.pop(_LOCKED, set())
    if units:
        apps = (apps or set()) | set(naming(session, units))
    if apps:
        rebuild(session, apps, held)


@sa_event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        # A savepoint rolled back releases the row locks taken inside it: lock again rather than trust them.
        session.info.pop(_LOCKED, None)
    if transaction.parent is None:  # committed (rendered above) or rolled back: nothing is owed any more
        session.info.pop(_APPS, None)
        session.info.pop(_UNITS, None)
        session.info.pop(_LOCKED, None)


#: Built once: constructing the statement and its cache key took as long as the rest of the read's Python.
_READ = select(PublicStatusRow.__table__.c.verification_code, PublicStatusRow.__table__.c.body).where(
    PublicStatusRow.__table__.c.receipt_number == bindparam("receipt_number"))


async def read(conn: AsyncConnection, receipt_number: str) -> tuple[str | None, str] | None:
    """The verification code and the body of a receipt's view; None when the receipt is unknown."""
    row = (await conn.execute(_READ, {"receipt_number": receipt_number})).first()
    return None if row is None else (row.verification_code, row.body)
