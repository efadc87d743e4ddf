"""The days and months the KPI charts are drawn over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Period:
    label: str
    start: date
    end: date


def last_days(today: date, n: int) -> list[Period]:
    """The n days ending today, oldest first."""
    return [Period(d.strftime("%m-%d"), d, d) for d in (today - timedelta(days=i) for i in range(n - 1, -1, -1))]


def last_months(today: date, n: int) -> list[Period]:
    """The n calendar months ending with this one (to today), oldest first."""
    out: list[Period] = []
    y, m = today.year, today.month
    for _ in range(n):
        start = date(y, m, 1)
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        out.append(Period(f"{y}-{m:02d}", start, min(today, nxt - timedelta(days=1))))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[::-1]
