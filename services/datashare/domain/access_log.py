"""The access log (数据访问日志): an append-only hash chain over every read of personal data.

Each row's hash is sha256(previous hash + canonical row); editing, deleting or reordering any row breaks
every hash from there on, and `first_broken` names the first row that no longer fits."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64

#: The columns a row's hash covers, in this order; adding one means a new chain version.
HASHED_FIELDS = (
    "seq", "recorded_at", "accessor_subject", "accessor_kind", "accessor_department", "service", "action",
    "target", "holder_id", "application_id", "item_code", "material_code", "fields", "outcome",
)


def canonical_row(row: dict[str, Any]) -> str:
    values = {}
    for name in HASHED_FIELDS:
        value = row.get(name)
        if isinstance(value, datetime):
            value = value.isoformat()
        values[name] = value
    return json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def chain_hash(prev_hash: str, row: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_row(row)).encode()).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    rows_checked: int
    first_broken_seq: int | None = None
    reason: str | None = None


def verify_chain(rows: Iterable[dict[str, Any]]) -> ChainReport:
    """Walk the rows in seq order; the first row whose stored link or hash does not match is reported."""
    prev = GENESIS
    count = 0
    for row in rows:
        count += 1
        if row["prev_hash"] != prev:
            return ChainReport(False, count, row["seq"], "the row does not link to the previous row's hash")
        if chain_hash(prev, row) != row["hash"]:
            return ChainReport(False, count, row["seq"], "the row's content does not match its hash")
        prev = row["hash"]
    return ChainReport(True, count)
