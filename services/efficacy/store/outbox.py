"""Many events into the outbox in one statement (shared.messaging.emit writes one row per call; a first card
pass over 100,000 overdue cases raises tens of thousands)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.store.tables import messaging
from shared.events import Event
from shared.types import utcnow


async def emit_all(session: AsyncSession, events: list[Event]) -> None:
    if not events:
        return
    now = utcnow()
    await session.execute(messaging.outbox.insert(), [
        dict(event_id=e.id, type=e.type, payload=e.to_json().decode(), created_at=now) for e in events])
    session.info["outbox_dirty"] = True  # wakes the relay after commit, as shared.messaging.emit does
