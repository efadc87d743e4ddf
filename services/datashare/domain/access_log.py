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
    "target", "holder_id", "application_id", "item_code", "material_code", "purpose", "fields", "outcome",
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


#: Where the seq stands in `canonical_row`: its keys sort it before "service" and "target" only. A string value
#: cannot hold this text: its quotes are escaped.
_SEQ_MARK = ',"seq":0,'


def canonical_around_seq(row: dict[str, Any]) -> tuple[str, str]:
    """`canonical_row` of `row` on either side of its seq: `prefix + str(seq) + suffix` is `canonical_row` with that
    seq, so a database that numbers the row can hash it in the statement that appends it (the chain's head is
    locked from that statement to the commit, not across round trips to the service)."""
    text = canonical_row({**row, "seq": 0})
    at = text.index(_SEQ_MARK)
    return text[:at] + ',"seq":', "," + text[at + len(_SEQ_MARK):]


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    rows_checked: int
    first_broken_seq: int | None = None
    reason: str | None = None


class ChainWalker:
    """Checks rows fed in seq order and remembers the first that does not fit."""

    def __init__(self) -> None:
        self.prev = GENESIS
        self.count = 0
        self.broken: ChainReport | None = None
        self.last_seq = 0

    def feed(self, row: dict[str, Any]) -> bool:
        """False once the chain is broken (later rows need not be read)."""
        if self.broken:
            return False
        self.count += 1
        if row["prev_hash"] != self.prev:
            self.broken = ChainReport(False, self.count, row["seq"], "the row does not link to the previous row's hash")
        elif chain_hash(self.prev, row) != row["hash"]:
            self.broken = ChainReport(False, self.count, row["seq"], "the row's content does not match its hash")
        else:
            self.prev, self.last_seq = row["hash"], row["seq"]
        return self.broken is None

    def report(self, head_seq: int | None = None) -> ChainReport:
        """`head_seq` is the length the chain's head remembers: rows cut off the end leave a consistent
        chain, so only the head shows them."""
        if self.broken:
            return self.broken
        if head_seq is not None and head_seq != self.last_seq:
            return ChainReport(False, self.count, self.last_seq + 1, "rows missing at the end of the chain")
        return ChainReport(True, self.count)


def verify_chain(rows: Iterable[dict[str, Any]], head_seq: int | None = None) -> ChainReport:
    """Walk the rows in seq order; the first row whose stored link or hash does not match is reported."""
    walker = ChainWalker()
    for row in rows:
        if not walker.feed(row):
            break
    return walker.report(head_seq)
