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

from bisect import bisect_right
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


def _weekdays_through(day: date) -> int:
    """Monday–Friday days in [0001-01-01, day]; 0001-01-01 (ordinal 1) was a Monday."""
    n = day.toordinal()
    return 5 * (n // 7) + min(n % 7, 5)


#: More working days than a year can have: skipping `deficit // 367` whole years never overshoots.
_MAX_YEAR_DAYS = 367


@dataclass(frozen=True)
class _YearIndex:
    """How one year departs from Monday–Friday, sorted for bisection."""

    known: bool
    extra: tuple[date, ...]  # weekend days that are working days (调休)
    off: tuple[date, ...]  # weekdays that are days off

    @property
    def adjustment(self) -> int:
        return len(self.extra) - len(self.off)

    def adjustment_through(self, day: date) -> int:
        return bisect_right(self.extra, day) - bisect_right(self.off, day)


class WorkCalendar:
    """Working-day arithmetic in a few lookups for any span of years.

    Which days are working days comes from `day_table(year)` alone: the official `table(year)`, else the
    fallback's estimate (override either, or hand tables in, to change the source); the arithmetic only indexes
    what it answers, and a year counts as assumed unless `table(year)` knows it. A day's working-day number is the closed-form count
    of Monday–Friday days since year 1, plus each earlier year's departure from Monday–Friday (a running sum per
    year, kept from an anchor year), plus this year's departure up to the day (a bisection in two short sorted
    lists). "Working days between" is then a subtraction, and "add working days" a jump over whole years
    followed by a bisection inside one year: never a walk day by day."""

    #: The running sum of departures is kept from here, in both directions, so only the years between the anchor
    #: and a queried day are ever looked up.
    ANCHOR_YEAR = 2000

    def __init__(self, overrides: Mapping[int, YearTable] | None = None, *, use_library: bool = True,
                 fallback: Fallback | None = statutory_table) -> None:
        self._overrides = dict(overrides or {})
        self._use_library = use_library
        self._fallback = fallback
        self._cache: dict[int, YearTable | None] = {}
        self._estimates: dict[int, YearTable | None] = {}
        self._years: dict[int, _YearIndex] = {}
        self._before: dict[int, int] = {self.ANCHOR_YEAR: 0}  # departures of the years in [anchor, y), signed

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

    # --- the index -------------------------------------------------------------------------------------------

    def _year(self, year: int) -> _YearIndex:
        idx = self._years.get(year)
        if idx is None:
            t = self.day_table(year)
            if t is None:
                idx = _YearIndex(False, (), ())
            else:
                extra = sorted(d for d in t.workdays if d.year == year and d.weekday() >= 5)
                off = sorted(d for d in t.holidays - t.workdays if d.year == year and d.weekday() < 5)
                idx = _YearIndex(self.known(year), tuple(extra), tuple(off))
            self._years[year] = idx
        return idx

    def _departures_before(self, year: int) -> int:
        """Working days gained (+) or lost (−) against Monday–Friday in the years [anchor, year), or minus those
        of [year, anchor) for a year before the anchor."""
        got = self._before.get(year)
        if got is not None:
            return got
        step = 1 if year > self.ANCHOR_YEAR else -1
        y = year - step
        while y not in self._before:  # the nearest year already summed, towards the anchor
            y -= step
        total = self._before[y]
        while y != year:
            if step == 1:
                total += self._year(y).adjustment
                y += 1
            else:
                y -= 1
                total -= self._year(y).adjustment
            self._before[y] = total
        return total

    def _number(self, day: date) -> int:
        """Working days in [0001-01-01, day] (up to a constant): increases by one on each working day."""
        return _weekdays_through(day) + self._departures_before(day.year) + self._year(day.year).adjustment_through(day)

    def _first_reaching(self, target: int, lo: date) -> date:
        """The first day on or after `lo` whose number is at least `target`."""
        year = lo.year
        while True:
            deficit = target - self._number(date(year, 12, 31))
            if deficit <= 0:
                break
            year += max(1, deficit // _MAX_YEAR_DAYS)
        low = max(lo, date(year, 1, 1)).toordinal()
        high = date(year, 12, 31).toordinal()
        while low < high:
            mid = (low + high) // 2
            if self._number(date.fromordinal(mid)) >= target:
                high = mid
            else:
                low = mid + 1
        return date.fromordinal(low)

    def _unknown_years(self, first: date, last: date) -> frozenset[int]:
        if first > last:
            return frozenset()
        return frozenset(y for y in range(first.year, last.year + 1) if not self._year(y).known)

    # --- the arithmetic --------------------------------------------------------------------------------------

    def add_workdays(self, start: date, days: int) -> WorkdayResult:
        """The date `days` working days after `start` (a limit of 1 on a Friday ends on Monday).

        `days == 0` gives `start` itself if it is a working day, else the next working day."""
        if days <= 0:
            before = self._number(start) - (1 if self.is_workday(start) else 0)
            end = self._first_reaching(before + 1, start)
            return WorkdayResult(end, self._unknown_years(start, end))
        end = self._first_reaching(self._number(start) + days, start + timedelta(days=1))
        return WorkdayResult(end, self._unknown_years(start + timedelta(days=1), end))

    def workdays_between(self, start: date, end: date) -> WorkdayCount:
        """Working days in (start, end]: how many working days were used from `start` to `end`.
        Negative when `end` is before `start` (days left before a deadline)."""
        lo, hi, sign = (start, end, 1) if start <= end else (end, start, -1)
        if lo == hi:
            return WorkdayCount(0, frozenset())
        n = self._number(hi) - self._number(lo)
        return WorkdayCount(sign * n, self._unknown_years(lo + timedelta(days=1), hi))


@dataclass(frozen=True)
class WorkdayCount:
    value: int
    assumed_years: frozenset[int] = field(default_factory=frozenset)

    @property
    def assumed(self) -> bool:
        return bool(self.assumed_years)
