"""Cursor pagination walks a list once, in order, while rows are added, and refuses a forged cursor."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.errors import ValidationProblem
from shared.pagination import PageParams, encode_cursor, paginate

from .conftest import effect


async def test_pages_walk_every_row_once_and_forged_cursors_are_422(db):
    async with db.transaction() as s:
        for n in range(7):
            await s.execute(effect.insert().values(consumer="page", event_id=f"e{n}"))
    seen: list[int] = []
    cursor = None
    async with db.transaction() as s:
        while True:
            rows, cursor = await paginate(
                s, select(effect.c.id).where(effect.c.consumer == "page"), key_columns=[effect.c.id],
                params=PageParams(cursor=cursor, limit=3), key_of=lambda r: [r],
            )
            seen += rows
            if cursor is None:
                break
            await s.execute(effect.insert().values(consumer="other", event_id="noise"))
        assert seen == sorted(seen) and len(seen) == 7
        # 2**63 is beyond every integer column: a driver overflow (a 500) unless refused here.
        for forged in ("not-base64!", encode_cursor(["abc"]), encode_cursor([1, 2]), encode_cursor([2**63])):
            with pytest.raises(ValidationProblem) as err:
                await paginate(s, select(effect.c.id), key_columns=[effect.c.id],
                               params=PageParams(cursor=forged, limit=3), key_of=lambda r: [r])
            assert err.value.errors[0].rule == "cursor"
