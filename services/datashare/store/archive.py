"""The archive of accepted and decided applications (for reuse and open data)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.store.tables import ArchivedApplication


async def get(session: AsyncSession, application_id: str) -> ArchivedApplication | None:
    return await session.get(ArchivedApplication, application_id)


async def record_accepted(session: AsyncSession, application_id: str, **values: Any) -> None:
    row = await session.get(ArchivedApplication, application_id)
    if row is None:
        session.add(ArchivedApplication(application_id=application_id, **values))
    else:  # a decision may have arrived first; keep its fields
        for k, v in values.items():
            setattr(row, k, v)
    await session.flush()


async def record_decided(session: AsyncSession, application_id: str, **values: Any) -> ArchivedApplication:
    row = await session.get(ArchivedApplication, application_id)
    if row is None:
        defaults: dict[str, Any] = {"applicant": {}, "form": {}, "materials": []}
        defaults.update(values)
        row = ArchivedApplication(application_id=application_id, **defaults)
        session.add(row)
    else:
        for k, v in values.items():
            if v is not None or k not in ("item_version", "receipt_number", "department", "holder_id"):
                setattr(row, k, v)
    await session.flush()
    return row


def holder_query(holder_ids: set[str]):  # type: ignore[no-untyped-def]
    return select(ArchivedApplication).where(ArchivedApplication.holder_id.in_(holder_ids))


async def all_rows(session: AsyncSession) -> list[ArchivedApplication]:
    return list((await session.execute(select(ArchivedApplication))).scalars())
