"""The working-day calendar (办事工作日) that every deadline counts in.

A year's table lists statutory holidays that fall on weekdays and adjusted working weekends (调休). Tables
come from the `chinesecalendar` library for the years it knows (2004–2026 in 1.11), and can be overridden or
extended per year (efficacy loads the State Council's notice each winter and hands the tables in). A year
with no table is counted with the statutory holidays the `holidays` package computes for it (New Year, Spring
Festival, Qingming, Labour Day, Dragon Boat, Mid-Autumn, National Day, with their observed days), but without
调休 working weekends, which nobody can know before the notice; every result computed through such a year
says so in `assumed_years`, and nothing fails at a year boundary. The source for uncovered years is
pluggable (`WorkCalendar(fallback=...)`; `fallback=None` is plain Monday–Friday)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import chinese_calendar
import holidays as holidays_lib


@dataclass(frozen=True)
class YearTable:
    year: int
    holidays: frozenset[date]  # days off that would otherwise be working days (and holiday weekends)
    workdays: frozenset[date]  # weekend days that are working days (调休)
    source: str


def library_table(year: int) -> YearTable | None:
    """The library's table for `year`, or None when it has no data for it."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    try:
        chinese_calendar.is_workday(start)
        chinese_calendar.is_workday(end)
    except NotImplementedError:
        return None
    holidays = {d for d in chinese_calendar.holidays if d.year == year}
    workdays = {d for d in chinese_calendar.workdays if d.year == year and d.weekday() >= 5}
    return YearTable(year, frozenset(holidays), frozenset(workdays), f"chinesecalendar {getattr(chinese_calendar, '__version__', '')}".strip())


def statutory_table(year: int) -> YearTable | None:
    """An estimate for a year without an official table: the statutory holidays (and their observed days) as
    the `holidays` package computes them; no 调休 working weekends. None where the package cannot say."""
    try:
        days = holidays_lib.country_holidays("CN", years=year)
    except Exception:  # an unsupported year: Monday–Friday
        return None
    return YearTable(year, frozenset(d for d in days if d.year == year), frozenset(),
                     f"holidays {getattr(holidays_lib, '__version__', '')} (statutory holidays, assumed)")


#: Where the days of a year without an official table come from.
Fallback = Callable[[int], "YearTable | None"]


@dataclass(frozen=True)
class WorkdayResult:
    value: date
    assumed_years: frozenset[int] = field(default_factory=frozenset)

    @property
    def assumed(self) -> bool:
        """True when a year without a holiday table was counted as Monday–Friday."""
        return bool(self.assumed_years)


class WorkCalendar:
    def __init__(self, overrides: Mapping[int, YearTable] | None = None, *, use_library: bool = True,
                 fallback: Fallback | None = statutory_table) -> None:
        self._overrides = dict(overrides or {})
        self._use_library = use_library
        self._fallback = fallback
        self._cache: dict[int, YearTable | None] = {}
        self._estimates: dict[int, YearTable | None] = {}

    def with_tables(self, tables: Iterable[YearTable]) -> WorkCalendar:
        merged = dict(self._overrides)
        merged.update({t.year: t for t in tables})
        return WorkCalendar(merged, use_library=self._use_library, fallback=self._fallback)

    def table(self, year: int) -> YearTable | None:
        if year in self._overrides:
            return self._overrides[year]
        if year not in self._cache:
            self._cache[year] = library_table(year) if self._use_library else None
        return self._cache[year]

    def known(self, year: int) -> bool:
        return self.table(year) is not None

    def day_table(self, year: int) -> YearTable | None:
        """The table days are counted by: the official one, else the fallback's estimate (still `assumed`)."""
        t = self.table(year)
        if t is not None or self._fallback is None:
            return t
        if year not in self._estimates:
            self._estimates[year] = self._fallback(year)
        return self._estimates[year]

    def is_workday(self, day: date) -> bool:
        t = self.day_table(day.year)
        if t is not None:
            if day in t.workdays:
                return True
            if day in t.holidays:
                return False
        return day.weekday() < 5

    def add_workdays(self, start: date, days: int) -> WorkdayResult:
        """The date `days` working days after `start` (a limit of 1 on a Friday ends on Monday).

        `days == 0` gives `start` itself if it is a working day, else the next working day."""
        assumed: set[int] = set()
        d = start
        if days <= 0:
            while not self.is_workday(d):
                self._note(d, assumed)
                d += timedelta(days=1)
            self._note(d, assumed)
            return WorkdayResult(d, frozenset(assumed))
        remaining = days
        while remaining > 0:
            d += timedelta(days=1)
            self._note(d, assumed)
            if self.is_workday(d):
                remaining -= 1
        return WorkdayResult(d, frozenset(assumed))

    def workdays_between(self, start: date, end: date) -> WorkdayCount:
        """Working days in (start, end]: how many working days were used from `start` to `end`.
        Negative when `end` is before `start` (days left before a deadline)."""
        lo, hi, sign = (start, end, 1) if start <= end else (end, start, -1)
        assumed: set[int] = set()
        n = 0
        d = lo
        while d < hi:
            d += timedelta(days=1)
            self._note(d, assumed)
            if self.is_workday(d):
                n += 1
        return WorkdayCount(sign * n, frozenset(assumed))

    def _note(self, d: date, assumed: set[int]) -> None:
        if not self.known(d.year):
            assumed.add(d.year)


@dataclass(frozen=True)
class WorkdayCount:
    value: int
    assumed_years: frozenset[int] = field(default_factory=frozenset)

    @property
    def assumed(self) -> bool:
        return bool(self.assumed_years)
