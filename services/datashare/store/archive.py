"""The archive of accepted and decided applications (for reuse and open data)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.store.tables import ArchivedApplication
from shared.db import dialect_of


async def get(session: AsyncSession, application_id: str) -> ArchivedApplication | None:
    return await session.get(ArchivedApplication, application_id)


async def record_accepted(session: AsyncSession, application_id: str, **values: Any) -> None:
    """One statement: a decision may have arrived first, so its row takes the accepted values and keeps its own
    (decided_at, outcome, certificate_number)."""
    t = ArchivedApplication.__table__
    ins = (postgresql.insert(t) if dialect_of(session) == "postgresql" else sqlite.insert(t)).values(
        application_id=application_id, **values)
    await session.execute(ins.on_conflict_do_update(
        index_elements=[t.c.application_id], set_={k: ins.excluded[k] for k in values}))


async def record_decided(session: AsyncSession, application_id: str, **values: Any) -> ArchivedApplication:
    """Not flushed here: the caller may set the certificate's number too, and the row is written once (at the
    handler's flush or commit)."""
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
    return row


def holder_query(holder_ids: set[str]):  # type: ignore[no-untyped-def]
    return select(ArchivedApplication).where(ArchivedApplication.holder_id.in_(holder_ids))


async def all_rows(session: AsyncSession) -> list[ArchivedApplication]:
    return list((await session.execute(select(ArchivedApplication))).scalars())
