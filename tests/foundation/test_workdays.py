"""The working-day arithmetic (shared/workdays.py) gives the answers of counting day by day, in a few lookups for
any span of years (issue 13: a clock asked about 9999-12-31 took 25 s of one core)."""

from __future__ import annotations

import random
import time
from datetime import date, timedelta

from shared.workdays import WorkCalendar, WorkdayCount, WorkdayResult, YearTable, library_table


def walk_add(cal: WorkCalendar, start: date, days: int) -> WorkdayResult:
    """The definition, one day at a time (the implementation before issue 13)."""
    assumed: set[int] = set()
    d = start
    if days <= 0:
        while not cal.is_workday(d):
            if not cal.known(d.year):
                assumed.add(d.year)
            d += timedelta(days=1)
        if not cal.known(d.year):
            assumed.add(d.year)
        return WorkdayResult(d, frozenset(assumed))
    while days > 0:
        d += timedelta(days=1)
        if not cal.known(d.year):
            assumed.add(d.year)
        days -= cal.is_workday(d)
    return WorkdayResult(d, frozenset(assumed))


def walk_between(cal: WorkCalendar, start: date, end: date) -> WorkdayCount:
    lo, hi, sign = (start, end, 1) if start <= end else (end, start, -1)
    assumed: set[int] = set()
    n, d = 0, lo
    while d < hi:
        d += timedelta(days=1)
        if not cal.known(d.year):
            assumed.add(d.year)
        n += cal.is_workday(d)
    return WorkdayCount(sign * n, frozenset(assumed))


class CountingCalendar(WorkCalendar):
    """Counts how often the source of working days is asked (what "a few lookups" means here)."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.lookups = 0

    def table(self, year: int) -> YearTable | None:
        self.lookups += 1
        return super().table(year)


def test_adding_and_counting_working_days_answer_like_counting_day_by_day():
    cal = WorkCalendar()  # the library's tables (2004–2026) and Monday–Friday around them
    loaded = cal.with_tables([YearTable(2027, frozenset({date(2027, 1, 1), date(2027, 2, 8)}),
                                        frozenset({date(2027, 2, 6)}), "notice")])
    rng = random.Random(13)
    for calendar in (cal, loaded):
        for _ in range(1500):
            a = date(1995, 1, 1) + timedelta(days=rng.randrange(0, 40 * 365))
            b = a + timedelta(days=rng.randrange(-400, 400))
            n = rng.choice([-1, 0, 1, 2, 5, rng.randrange(0, 400)])
            assert calendar.workdays_between(a, b) == walk_between(calendar, a, b), (a, b)
            assert calendar.add_workdays(a, n) == walk_add(calendar, a, n), (a, n)


def test_holidays_and_adjusted_weekends_of_a_table_are_counted():
    cal = WorkCalendar()
    # National Day 2026: Oct 1–7 off; Saturday Oct 10 is a working day (调休).
    assert cal.add_workdays(date(2026, 9, 30), 1).value == date(2026, 10, 8)
    assert cal.add_workdays(date(2026, 10, 9), 1).value == date(2026, 10, 10)
    assert cal.workdays_between(date(2026, 9, 30), date(2026, 10, 10)).value == 3
    assert cal.add_workdays(date(2026, 10, 3), 0).value == date(2026, 10, 8)


def test_a_span_of_a_century_costs_a_few_lookups_and_no_walk():
    cal = CountingCalendar()
    began = time.process_time()
    far = cal.add_workdays(date(2026, 11, 30), 26_000)
    count = cal.workdays_between(date(2000, 1, 1), date(2100, 12, 31))
    first = cal.lookups
    # Years past the library's tables lose their statutory holidays (the `holidays` estimate): 2130, not 2126.
    assert far.value.year == 2130 and 25_000 < count.value < 26_400
    # Once per year between the anchor and the day asked, then never again.
    assert first <= 3 * (2131 - 2000)
    cal.lookups = 0
    for _ in range(200):
        cal.workdays_between(date(2001, 3, 4), date(2099, 5, 6))
        cal.add_workdays(date(2050, 1, 1), 10_000)
    assert cal.lookups <= 200 * 2 * 4, cal.lookups
    assert time.process_time() - began < 5  # a walk day by day took seconds for one such call


def test_a_year_without_a_table_and_without_a_fallback_is_monday_to_friday_and_reported():
    cal = WorkCalendar(fallback=None)
    r = cal.add_workdays(date(2080, 12, 31), 1)
    assert r.value == date(2081, 1, 1) and r.assumed_years == frozenset({2081})
    c = cal.workdays_between(date(2080, 1, 1), date(2080, 12, 31))
    assert c.value == sum(1 for i in range(1, 366) if (date(2080, 1, 1) + timedelta(days=i)).weekday() < 5)
    assert c.assumed_years == frozenset({2080})
    assert library_table(2080) is None


def test_the_source_of_working_days_is_pluggable():
    class EveryMondayOff(WorkCalendar):
        def table(self, year: int) -> YearTable | None:
            mondays = frozenset(d for d in (date(year, 1, 1) + timedelta(days=i) for i in range(366))
                                if d.year == year and d.weekday() == 0)
            return YearTable(year, mondays, frozenset(), "test")

    cal = EveryMondayOff()
    assert cal.add_workdays(date(2090, 3, 3), 4).value == date(2090, 3, 10)  # Fri 3: Mon 6 off, Tue 7 … Fri 10
    rng = random.Random(5)
    for _ in range(300):
        a = date(2085, 1, 1) + timedelta(days=rng.randrange(0, 3000))
        n = rng.randrange(0, 300)
        assert cal.add_workdays(a, n) == walk_add(cal, a, n)


def test_a_year_without_a_table_counts_the_estimated_statutory_holidays_and_is_reported():
    cal = WorkCalendar()
    r = cal.add_workdays(date(2080, 12, 31), 1)
    assert r.value == date(2081, 1, 2) and r.assumed_years == frozenset({2081})  # New Year's Day is off
    rng = random.Random(7)
    for _ in range(300):
        a = date(2079, 1, 1) + timedelta(days=rng.randrange(0, 3000))
        n = rng.randrange(0, 300)
        assert cal.add_workdays(a, n) == walk_add(cal, a, n)
