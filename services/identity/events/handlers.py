"""What the identity service consumes from the bus."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.events.contracts import DEPARTMENT_UPSERTED, DepartmentUpserted
from services.identity.store import accounts
from shared.events import Event
from shared.messaging import Consumer, event_data
from shared.types import utcnow


async def on_department_upserted(session: AsyncSession, event: Event) -> None:
    """Keep catalog's department codes, so staff and department clients are checked against them."""
    data: DepartmentUpserted = event_data(event, DepartmentUpserted)
    await accounts.upsert_department(session, data.code, data.name, data.credit_code, utcnow())


CONSUMERS: list[Consumer] = [
    Consumer(
        "identity-departments", DEPARTMENT_UPSERTED, on_department_upserted,
        description="Department codes from catalog validate staff and department-client departments.",
    ),
]
