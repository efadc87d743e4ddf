"""Datashare's copy of published catalogue items and departments."""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.store.tables import Department, PublishedItem
from shared.types import utcnow


async def upsert_item(session: AsyncSession, *, code: str, version: int, name: str, department: str,
                      content: dict[str, Any], published_at: datetime) -> None:
    row = await session.get(PublishedItem, (code, version))
    if row is None:
        session.add(PublishedItem(code=code, version=version, name=name, department=department, content=content,
                                  published_at=published_at))
    else:
        row.name, row.department, row.content, row.published_at = name, department, content, published_at
        row.withdrawn_at = None
    await session.flush()


async def withdraw_item(session: AsyncSession, code: str, version: int, at: datetime) -> None:
    row = await session.get(PublishedItem, (code, version))
    if row is not None:
        row.withdrawn_at = at
        await session.flush()


async def upsert_department(session: AsyncSession, code: str, name: str, credit_code: str | None) -> None:
    row = await session.get(Department, code)
    if row is None:
        session.add(Department(code=code, name=name, credit_code=credit_code, updated_at=utcnow()))
    else:
        row.name, row.credit_code, row.updated_at = name, credit_code, utcnow()
    await session.flush()


async def department_credit_code(session: AsyncSession, code: str) -> str | None:
    row = await session.get(Department, code)
    return row.credit_code if row is not None else None


async def get_item(session: AsyncSession, code: str, version: int) -> PublishedItem | None:
    return await session.get(PublishedItem, (code, version))


#: Per database (two apps in one process, as in tests, have their own): a published version's content. Catalog
#: publishes a version once and never changes it (a change is a new version), so it is read once per process.
_contents: weakref.WeakKeyDictionary[Engine, dict[tuple[str, int], dict[str, Any]]] = weakref.WeakKeyDictionary()


async def item_content(session: AsyncSession, code: str, version: int) -> dict[str, Any] | None:
    """The published version's content (its materials, sources and result mapping), or None when not known yet."""
    engine = session.bind.sync_engine if session.bind is not None else None  # type: ignore[union-attr]
    cache = _contents.setdefault(engine, {}) if engine is not None else {}
    if (code, version) in cache:
        return cache[(code, version)]
    content = (await session.execute(select(PublishedItem.content).where(
        PublishedItem.code == code, PublishedItem.version == version))).scalar()
    if content is not None:
        cache[(code, version)] = content
    return content


async def current_items(session: AsyncSession) -> list[PublishedItem]:
    """The newest version of each item that has not been withdrawn."""
    rows = (await session.execute(select(PublishedItem).order_by(PublishedItem.code, PublishedItem.version))).scalars()
    latest: dict[str, PublishedItem] = {}
    for row in rows:
        latest[row.code] = row
    return [r for r in latest.values() if r.withdrawn_at is None]


async def item_versions(session: AsyncSession) -> dict[tuple[str, int], PublishedItem]:
    rows = (await session.execute(select(PublishedItem))).scalars()
    return {(r.code, r.version): r for r in rows}
