"""The acceptance clock at the window: how many working days a submitted application has waited for the
clerk's accept / not-accept / return (受理审查), against the legal five (《行政许可法》第三十二条)."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class AcceptanceClock:
    waited_workdays: int
    limit_workdays: int

    @property
    def remaining_workdays(self) -> int:
        return self.limit_workdays - self.waited_workdays

    @property
    def state(self) -> str:
        """`ok`, `due_soon` (one working day or less left) or `overdue`."""
        if self.remaining_workdays < 0:
            return "overdue"
        return "due_soon" if self.remaining_workdays <= 1 else "ok"


def acceptance_clock(submitted_on: date, today: date, workdays: Container[date], limit: int) -> AcceptanceClock:
    """Working days in (submitted_on, today]: the day of submission does not count, as for every limit."""
    waited = 0
    d = submitted_on + timedelta(days=1)
    while d <= today:
        if d in workdays:
            waited += 1
        d += timedelta(days=1)
    return AcceptanceClock(waited, limit)
