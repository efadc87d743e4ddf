"""The access watch (安全监控): rules that find unusual reading in the access log — one reader looking up many
people outside its own cases, bursts of refused reads, reads at night, bursts of failed certificate
verifications from one client. Pure functions over access-log rows; the caller opens one supervision item per
(rule, reader, window) and sends the evidence (entry ids, counts, the window), never the personal data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

CITY_TZ = ZoneInfo("Asia/Shanghai")

OUTSIDE_CASES = "reads_outside_cases"
REFUSED_READS = "refused_reads"
NIGHT_READS = "night_reads"
FAILED_VERIFICATIONS = "failed_verifications"

#: Outcomes of a read that released data (or confirmed there was none).
READ_OUTCOMES = frozenset({"found", "no_match", "listed"})
#: At most this many access-log entry ids travel as evidence.
MAX_EVIDENCE = 50


@dataclass(frozen=True)
class Row:
    seq: int
    recorded_at: datetime
    action: str
    outcome: str
    holder_id: str | None
    application_id: str | None


@dataclass(frozen=True)
class Thresholds:
    window: timedelta
    outside_case_holders: int
    refused_reads: int
    failed_verifications: int
    night_reads: int
    night_starts_hour: int = 22
    night_ends_hour: int = 6


@dataclass(frozen=True)
class Anomaly:
    kind: str
    count: int
    threshold: int
    window_start: datetime
    window_end: datetime
    entry_seqs: tuple[int, ...]
    #: One supervision item per rule, reader and window: the same burst read on is not reported twice.
    bucket: str


def is_night(at: datetime, starts: int, ends: int) -> bool:
    hour = at.astimezone(CITY_TZ).hour
    return hour >= starts or hour < ends if starts > ends else starts <= hour < ends


def _bucket(now: datetime, window: timedelta) -> str:
    size = max(1, int(window.total_seconds()))
    return str(int(now.timestamp()) // size)


def _evidence(rows: Sequence[Row]) -> tuple[int, ...]:
    return tuple(r.seq for r in rows[-MAX_EVIDENCE:])


def detect(rows: Sequence[Row], now: datetime, t: Thresholds, *, staff_reader: bool) -> list[Anomaly]:
    """The rules one reader's recent rows (oldest first, within the window) break. `staff_reader`: the reader is
    staff or a department system (night and outside-case rules apply to them); anyone else — a citizen's
    account, a public client — is watched for refused reads and failed verifications."""
    start = now - t.window
    rows = [r for r in rows if r.recorded_at >= start]
    found: list[Anomaly] = []

    def add(kind: str, hits: list[Row], count: int, threshold: int, bucket: str) -> None:
        if count >= threshold > 0:
            found.append(Anomaly(kind, count, threshold, start, now, _evidence(hits), bucket))

    bucket = _bucket(now, t.window)
    failed = [r for r in rows if r.action == "certificate_verification" and r.outcome == "code_mismatch"]
    add(FAILED_VERIFICATIONS, failed, len(failed), t.failed_verifications, bucket)
    refused = [r for r in rows if r.outcome == "refused"]
    add(REFUSED_READS, refused, len(refused), t.refused_reads, bucket)
    if not staff_reader:
        return found
    outside = [r for r in rows if r.application_id is None and r.outcome in READ_OUTCOMES and r.holder_id]
    add(OUTSIDE_CASES, outside, len({r.holder_id for r in outside}), t.outside_case_holders, bucket)
    night = [r for r in rows if r.outcome in READ_OUTCOMES and is_night(r.recorded_at, t.night_starts_hour,
                                                                         t.night_ends_hour)]
    # One item per reader per night: the night's date (the evening's) is its bucket.
    night_of = (now.astimezone(CITY_TZ) - timedelta(hours=t.night_ends_hour)).date().isoformat()
    add(NIGHT_READS, night, len(night), t.night_reads, night_of)
    return found
