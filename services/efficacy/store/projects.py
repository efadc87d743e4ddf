"""Tables and queries of the project clock: what intake said about each project and its stages. The
applications' own facts (corrections, decisions) stay in `case_event`; the clock is counted from both when read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Integer, String, Table, UniqueConstraint, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.store.tables import md
from shared.messaging import insert_ignore
from shared.types import UTCDateTime

#: 项目: one row per project intake registered (or first heard of through a stage).
project = Table(
    "project", md,
    Column("project_id", String(64), primary_key=True),
    Column("project_code", String(40), nullable=True),
    Column("owner_id", String(120), nullable=True),
    Column("name", String(300), nullable=True),
    Column("registered_at", UTCDateTime, nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
)

#: One accepted stage of a project with its items (one application per department item).
project_stage = Table(
    "project_stage", md,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("stage_key", String(64), nullable=False),
    Column("stage_name", String(200), nullable=False),
    Column("total_limit_days", Integer, nullable=False),
    Column("accepted_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("applications", JSON, nullable=False),
    UniqueConstraint("project_id", "stage_key"),
)


async def ensure_project(session: AsyncSession, project_id: str) -> None:
    await session.execute(insert_ignore(session, project).values(project_id=project_id))


async def register(session: AsyncSession, *, project_id: str, project_code: str, owner_id: str, name: str,
                   registered_at: datetime) -> None:
    await ensure_project(session, project_id)
    await session.execute(update(project).where(project.c.project_id == project_id).values(
        project_code=project_code, owner_id=owner_id, name=name, registered_at=registered_at))


async def accept_stage(session: AsyncSession, *, project_id: str, stage_key: str, stage_name: str,
                       total_limit_days: int, accepted_at: datetime, applications: list[dict[str, Any]]) -> None:
    """A stage accepted once; a redelivery (or a second acceptance after a refusal) keeps the first."""
    await ensure_project(session, project_id)
    await session.execute(insert_ignore(session, project_stage).values(
        project_id=project_id, stage_key=stage_key, stage_name=stage_name, total_limit_days=total_limit_days,
        accepted_at=accepted_at, applications=applications))


async def complete_stage(session: AsyncSession, *, project_id: str, stage_key: str, completed_at: datetime) -> None:
    await session.execute(update(project_stage).where(
        project_stage.c.project_id == project_id, project_stage.c.stage_key == stage_key,
        project_stage.c.completed_at.is_(None)).values(completed_at=completed_at))


async def complete_project(session: AsyncSession, *, project_id: str, completed_at: datetime) -> None:
    await ensure_project(session, project_id)
    await session.execute(update(project).where(project.c.project_id == project_id,
                                                project.c.completed_at.is_(None)).values(completed_at=completed_at))


async def get_project(session: AsyncSession, project_id: str) -> Any:
    return (await session.execute(select(project).where(project.c.project_id == project_id))).first()


async def stages_of(session: AsyncSession, project_id: str) -> list[Any]:
    q = select(project_stage).where(project_stage.c.project_id == project_id).order_by(project_stage.c.accepted_at)
    return list((await session.execute(q)).all())
