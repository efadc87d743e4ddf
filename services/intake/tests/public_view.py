"""The public status as the route rendered it per request before the projection (one joined query, then the
API's `PublicStatus` serialised by pydantic as FastAPI does), to compare the projection with."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.intake.api import schemas as s
from services.intake.domain import timeline
from services.intake.store.tables import Application, Department, PublicStatusRow, TimelineEntry

_as_json = TypeAdapter(s.PublicStatus)


def _name_of(code: Any) -> Any:
    return select(Department.name).where(Department.code == code).scalar_subquery()


async def rendered_per_request(conn: AsyncConnection, receipt_number: str) -> bytes | None:
    a, t = Application.__table__, TimelineEntry.__table__
    rows = (await conn.execute(
        select(a.c.receipt_number, a.c.verification_code, a.c.status.label("app_status"), a.c.item_name,
               a.c.department, _name_of(a.c.department).label("department_name"), t.c.id.label("step_id"),
               t.c.at, t.c.status, t.c.step, t.c.code, t.c.unit, _name_of(t.c.unit).label("unit_name"))
        .select_from(a.outerjoin(t, t.c.application_id == a.c.id))
        .where(a.c.receipt_number == receipt_number)
        .order_by(t.c.at, t.c.id)
    )).all()
    if not rows:
        return None
    r = rows[0]
    view = s.PublicStatus(
        receipt_number=r.receipt_number, status=r.app_status, item_name=r.item_name, handling_unit=r.department,
        handling_unit_name=r.department_name,
        timeline=[s.PublicStep(at=x.at, status=x.status, step=x.step, code=x.code or timeline.code_for(x.step),
                               unit=x.unit, unit_name=x.unit_name) for x in rows if x.step_id is not None])
    return _as_json.dump_json(view)


async def mismatches(db: Any) -> list[tuple[str, bytes | None, bytes | None]]:
    """Receipts whose projected body (or code) differs from the per-request rendering, read in one snapshot."""
    async with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            a, p = Application.__table__, PublicStatusRow.__table__
            apps = (await conn.execute(select(a.c.receipt_number, a.c.verification_code)
                                       .where(a.c.receipt_number.is_not(None)))).all()
            stored = {r.receipt_number: r for r in (await conn.execute(select(p))).all()}
            out = []
            for receipt, code in apps:
                want = await rendered_per_request(conn, receipt)
                got = stored.get(receipt)
                if got is None or got.body.encode() != want or got.verification_code != code:
                    out.append((receipt, want, got.body.encode() if got else None))
            out += [(r, None, x.body.encode()) for r, x in stored.items() if r not in {a[0] for a in apps}]
    return out
