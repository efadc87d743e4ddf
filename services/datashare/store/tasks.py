"""Datashare's projection of workflow's tasks: which department holds an open task in which application.

Task events come in batches (a fan-out assigns five departments at once; the consumer gathers what follows within
a moment): their rows are held in the session and written just before the transaction commits, on PostgreSQL in
one statement built once for any batch (assignments, decisions and reopenings alike), on SQLite in one multi-row
statement per kind. Anything that reads the projection in the same transaction writes them first
(`write_pending`); a rollback drops them with the rest."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, func, select
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from services.datashare.store.tables import ArchivedApplication, OpenTask
from shared.db import dialect_of
from shared.types import UTCDateTime

#: task id → (row, whether its state overrides the stored one), in the order the events were applied.
_PENDING = "datashare_pending_tasks"


def task_assigned(session: AsyncSession, *, task_id: str, application_id: str, department: str,
                  item_code: str | None, at: datetime) -> None:
    """A new task is open; an assignment arriving after the task's decision does not reopen it (nor does one
    held behind a decision of the same batch)."""
    pending: dict[str, tuple[dict[str, Any], bool]] = session.info.setdefault(_PENDING, {})
    if task_id not in pending:
        pending[task_id] = (dict(task_id=task_id, application_id=application_id, department=department,
                                 item_code=item_code, state="open", updated_at=at), False)


def set_state(session: AsyncSession, *, task_id: str, application_id: str, department: str, state: str,
              at: datetime) -> None:
    """Decided, reopened or cancelled: the row is created if the assignment has not arrived yet, else only its
    state changes."""
    pending: dict[str, tuple[dict[str, Any], bool]] = session.info.setdefault(_PENDING, {})
    held = pending.get(task_id)
    row = dict(held[0]) if held else dict(task_id=task_id, application_id=application_id, department=department,
                                          item_code=None)
    row.update(state=state, updated_at=at)
    pending[task_id] = (row, True)


def _array(column: str, type_: Any) -> Any:
    return bindparam(f"b_{column}", type_=postgresql.ARRAY(type_))


@functools.cache
def _upsert_statement() -> Any:
    """The pending rows as one array per column (`unnest`), so that one statement text serves any batch: a
    multi-row `VALUES` changes with the row count and is compiled again for every batch. One `INSERT`: a row
    whose state overrides the stored one (its task id is in `b_overriding`) updates it on conflict, an
    assignment leaves the stored row as it is."""
    t = OpenTask.__table__
    columns = {"task_id": String, "application_id": String, "department": String, "item_code": String,
               "state": String, "updated_at": UTCDateTime()}
    rows = func.unnest(*(_array(k, type_) for k, type_ in columns.items())).table_valued(
        *columns, with_ordinality="n").render_derived(name="rows")
    ins = postgresql.insert(t).from_select(list(columns), select(*(rows.c[k] for k in columns)).order_by(rows.c.n))
    return ins.on_conflict_do_update(
        index_elements=[t.c.task_id], where=ins.excluded.task_id == func.any(_array("overriding", String)),
        set_={"state": ins.excluded.state, "updated_at": ins.excluded.updated_at})


def _lock_order(row: dict[str, Any]) -> tuple[str, str]:
    """The order every writer of the projection locks its rows in: by application, then by task. The task
    consumer's batches (of replicas pulling together) may share rows; in two orders two writers deadlock, which
    PostgreSQL breaks only after `deadlock_timeout` (1 s): the decision consumer closing an application's tasks
    did, when it still wrote them (`open_departments`)."""
    return row["application_id"], row["task_id"]


def _statements(dialect: str, pending: dict[str, tuple[dict[str, Any], bool]]) -> list[tuple[Any, Any]]:
    """(statement, parameters) that write the pending rows, in `_lock_order`."""
    ordered = sorted(pending.values(), key=lambda held: _lock_order(held[0]))
    if dialect == "postgresql":
        params = {f"b_{k}": [row[k] for row, _ in ordered]
                  for k in ("task_id", "application_id", "department", "item_code", "state", "updated_at")}
        params["b_overriding"] = [row["task_id"] for row, overrides in ordered if overrides]
        return [(_upsert_statement(), params)]
    t = OpenTask.__table__
    out: list[tuple[Any, Any]] = []
    if created := [row for row, overrides in ordered if not overrides]:
        out.append((sqlite.insert(t).values(created).on_conflict_do_nothing(index_elements=[t.c.task_id]), None))
    if changed := [row for row, overrides in ordered if overrides]:
        ins = sqlite.insert(t).values(changed)
        out.append((ins.on_conflict_do_update(
            index_elements=[t.c.task_id], set_={"state": ins.excluded.state, "updated_at": ins.excluded.updated_at}),
            None))
    return out


async def write_pending(session: AsyncSession) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        for stmt, params in _statements(dialect_of(session), pending):
            await session.execute(stmt, params)


@sa_event.listens_for(Session, "before_commit")
def _write_pending_at_commit(session: Session) -> None:
    """Runs inside AsyncSession.commit's greenlet, so the synchronous execute goes through the async driver."""
    pending = session.info.pop(_PENDING, None)
    if pending:
        for stmt, params in _statements(session.get_bind().dialect.name, pending):
            session.execute(stmt, params)


@sa_event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: committed (written above) or rolled back
        session.info.pop(_PENDING, None)


async def open_departments(session: AsyncSession, application_id: str) -> set[str]:
    """The departments holding an open task in the application, none once it is decided (its archive row has a
    decision): a decision closes every task of its application without writing their rows. It closed them with
    an UPDATE once, which waited on the task consumer's batch holding the same rows (and that batch on it), and an
    assignment or reopening applied after the decision (the two consumers are apart) opened a task again."""
    await write_pending(session)
    decided = select(ArchivedApplication.application_id).where(
        ArchivedApplication.application_id == application_id, ArchivedApplication.decided_at.is_not(None))
    q = select(OpenTask.department).where(OpenTask.application_id == application_id, OpenTask.state == "open",
                                          ~decided.exists())
    return set((await session.execute(q)).scalars())
