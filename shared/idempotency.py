"""`Idempotency-Key` for creating POSTs: the first request with a key does the work; a repeat with the same
body gets the same status and body back; a repeat with another body is a 422; a repeat while the first is
still running is a 409. The key's completion commits in the same transaction as the work."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database, affected
from shared.errors import ZH, Conflict, FieldError, ValidationProblem
from shared.messaging import insert_ignore
from shared.types import utcnow

#: A key whose first request died mid-way (a crash, or a database outage that also kept the claim from being
#: released) is taken over after this long: a few request timeouts.
STALE_AFTER = timedelta(seconds=30)

Work = Callable[[AsyncSession], Awaitable[tuple[int, Any]]]
Prepare = Callable[[], Awaitable[None]]


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


async def run_idempotent(
    request: Request, *, key: str | None, scope: str, payload: Any, work: Work, prepare: Prepare | None = None
) -> JSONResponse:
    """Run `work(session)` (which returns status and JSON-able body) at most once per (scope, key).

    `prepare()` runs only in the request that claimed the key, before the work's transaction: slow steps such
    as a call to another service belong there, so that duplicates of a request are answered from the key
    (replayed or 409) without repeating them."""
    db: Database = request.app.state.db
    if not key:
        if prepare is not None:
            await prepare()
        async with db.transaction() as s:
            status, body = await work(s)
        return JSONResponse(body, status_code=status)
    if len(key) > 200:
        raise ValidationProblem(
            FieldError(field="header.Idempotency-Key", rule="max_length", message="At most 200 characters.")
            .with_text(ZH, "幂等键最多 200 个字符。")
        )
    table = request.app.state.messaging.idempotency
    digest = fingerprint(payload)
    async with db.transaction() as s:
        res = await s.execute(
            insert_ignore(s, table).values(scope=scope, key=key, request_hash=digest, created_at=utcnow())
        )
        claimed = affected(res) == 1
        if not claimed:
            row = (await s.execute(select(table).where(table.c.scope == scope, table.c.key == key))).one()
            if row.request_hash != digest:
                raise ValidationProblem(
                    FieldError(
                        field="header.Idempotency-Key",
                        rule="idempotency_key_reused",
                        message="This key was already used with a different request body.",
                    ).with_text(ZH, "此幂等键已用于内容不同的请求。")
                )
            if row.completed_at is not None:
                return JSONResponse(
                    json.loads(row.response_body), status_code=row.status_code,
                    headers={"Idempotent-Replayed": "true"},
                )
            if utcnow() - row.created_at < STALE_AFTER:
                raise Conflict(
                    "A request with this Idempotency-Key is still being processed; retry shortly.",
                    detail_zh="使用此幂等键的请求仍在处理中，请稍后重试。", slug="idempotency-in-flight",
                )
            await s.execute(
                update(table).where(table.c.scope == scope, table.c.key == key).values(created_at=utcnow())
            )
    try:
        if prepare is not None:
            await prepare()
        async with db.transaction() as s:
            status, body = await work(s)
            await s.execute(
                update(table)
                .where(table.c.scope == scope, table.c.key == key)
                .values(status_code=status, response_body=json.dumps(body, default=str), completed_at=utcnow())
            )
    except BaseException:
        async with db.transaction() as s:
            await s.execute(delete(table).where(table.c.scope == scope, table.c.key == key))
        raise
    return JSONResponse(body, status_code=status)
