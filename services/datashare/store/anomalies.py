"""The access watch's store: a reader's recent access-log rows, and the anomalies found (once each)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.domain.anomalies import Row
from services.datashare.store.tables import AccessAnomaly, AccessLogEntry
from shared.messaging import insert_ignore

#: The rules look at no more than this many of a reader's latest rows.
MAX_ROWS = 1000


async def recent_rows(session: AsyncSession, accessor_subject: str, since: datetime) -> list[Row]:
    q = (select(AccessLogEntry.seq, AccessLogEntry.recorded_at, AccessLogEntry.action, AccessLogEntry.outcome,
                AccessLogEntry.holder_id, AccessLogEntry.application_id)
         .where(AccessLogEntry.accessor_subject == accessor_subject, AccessLogEntry.recorded_at >= since)
         .order_by(AccessLogEntry.recorded_at.desc()).limit(MAX_ROWS))
    rows = [Row(*r) for r in (await session.execute(q)).all()]
    rows.reverse()
    return rows


async def record(session: AsyncSession, dedupe_key: str, **values: Any) -> str | None:
    """The anomaly's id when it is new; None when this rule, reader and window were reported already."""
    anomaly_id = uuid.uuid4().hex
    res = await session.execute(insert_ignore(session, AccessAnomaly.__table__).values(
        id=anomaly_id, dedupe_key=dedupe_key, **values))
    return anomaly_id if res.rowcount else None


async def list_anomalies(session: AsyncSession, limit: int = 100) -> list[AccessAnomaly]:
    q = select(AccessAnomaly).order_by(AccessAnomaly.detected_at.desc()).limit(limit)
    return list((await session.execute(q)).scalars())
