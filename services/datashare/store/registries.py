"""Queries on the base registries: bulk upsert on import, lookup by key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.domain.registries import POPULATION
from services.datashare.store.tables import LegalPersonRecord, PopulationRecord
from shared.types import utcnow

CHUNK = 1000
PROGRESS_EVERY = 10_000


def _model(registry: str) -> type[PopulationRecord] | type[LegalPersonRecord]:
    return PopulationRecord if registry == POPULATION else LegalPersonRecord


async def upsert_records(
    session: AsyncSession,
    registry: str,
    rows: list[dict[str, Any]],
    department: str,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Insert new records and replace existing ones (re-import is how registries are kept current)."""
    model = _model(registry)
    key = "id_number" if registry == POPULATION else "credit_code"
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    # One compiled statement run as executemany: SQLAlchemy batches it into multi-row INSERTs itself, without
    # compiling a fresh thousand-row statement per chunk.
    stmt = insert(model)
    stmt = stmt.on_conflict_do_update(
        index_elements=[key],
        set_={c: getattr(stmt.excluded, c) for c in ("name", "data", "updated_at", "updated_by")},
    )
    for start in range(0, len(rows), CHUNK):
        values = [
            {key: r[key], "name": r["name"], "data": r, "updated_at": now, "updated_by": department}
            for r in rows[start : start + CHUNK]
        ]
        await session.execute(stmt, values)
        done = min(start + CHUNK, len(rows))
        if on_progress and (done % PROGRESS_EVERY == 0 or done == len(rows)):
            on_progress(done)
    return len(rows)


async def lookup(session: AsyncSession, registry: str, key: str) -> dict[str, Any] | None:
    row = await session.get(_model(registry), key)
    return dict(row.data) if row is not None else None


async def holder_name(session: AsyncSession, holder_kind: str, holder_id: str) -> str | None:
    """The registered name of a certificate holder: the legal-persons registry for a credit code (001), the
    population registry for an ID number (111)."""
    registry = "legal_persons" if holder_kind == "001" else "population"
    record = await lookup(session, registry, holder_id)
    name = (record or {}).get("name")
    return str(name) if name else None


async def legal_representative_id(session: AsyncSession, credit_code: str) -> str | None:
    """The ID number of an organisation's legal representative as the legal-persons registry records it."""
    record = await lookup(session, "legal_persons", credit_code)
    value = (record or {}).get("legal_representative_id")
    return str(value).strip().upper() if value else None
