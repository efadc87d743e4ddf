"""Use cases of project types (issue 17): save one with its stages (the rules checked at save time, the whole
type announced to intake), and read them publicly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.domain.project_types import ProjectTypeContent, check_project_type
from services.catalog.events.contracts import (
    PROJECT_TYPE_PUBLISHED,
    ProjectStageItemOut,
    ProjectStageOut,
    ProjectTypePublished,
)
from services.catalog.store import project_types as store
from services.catalog.store.tables import ProjectType
from shared.errors import NotFound, ValidationProblem
from shared.messaging import publish
from shared.types import utcnow


async def upsert(session: AsyncSession, *, key: str, content: ProjectTypeContent, actor: str) -> ProjectType:
    codes = [it.item_code for s in content.stages for it in s.items]
    known = await store.item_departments(session, codes)
    errors = check_project_type(content, {c: d for c, (d, _) in known.items()}, await store.department_codes(session))
    if errors:
        raise ValidationProblem(errors, detail="项目类型的阶段配置不符合规则。")
    now = utcnow()
    row = await store.get(session, key, for_update=True)
    stored = content.model_dump(mode="json")
    if row is None:
        row = ProjectType(key=key, name=content.name, content=stored, updated_at=now, updated_by=actor)
        store.add(session, row)
    else:
        row.name, row.content, row.updated_at, row.updated_by = content.name, stored, now, actor
    await session.flush()
    await publish(session, PROJECT_TYPE_PUBLISHED, subject=key, data=published(row, {c: n for c, (_, n) in known.items()}))
    return row


def published(row: ProjectType, names: dict[str, str]) -> ProjectTypePublished:
    content = ProjectTypeContent.model_validate(row.content)
    return ProjectTypePublished(
        key=row.key, name=row.name, description=content.description, published_at=row.updated_at,
        stages=[ProjectStageOut(key=s.key, name=s.name, order=s.order, total_limit_days=s.total_limit_days,
                                items=[ProjectStageItemOut(item_code=i.item_code, name=names.get(i.item_code),
                                                           department=i.department, limit_days=i.limit_days)
                                       for i in s.items])
                for s in sorted(content.stages, key=lambda s: s.order)])


async def read(session: AsyncSession, key: str) -> dict[str, Any]:
    row = await store.get(session, key)
    if row is None:
        raise NotFound(f"项目类型 {key} 不存在。", slug="project-type-not-found")
    return (await _views(session, [row]))[0]


async def read_all(session: AsyncSession) -> list[dict[str, Any]]:
    return await _views(session, await store.all_types(session))


async def _views(session: AsyncSession, rows: Sequence[ProjectType]) -> list[dict[str, Any]]:
    codes = [i["item_code"] for r in rows for s in r.content["stages"] for i in s["items"]]
    known = await store.item_departments(session, codes)
    return [published(r, {c: n for c, (_, n) in known.items()}).model_dump(mode="json") for r in rows]
