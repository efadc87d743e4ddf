"""Where people get stuck before they hand in (卡点分析): drafts abandoned, and at which material."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import access
from services.intake.domain.insights import abandoned
from services.intake.store import repository as repo
from shared.principal import Principal
from shared.types import utcnow

#: Drafts read per report, the most recently touched first.
MAX_ROWS = 50_000


@dataclass
class Abandoned:
    idle_days: int
    department: str | None
    truncated: bool
    items: list[tuple[str, str, Counter[str]]]  # item code, item name, drafts per first thing still asked


async def abandoned_drafts(session: AsyncSession, principal: Principal, *, idle_days: int, department: str | None,
                           item: str | None) -> Abandoned:
    department = access.insights_department(principal, department)
    rows = await repo.idle_drafts(session, before=utcnow() - timedelta(days=idle_days), department=department,
                                  item=item, limit=MAX_ROWS)
    per_item = abandoned((r.item_code, r.item_name, r.notice) for r in rows)
    ordered = sorted(per_item.items(), key=lambda kv: (-sum(kv[1][1].values()), kv[0]))
    return Abandoned(idle_days, department, len(rows) >= MAX_ROWS,
                     [(code, name, counts) for code, (name, counts) in ordered])
