"""`Idempotency-Key` for creating POSTs: the first request with a key does the work; a repeat with the same
body gets the same status and body back; a repeat with another body is a 422; a repeat while the first is
still running is a 409. The key's completion commits in the same transaction as the work.

On PostgreSQL the key is claimed in the work's own transaction (one transaction and one commit per request
instead of two): a repeat that arrives meanwhile does not wait for it, because the claim also takes a
transaction-scoped advisory lock on the key by `pg_try_advisory_xact_lock`, and a repeat that cannot take it
sees no committed claim yet and is told 409, as when the claim committed first. A request that fails leaves no
claim: it rolls back with the work. On SQLite the claim commits alone first, as every writer there queues
behind one lock: a repeat would otherwise wait for the whole work instead of being told 409."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import BigInteger, String, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database, affected, dialect_of, is_sqlite
from shared.errors import ZH, Conflict, FieldError, ValidationProblem
from shared.messaging import complete_key_at_commit, insert_ignore
from shared.types import utcnow

#: A key whose first request died mid-way (a crash, or a database outage that also kept the claim from being
#: released) is taken over after this long: a few request timeouts.
STALE_AFTER = timedelta(seconds=30)

Work = Callable[[AsyncSession], Awaitable[tuple[int, Any]]]
Prepare = Callable[[], Awaitable[None]]
Ready = Callable[[AsyncSession], Awaitable[bool]]


class Answer(JSONResponse):
    """`run_idempotent`'s answer: rendered once (the text the key stores is the body sent), and keeping the body it
    was rendered from (`answer`) for a caller that reads it, which then decodes nothing."""

    def __init__(self, answer: Any, status_code: int, *, encoded: bytes | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.answer, self._encoded = answer, encoded
        super().__init__(answer, status_code=status_code, headers=headers)

    def render(self, content: Any) -> bytes:
        return self._encoded if self._encoded is not None else super().render(content)


def _encoded(body: Any) -> str:
    """The body as `JSONResponse` renders it (and, for what is not JSON, as the key stored it before: `str`)."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"), default=str)


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _lock_id(scope: str, key: str) -> int:
    """The advisory lock's 64-bit key: two keys sharing one would only tell a repeat of either 409 while the other
    runs."""
    return int.from_bytes(hashlib.sha256(f"{scope}\0{key}".encode()).digest()[:8], "big", signed=True)


#: The PostgreSQL claim per table, built once: the row is inserted only by the transaction that took the key's
#: advisory lock; a committed claim of the key makes it a no-op (`ON CONFLICT DO NOTHING`).
_PG_CLAIMS: dict[str, Any] = {}


def _pg_claim(table: Table) -> Any:
    stmt = _PG_CLAIMS.get(table.name)
    if stmt is None:
        cols = ("scope", "key", "request_hash", "created_at")
        row = select(*(bindparam(c, type_=table.c[c].type) for c in cols)).where(
            func.pg_try_advisory_xact_lock(bindparam("lock", type_=BigInteger)))
        stmt = _PG_CLAIMS[table.name] = postgresql.insert(table).from_select(cols, row).on_conflict_do_nothing()
    return stmt


@functools.cache
def _find(table: Table) -> Any:
    """The key's row, built once per table (building a select and its cache key costs more Python than running
    it)."""
    return select(table).where(table.c.scope == bindparam("k_scope", type_=String),
                               table.c.key == bindparam("k_key", type_=String))


