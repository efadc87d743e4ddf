"""Datashare's projection of workflow's tasks: which department holds an open task in which application.

Task events come in fetched batches (a fan-out assigns five departments at once): their rows are held in the
session and written just before the transaction commits, in one multi-row statement per kind (a batch of
assignments is one `INSERT`, not five). Anything that reads the projection in the same transaction writes
them first (`write_pending`); a rollback drops them with the rest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from services.datashare.store.tables import OpenTask

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


def _statements(dialect: str, pending: dict[str, tuple[dict[str, Any], bool]]) -> list[Any]:
    t = OpenTask.__table__
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    out: list[Any] = []
    if created := [row for row, overrides in pending.values() if not overrides]:
        out.append(insert(t).values(created).on_conflict_do_nothing(index_elements=[t.c.task_id]))
    if changed := [row for row, overrides in pending.values() if overrides]:
        ins = insert(t).values(changed)
        out.append(ins.on_conflict_do_update(
            index_elements=[t.c.task_id], set_={"state": ins.excluded.state, "updated_at": ins.excluded.updated_at}))
    return out


async def write_pending(session: AsyncSession) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        for stmt in _statements(dialect, pending):
            await session.execute(stmt)


@sa_event.listens_for(Session, "before_commit")
def _write_pending_at_commit(session: Session) -> None:
    """Runs inside AsyncSession.commit's greenlet, so the synchronous execute goes through the async driver."""
    pending = session.info.pop(_PENDING, None)
    if pending:
        for stmt in _statements(session.get_bind().dialect.name, pending):
            session.execute(stmt)


@sa_event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: committed (written above) or rolled back
        session.info.pop(_PENDING, None)


async def close_application(session: AsyncSession, application_id: str, at: datetime) -> None:
    await write_pending(session)
    await session.execute(update(OpenTask).where(OpenTask.application_id == application_id, OpenTask.state == "open")
                          .values(state="closed", updated_at=at))


async def open_departments(session: AsyncSession, application_id: str) -> set[str]:
    await write_pending(session)
    q = select(OpenTask.department).where(OpenTask.application_id == application_id, OpenTask.state == "open")
    return set((await session.execute(q)).scalars())
