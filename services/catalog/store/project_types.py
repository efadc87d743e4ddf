"""Queries of project types and of what their rules check against (items and their providers)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.store.tables import Department, Item, ProjectType


async def get(session: AsyncSession, key: str, *, for_update: bool = False) -> ProjectType | None:
    return await session.get(ProjectType, key, with_for_update=for_update)


async def all_types(session: AsyncSession) -> Sequence[ProjectType]:
    return (await session.execute(select(ProjectType).order_by(ProjectType.key))).scalars().all()


async def item_departments(session: AsyncSession, codes: Sequence[str]) -> dict[str, tuple[str, str]]:
    """code → (department, name) of the items named."""
    rows = await session.execute(select(Item.code, Item.department, Item.name).where(Item.code.in_(list(codes))))
    return {code: (dept, name) for code, dept, name in rows.all()}


async def department_codes(session: AsyncSession) -> frozenset[str]:
    return frozenset((await session.execute(select(Department.code))).scalars().all())


def add(session: AsyncSession, row: ProjectType) -> None:
    session.add(row)