async def _claim(s: AsyncSession, table: Table, scope: str, key: str, digest: str) -> JSONResponse | None:
    """Claim the key in `s`'s transaction: None when this request is to do the work; the stored answer when the
    key's work is done; a 422 problem for another body, a 409 while the work runs elsewhere."""
    values = {"scope": scope, "key": key, "request_hash": digest, "created_at": utcnow()}
    find, which = _find(table), {"k_scope": scope, "k_key": key}
    if dialect_of(s) == "postgresql":
        if affected(await s.execute(_pg_claim(table), {**values, "lock": _lock_id(scope, key)})) == 1:
            return None
        row = (await s.execute(find, which)).one_or_none()
    else:
        # SQLite: look before writing. The first request holds the one write lock while its work runs, so a
        # repeat's INSERT would wait for all of it; a read does not wait, and finds the committed claim.
        row = (await s.execute(find, which)).one_or_none()
        if row is None:
            if affected(await s.execute(insert_ignore(s, table).values(**values))) == 1:
                return None
            row = (await s.execute(find, which)).one_or_none()
    if row is not None and row.request_hash != digest:
        raise ValidationProblem(
            FieldError(
                field="header.Idempotency-Key",
                rule="idempotency_key_reused",
                message="This key was already used with a different request body.",
            ).with_text(ZH, "此幂等键已用于内容不同的请求。")
        )
    if row is not None and row.completed_at is not None:
        return Answer(json.loads(row.response_body), row.status_code, headers={"Idempotent-Replayed": "true"})
    # No row: another transaction holds the key's lock and has not committed (PostgreSQL). A claim older than
    # STALE_AFTER is taken over, once: of two requests taking it over, the second finds `created_at` changed.
    if row is None or utcnow() - row.created_at < STALE_AFTER or not affected(await s.execute(
            update(table).where(table.c.scope == scope, table.c.key == key, table.c.created_at == row.created_at)
            .values(created_at=utcnow()))):
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            detail_zh="使用此幂等键的请求仍在处理中，请稍后重试。", slug="idempotency-in-flight",
        )
    return None


def _complete(s: AsyncSession, table: Table, scope: str, key: str, status: int, text: str) -> None:
    """The key's answer, written as the work's transaction commits: on PostgreSQL inside the outbox's insert of the
    work's events (`complete_key_at_commit`), one statement fewer per request that emits any."""
    complete_key_at_commit(s, table, scope=scope, key=key, status=status, body=text)


async def _nothing_outside(_: AsyncSession) -> bool:
    return True


async def _something_outside(_: AsyncSession) -> bool:
    return False


async def run_idempotent(
    request: Request, *, key: str | None, scope: str, payload: Any, work: Work, prepare: Prepare | None = None,
    ready: Ready | None = None,
) -> JSONResponse:
    """Run `work(session)` (which returns status and JSON-able body) at most once per (scope, key).

    `prepare()` runs only in the request that claimed the key, before the work's transaction: slow steps such
    as a call to another service belong there, so that duplicates of a request are answered from the key
    (replayed or 409) without repeating them, and no row is locked while they run.

    `ready(session)`, when given, runs first in the work's transaction, right after the claim (so, also only in
    the claiming request), and says whether this request has anything for `prepare()` to do: if not (True) the
    work follows in the same transaction; else what `ready` did and the claim commit, then `prepare()` and the
    work in a transaction of its own. Without `ready`, `prepare()` always runs."""
    db: Database = request.app.state.db
    if key is not None and len(key) > 200:
        raise ValidationProblem(
            FieldError(field="header.Idempotency-Key", rule="max_length", message="At most 200 characters.")
            .with_text(ZH, "幂等键最多 200 个字符。")
        )
    key = key or None
    table = request.app.state.messaging.idempotency
    digest = fingerprint(payload) if key is not None else ""
    if ready is None:
        ready = _something_outside if prepare is not None else _nothing_outside
    # Whether this request's claim has committed without its answer: then a failure must release it.
    claim_committed = False
    text: str | None = None  # the answer as the key stores it, and as it is sent
    try:
        if key is not None and is_sqlite(db.url):
            async with db.transaction() as s:
                replay = await _claim(s, table, scope, key, digest)
            if replay is not None:
                return replay
            claim_committed = True
        async with db.transaction() as s:
            if key is not None and not claim_committed:
                replay = await _claim(s, table, scope, key, digest)
                if replay is not None:
                    return replay
            if done := await ready(s):
                status, body = await work(s)
                if key is not None:
                    text = _encoded(body)
                    _complete(s, table, scope, key, status, text)
        if not done:
            claim_committed = key is not None
            if prepare is not None:
                await prepare()
            async with db.transaction() as s:
                status, body = await work(s)
                if key is not None:
                    text = _encoded(body)
                    _complete(s, table, scope, key, status, text)
    except BaseException:
        if claim_committed:
            async with db.transaction() as s:
                await s.execute(delete(table).where(table.c.scope == scope, table.c.key == key))
        raise
    return Answer(body, status, encoded=(text if text is not None else _encoded(body)).encode())
