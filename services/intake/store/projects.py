"""Queries of projects: the kept project types, projects, their stage applications and dispatched applications.
Functions flush, never commit: the caller's transaction decides."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.store.tables import (
    Application,
    Project,
    ProjectApplication,
    ProjectStage,
    ProjectType,
    TimelineEntry,
)
from shared.errors import Conflict


async def put_project_type(session: AsyncSession, *, key: str, name: str, payload: dict[str, Any],
                           published_at: datetime) -> None:
    """Keep the latest publication of a type (an older one arriving late does not replace a newer one)."""
    row = await session.get(ProjectType, key, with_for_update=True)
    if row is None:
        session.add(ProjectType(key=key, name=name, payload=payload, published_at=published_at))
    elif row.published_at <= published_at:
        row.name, row.payload, row.published_at = name, payload, published_at
    await session.flush()


async def project_type(session: AsyncSession, key: str) -> ProjectType | None:
    return await session.get(ProjectType, key)


async def add_project(session: AsyncSession, **fields: Any) -> Project:
    project = Project(id="prj" + uuid.uuid4().hex[:24], **fields)
    session.add(project)
    await session.flush()
    return project


async def code_taken(session: AsyncSession, code: str) -> bool:
    return (await session.execute(select(Project.id).where(Project.project_code == code))).first() is not None


async def get_project(session: AsyncSession, project_id: str, *, for_update: bool = False) -> Project | None:
    stmt = select(Project).where(Project.id == project_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def projects_of(session: AsyncSession, owner_ids: Sequence[str], limit: int = 100) -> Sequence[Project]:
    stmt = (select(Project).where(Project.owner_id.in_(list(owner_ids)))
            .order_by(Project.registered_at.desc(), Project.id.desc()).limit(limit))
    return (await session.execute(stmt)).scalars().all()


async def stages(session: AsyncSession, project_id: str) -> Sequence[ProjectStage]:
    return (await session.execute(select(ProjectStage).where(ProjectStage.project_id == project_id))).scalars().all()


async def add_stage(session: AsyncSession, **fields: Any) -> ProjectStage:
    """A second stage application racing the first (where the project row was not locked: SQLite) is a 409."""
    row = ProjectStage(**fields)
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("该阶段已统一受理，不能重复申请。", slug="stage-already-applied") from exc
    return row


async def link_application(session: AsyncSession, *, application_id: str, project_id: str, stage_key: str,
                           department: str, limit_days: int, due_on: date) -> None:
    session.add(ProjectApplication(application_id=application_id, project_id=project_id, stage_key=stage_key,
                                   department=department, limit_days=limit_days, due_on=due_on))
    await session.flush()


async def link_of(session: AsyncSession, application_id: str) -> ProjectApplication | None:
    return await session.get(ProjectApplication, application_id)


async def applications(session: AsyncSession, project_id: str) -> Sequence[tuple[ProjectApplication, Application]]:
    stmt = (select(ProjectApplication, Application)
            .join(Application, Application.id == ProjectApplication.application_id)
            .where(ProjectApplication.project_id == project_id)
            .order_by(Application.created_at, Application.id))
    return [(link, app) for link, app in (await session.execute(stmt)).all()]


async def latest_steps(session: AsyncSession, application_ids: Sequence[str]) -> dict[str, TimelineEntry]:
    """Each application's latest timeline step (who holds it now: unit, handler, contact)."""
    if not application_ids:
        return {}
    stmt = (select(TimelineEntry).where(TimelineEntry.application_id.in_(list(application_ids)))
            .order_by(TimelineEntry.at, TimelineEntry.id))
    latest: dict[str, TimelineEntry] = {}
    for row in (await session.execute(stmt)).scalars():
        latest[row.application_id] = row
    return latest


async def handlers(session: AsyncSession, application_ids: Sequence[str]) -> dict[str, list[TimelineEntry]]:
    """Each application's steps with a named handler, in order (who held it along the way: 谁办过)."""
    if not application_ids:
        return {}
    stmt = (select(TimelineEntry).where(TimelineEntry.application_id.in_(list(application_ids)),
                                        TimelineEntry.staff_name.is_not(None))
            .order_by(TimelineEntry.at, TimelineEntry.id))
    out: dict[str, list[TimelineEntry]] = {}
    for row in (await session.execute(stmt)).scalars():
        out.setdefault(row.application_id, []).append(row)
    return out
