"""The project clock (项目审批计时), as the construction-approval reform counts it: working days from the
project's first acceptance to its completion, with the time outside the government's hands (the owner's
corrections 补正, intermediaries' and special procedures' work 中介服务/特别程序) recorded separately and not
counted; cards at project level (yellow near the total limit, red over it); KPIs per stage and per department.

Pure: the caller gives the stages, each application's windows and pauses (from the application clocks), the
calendar and an instant. Days count as the application clocks do: working days in (start, end]."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.efficacy.domain.calendar import local_day
from shared.workdays import WorkCalendar

#: Why the government is not holding the project: the owner corrects, or an intermediary works.
OWNER_CORRECTION = "owner_correction"
INTERMEDIARY = "intermediary"
#: The application clocks' pause reasons → the reform's two kinds of time outside the government's hands.
PAUSE_REASONS = {"correction": OWNER_CORRECTION, "special_procedure": INTERMEDIARY}


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime | None
    reason: str


@dataclass(frozen=True)
class ApplicationRun:
    """One item of a stage (one department's application), with its own limit within the stage."""

    application_id: str
    item_code: str
    department: str
    limit_days: int
    accepted_at: datetime | None = None
    decided_at: datetime | None = None
    outside: tuple[Interval, ...] = ()


@dataclass(frozen=True)
class StageRun:
    stage_key: str
    stage_name: str
    total_limit_days: int
    accepted_at: datetime
    completed_at: datetime | None = None
    applications: tuple[ApplicationRun, ...] = ()


@dataclass(frozen=True)
class CardPolicy:
    yellow_days: int = 2
    yellow_fraction: float = 0.2


@dataclass(frozen=True)
class DepartmentKpi:
    application_id: str
    item_code: str
    department: str
    limit_days: int
    used_days: int
    outside_days: int
    state: str  # running | decided
    over_limit: bool


@dataclass(frozen=True)
class StageKpi:
    stage_key: str
    stage_name: str
    limit_days: int
    used_days: int
    outside_days: int
    state: str  # running | completed
    over_limit: bool
    accepted_at: datetime
    completed_at: datetime | None
    departments: list[DepartmentKpi] = field(default_factory=list)


@dataclass(frozen=True)
class ProjectClock:
    state: str  # not_started | running | completed
    started_at: datetime | None
    completed_at: datetime | None
    elapsed_days: int
    government_days: int
    outside_days: int
    outside_by_reason: dict[str, int]
    total_limit_days: int
    remaining_days: int
    card: str | None  # yellow | red
    card_reason: str | None
    stages: list[StageKpi]
    assumed_years: frozenset[int]


def merge(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for s, e in sorted(intervals):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _clip(outside: Iterable[Interval], start: datetime, end: datetime, reason: str | None = None
          ) -> list[tuple[datetime, datetime]]:
    return [(max(i.start, start), min(i.end or end, end)) for i in outside
            if reason is None or i.reason == reason]


class _Counter:
    def __init__(self, cal: WorkCalendar) -> None:
        self.cal = cal
        self.assumed: set[int] = set()

    def days(self, start: datetime, end: datetime) -> int:
        if end <= start:
            return 0
        c = self.cal.workdays_between(local_day(start), local_day(end))
        self.assumed |= c.assumed_years
        return max(c.value, 0)

    def union_days(self, intervals: Iterable[tuple[datetime, datetime]]) -> int:
        return sum(self.days(s, e) for s, e in merge(intervals))


def _department(app: ApplicationRun, stage: StageRun, stage_end: datetime, count: _Counter) -> DepartmentKpi:
    start = app.accepted_at or stage.accepted_at
    end = min(app.decided_at, stage_end) if app.decided_at else stage_end
    outside = count.union_days(_clip(app.outside, start, end))
    used = max(count.days(start, end) - outside, 0)
    return DepartmentKpi(app.application_id, app.item_code, app.department, app.limit_days, used, outside,
                         "decided" if app.decided_at else "running", used > app.limit_days)


def project_clock(stages: Sequence[StageRun], *, completed_at: datetime | None, cal: WorkCalendar, as_of: datetime,
                  policy: CardPolicy = CardPolicy()) -> ProjectClock:
    """Count the project at `as_of`. The government's days are the working days from the first acceptance to
    completion (or now) less the working days in which every item of the project waited on the owner or an
    intermediary — the union of all pauses, so one correction paused in two departments counts once."""
    count = _Counter(cal)
    if not stages:
        return ProjectClock("not_started", None, completed_at, 0, 0, 0, {OWNER_CORRECTION: 0, INTERMEDIARY: 0}, 0, 0,
                            None, None, [], frozenset())
    started = min(s.accepted_at for s in stages)
    end = min(completed_at, as_of) if completed_at else as_of
    every = [i for s in stages for a in s.applications for i in a.outside]
    elapsed = count.days(started, end)
    outside = count.union_days(_clip(every, started, end))
    by_reason = {r: count.union_days(_clip(every, started, end, r)) for r in (OWNER_CORRECTION, INTERMEDIARY)}
    government = max(elapsed - outside, 0)
    total = sum(s.total_limit_days for s in stages)
    kpis: list[StageKpi] = []
    for s in sorted(stages, key=lambda x: x.accepted_at):
        s_end = min(s.completed_at, end) if s.completed_at else end
        s_outside = count.union_days(_clip([i for a in s.applications for i in a.outside], s.accepted_at, s_end))
        s_used = max(count.days(s.accepted_at, s_end) - s_outside, 0)
        kpis.append(StageKpi(s.stage_key, s.stage_name, s.total_limit_days, s_used, s_outside,
                             "completed" if s.completed_at else "running", s_used > s.total_limit_days,
                             s.accepted_at, s.completed_at,
                             [_department(a, s, s_end, count) for a in s.applications]))
    remaining = total - government
    card = reason = None
    if government > total:
        card, reason = "red", "project_limit_exceeded"
    elif completed_at is None and remaining <= max(policy.yellow_days, math.ceil(total * policy.yellow_fraction)):
        card, reason = "yellow", "project_near_limit"
    return ProjectClock("completed" if completed_at else "running", started, completed_at, elapsed, government,
                        outside, by_reason, total, remaining, card, reason, kpis, frozenset(count.assumed))
