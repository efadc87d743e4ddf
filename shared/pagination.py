"""Cursor pagination: the cursor is an opaque token of the last row's sort key, so pages stay stable while
rows are added (unlike offsets)."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import invalid

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list. Pass `next_cursor` back as `cursor` for the next page; null means the end."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Opaque; absent on the last page.")


class PageParams(BaseModel):
    cursor: str | None = None
    limit: int = 20


def _page_params(
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page (1–200).")] = 20,
) -> PageParams:
    return PageParams(cursor=cursor, limit=limit)


PageDep = Annotated[PageParams, Depends(_page_params)]


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list):
            raise ValueError
        return values
    except Exception as exc:
        raise invalid("query.cursor", "cursor", "The cursor is not one this list issued.") from exc


def _typed(columns: list[Any], values: list[Any]) -> list[Any]:
    """Turn a cursor's JSON values back into the key columns' Python types; a forged cursor is a 422."""
    from datetime import UTC, datetime

    out: list[Any] = []
    for col, value in zip(columns, values, strict=True):
        try:
            kind = col.type.python_type
        except (NotImplementedError, AttributeError):
            kind = str
        try:
            if kind is datetime:
                parsed = datetime.fromisoformat(str(value))
                out.append(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
            elif kind is int:
                number = int(value)
                if not -(2**63) <= number < 2**63:  # a forged key the database cannot compare
                    raise ValueError("out of range")
                out.append(number)
            elif kind in (float, str):
                out.append(kind(value))
            else:
                out.append(value)
        except (TypeError, ValueError) as exc:
            raise invalid("query.cursor", "cursor", "The cursor is not one this list issued.") from exc
    return out


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    *,
    key_columns: list[Any],
    params: PageParams,
    key_of: Any,
    descending: bool = False,
    parse_key: Any = None,
) -> tuple[list[Any], str | None]:
    """Keyset pagination over `key_columns` (unique together, e.g. (created_at, id)) of a select of one ORM
    entity (rows come back through `.scalars()`).

    `key_of(row)` returns the key values of a row as JSON-able values; `parse_key(values)` turns them back
    into column values (e.g. ISO strings into datetimes)."""
    if params.cursor:
        values = decode_cursor(params.cursor)
        if len(values) != len(key_columns):
            raise invalid("query.cursor", "cursor", "The cursor is not one this list issued.")
        values = parse_key(values) if parse_key else _typed(key_columns, values)
        cmp = tuple_(*key_columns) < tuple_(*values) if descending else tuple_(*key_columns) > tuple_(*values)
        stmt = stmt.where(cmp)
    order = [c.desc() for c in key_columns] if descending else list(key_columns)
    rows = list((await session.execute(stmt.order_by(*order).limit(params.limit + 1))).scalars())
    next_cursor = encode_cursor(key_of(rows[params.limit - 1])) if len(rows) > params.limit else None
    return rows[: params.limit], next_cursor
