"""Datashare's certificate directory as it announces it: what an item's certificate result must map, and the
names the guide gives the certificates an applicant must already hold."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.store import repo


async def record_certificate_type(session: AsyncSession, *, code: str, name: str, fields: list[str],
                                  required: list[str]) -> None:
    await repo.upsert_certificate_type(session, code=code, name=name, fields=fields, required=required)
