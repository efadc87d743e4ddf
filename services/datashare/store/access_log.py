"""The access log's store: append under the head's lock, read in chain order."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.domain.access_log import GENESIS, canonical_around_seq, chain_hash
from services.datashare.store.tables import AccessLogEntry, AccessLogHead
from shared.db import dialect_of
from shared.messaging import insert_ignore
from shared.types import utcnow

ROW_COLUMNS = [c.name for c in AccessLogEntry.__table__.columns]


async def append(
    session: AsyncSession,
    *,
    accessor_subject: str,
    accessor_kind: str,
    accessor_department: str | None,
    service: str,
    action: str,
    target: str,
    holder_id: str | None,
    outcome: str,
    application_id: str | None = None,
    item_code: str | None = None,
    material_code: str | None = None,
    purpose: str | None = None,
    fields: list[str] | None = None,
) -> AccessLogEntry:
    values: dict[str, Any] = dict(
        recorded_at=utcnow(), accessor_subject=accessor_subject, accessor_kind=accessor_kind,
        accessor_department=accessor_department, service=service, action=action, target=target,
        holder_id=holder_id, application_id=application_id, item_code=item_code, material_code=material_code,
        purpose=purpose, fields=list(fields or []), outcome=outcome,
    )
    if dialect_of(session) == "postgresql":
        prefix, suffix = canonical_around_seq(values)
        row = (await session.execute(_append_statement(), {
            "a_prefix": prefix, "a_suffix": suffix, **{f"a_{k}": v for k, v in values.items()}})).first()
        if row is None:
            raise RuntimeError("the access log has no head row; the service's start-up creates it")
        values.update(seq=row.seq, prev_hash=row.prev_hash, hash=row.hash)
        return AccessLogEntry(**values)
    # Taking the next seq is the first write: it takes SQLite's write lock, so concurrent appends queue here and
    # each reads the hash its predecessor committed. (A SELECT … FOR UPDATE would not do on SQLite, whose driver
    # begins the transaction only at the first write.)
    head_table = AccessLogHead.__table__
    res = await session.execute(
        update(head_table)
        .where(head_table.c.id == 1)
        .values(last_seq=head_table.c.last_seq + 1)
        .returning(head_table.c.last_seq, head_table.c.last_hash)
    )
    head_row = res.first()
    if head_row is None:
        raise RuntimeError("the access log has no head row; the service's start-up creates it")
    values["seq"], values["prev_hash"] = head_row
    values["hash"] = chain_hash(values["prev_hash"], values)
    # A core INSERT: the row is not read back, and no ORM unit of work runs for it.
    await session.execute(AccessLogEntry.__table__.insert().values(**values))
    await session.execute(update(head_table).where(head_table.c.id == 1).values(last_hash=values["hash"]))
    return AccessLogEntry(**values)


@functools.cache
def _append_statement() -> Any:
    """One append on PostgreSQL, built once: the head's UPDATE takes the next seq and the row's hash, computed from
    the previous hash and the row's canonical text on either side of the seq (`canonical_around_seq`), as
    `chain_hash` computes it; the row goes in with them. The head's lock is taken by this statement and held to the
    commit: concurrent appends queue on it (and, after the wait, the UPDATE works on the row its predecessor
    committed), while three statements held it across two round trips to the service."""
    h, e = AccessLogHead.__table__, AccessLogEntry.__table__
    seq = h.c.last_seq + literal_column("1")
    text = h.c.last_hash.concat(bindparam("a_prefix", type_=Text)).concat(cast(seq, Text)).concat(
        bindparam("a_suffix", type_=Text))
    head = (
        update(h).where(h.c.id == 1)
        .values(last_seq=seq, prev_hash=h.c.last_hash, last_hash=func.encode(
            func.sha256(func.convert_to(text, literal_column("'UTF8'"))), literal_column("'hex'")))
        .returning(h.c.last_seq, h.c.prev_hash, h.c.last_hash).cte("head")
    )
    own = [c.name for c in e.c if c.name not in ("seq", "prev_hash", "hash")]
    return (
        insert(e).from_select(["seq", "prev_hash", "hash", *own], select(
            head.c.last_seq, head.c.prev_hash, head.c.last_hash,
            *(bindparam(f"a_{c}", type_=e.c[c].type) for c in own)))
        .returning(e.c.seq, e.c.prev_hash, e.c.hash)
    )


def as_dict(entry: AccessLogEntry) -> dict[str, Any]:
    return {c: getattr(entry, c) for c in ROW_COLUMNS}


async def chain_rows(session: AsyncSession, batch: int = 1000) -> AsyncIterator[dict[str, Any]]:
    """Every row in seq order, in batches so a long chain is not held in memory at once."""
    last = 0
    while True:
        q = select(AccessLogEntry).where(AccessLogEntry.seq > last).order_by(AccessLogEntry.seq).limit(batch)
        rows = list((await session.execute(q)).scalars())
        if not rows:
            return
        for r in rows:
            yield as_dict(r)
        last = rows[-1].seq
        session.expunge_all()


async def ensure_head(session: AsyncSession) -> None:
    """Create the chain's head once (at start-up, so concurrent first appends never race to create it)."""
    await session.execute(
        insert_ignore(session, AccessLogHead.__table__).values(id=1, last_seq=0, last_hash=GENESIS)
    )


async def head(session: AsyncSession) -> AccessLogHead | None:
    return await session.get(AccessLogHead, 1)


def holder_query(holder_ids: set[str]):  # type: ignore[no-untyped-def]
    return select(AccessLogEntry).where(AccessLogEntry.holder_id.in_(holder_ids))


def department_query(department: str | None, accessor: str | None = None):  # type: ignore[no-untyped-def]
    q = select(AccessLogEntry)
    if department:
        q = q.where(AccessLogEntry.accessor_department == department)
    if accessor:
        q = q.where(AccessLogEntry.accessor_subject == accessor)
    return q


async def failed_verifications(session: AsyncSession, holder_id: str, target: str, since: datetime) -> int:
    """Wrong verification codes presented for one certificate since `since` (the holder's index finds them)."""
    q = select(func.count()).select_from(AccessLogEntry).where(
        AccessLogEntry.holder_id == holder_id, AccessLogEntry.target == target,
        AccessLogEntry.outcome == "code_mismatch", AccessLogEntry.recorded_at >= since)
    return int((await session.execute(q)).scalar_one())


def lookups_query(holder_ids: set[str]):  # type: ignore[no-untyped-def]
    """Reads of the holder's data without an application: look-ups by admins and supervisors with a reason."""
    return select(AccessLogEntry).where(
        AccessLogEntry.holder_id.in_(holder_ids), AccessLogEntry.application_id.is_(None),
        AccessLogEntry.accessor_kind.in_(("staff", "department_system")))
