"""Datashare's projection of workflow's tasks: which department holds an open task in which application."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.store.tables import OpenTask
from shared.messaging import insert_ignore


async def task_assigned(session: AsyncSession, *, task_id: str, application_id: str, department: str,
                        item_code: str | None, at: datetime) -> None:
    """A new task is open; an assignment arriving after the task's decision does not reopen it."""
    await session.execute(insert_ignore(session, OpenTask.__table__).values(
        task_id=task_id, application_id=application_id, department=department, item_code=item_code, state="open",
        updated_at=at))


async def set_state(session: AsyncSession, *, task_id: str, application_id: str, department: str, state: str,
                    at: datetime) -> None:
    """Decided, reopened or cancelled: the row is created if the assignment has not arrived yet. One statement
    (`INSERT … ON CONFLICT DO UPDATE` of the state only)."""
    t = OpenTask.__table__
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    ins = (postgresql.insert(t) if dialect == "postgresql" else sqlite.insert(t)).values(
        task_id=task_id, application_id=application_id, department=department, item_code=None, state=state,
        updated_at=at)
    await session.execute(ins.on_conflict_do_update(
        index_elements=[t.c.task_id], set_={"state": ins.excluded.state, "updated_at": ins.excluded.updated_at}))


async def close_application(session: AsyncSession, application_id: str, at: datetime) -> None:
    await session.execute(update(OpenTask).where(OpenTask.application_id == application_id, OpenTask.state == "open")
                          .values(state="closed", updated_at=at))


async def open_departments(session: AsyncSession, application_id: str) -> set[str]:
    q = select(OpenTask.department).where(OpenTask.application_id == application_id, OpenTask.state == "open")
    return set((await session.execute(q)).scalars())
