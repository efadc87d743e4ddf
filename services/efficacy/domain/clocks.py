"""Deadline clocks (办理时限计时) as a function of the set of events seen.

A clock is never mutated event by event: every event about an application is kept, and the application's
clock and its tasks' clocks are rebuilt from all of them (`build_clocks`). Duplicates and arrival order
therefore cannot change the answer. Measuring a clock (`measure`) needs the calendar and an instant."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any

from services.efficacy.domain.calendar import CHINA, local_day
from shared.workdays import WorkCalendar

SUBMITTED = "yimen.intake.application.submitted"
ACCEPTED = "yimen.intake.application.accepted"
RETURNED = "yimen.intake.application.returned"
NOT_ACCEPTED = "yimen.intake.application.not_accepted"
WITHDRAWN = "yimen.intake.application.withdrawn"
CORRECTED = "yimen.intake.application.corrected"
TASK_ASSIGNED = "yimen.workflow.task.assigned"
TASK_DECIDED = "yimen.workflow.task.decided"
TASK_REOPENED = "yimen.workflow.task.reopened"
APPLICATION_DECIDED = "yimen.workflow.application.decided"

#: Every event type a clock is built from; the others change no clock.
EVENT_TYPES = frozenset({SUBMITTED, ACCEPTED, RETURNED, NOT_ACCEPTED, WITHDRAWN, CORRECTED, TASK_ASSIGNED, TASK_DECIDED,
                         TASK_REOPENED, APPLICATION_DECIDED})
STOPPING = {APPLICATION_DECIDED: "decided", RETURNED: "returned", NOT_ACCEPTED: "not_accepted",
            WITHDRAWN: "withdrawn"}
#: What ends the wait for acceptance (受理): accepting, returning for correction, refusing, withdrawing.
ACCEPTANCE_ENDS = {ACCEPTED: "accepted", RETURNED: "returned", NOT_ACCEPTED: "not_accepted", WITHDRAWN: "withdrawn"}
#: Working days an online submission may wait for acceptance when the item's acceptance step sets no limit.
ONLINE_ACCEPTANCE_DAYS = 1
ONLINE_CHANNELS = frozenset({"online", "mobile"})


def fingerprint(event_type: str, data: dict[str, Any]) -> str:
    """What makes two events the same fact whatever their ids: their type and payload."""
    return hashlib.sha256(json.dumps([event_type, data], sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Fact:
    """One event about an application, as stored."""

    event_id: str
    type: str
    at: datetime
    data: dict[str, Any]
    #: `fingerprint(type, data)` as kept with the fact, so that it is not computed again at every rebuild.
    fingerprint: str | None = field(default=None, compare=False)


@dataclass
class Pause:
    start: datetime
    end: datetime | None
    reason: str  # "correction" (补正) or "special_procedure"
    task_id: str | None = None


@dataclass
class ClockState:
    """What the events say about one clock, before any counting."""

    clock_id: str
    kind: str  # "application" | "task"
    application_id: str
    task_id: str | None = None
    department: str | None = None
    item_code: str | None = None
    step_key: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    case_kind: str = "promised"
    limit_value: int | None = None
    limit_unit: str = "working_days"
    statutory_value: int | None = None
    statutory_unit: str | None = None
    due_at: datetime | None = None
    pauses: list[Pause] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.stopped_at is not None:
            return "stopped"
        if self.started_at is None:
            return "not_started"
        if any(p.end is None for p in self.pauses):
            return "paused"
        return "running"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def to_body(self) -> dict[str, Any]:
        """`to_json` as kept, instants as ISO strings: built field by field, as it runs for every clock written
        (no deep copy, no JSON round trip)."""
        body: dict[str, Any] = {}
        for name in _SCALAR_FIELDS:
            v = getattr(self, name)
            body[name] = v.isoformat() if isinstance(v, datetime) else v
        body["pauses"] = [{"start": p.start.isoformat(), "end": p.end.isoformat() if p.end is not None else None,
                           "reason": p.reason, "task_id": p.task_id} for p in self.pauses]
        return body

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ClockState:
        raw = dict(raw)
        for k in ("started_at", "stopped_at", "due_at"):
            if isinstance(raw.get(k), str):
                raw[k] = datetime.fromisoformat(raw[k])
        pauses = []
        for p in raw.pop("pauses", []):
            pauses.append(Pause(
                start=datetime.fromisoformat(p["start"]) if isinstance(p["start"], str) else p["start"],
                end=(datetime.fromisoformat(p["end"]) if isinstance(p["end"], str) else p["end"]),
                reason=p["reason"], task_id=p.get("task_id"),
            ))
        return cls(**raw, pauses=pauses)


_SCALAR_FIELDS = tuple(f.name for f in fields(ClockState) if f.name != "pauses")


def unique_facts(facts: list[Fact]) -> list[Fact]:
    """One fact per event id and per payload: duplicates under a new id are the same fact."""
    seen: set[str] = set()
    out = []
    for f in facts:
        keys = {f.event_id, f.fingerprint or fingerprint(f.type, f.data)}
        if keys & seen:
            continue
        seen |= keys
        out.append(f)
    return out


def _when(fact: Fact, *keys: str) -> datetime:
    for k in keys:
        v = fact.data.get(k)
        if v:
            t = datetime.fromisoformat(v) if isinstance(v, str) else v
            return t if t.tzinfo else t.replace(tzinfo=CHINA)
    return fact.at


def _limit(raw: Any) -> tuple[int | None, str | None]:
    if isinstance(raw, dict) and raw.get("value") is not None:
        return int(raw["value"]), str(raw.get("unit") or "working_days")
    if isinstance(raw, int | float):
        return int(raw), "working_days"
    return None, None


def _pair(starts: list[datetime], ends: list[datetime]) -> list[tuple[datetime, datetime | None]]:
    """Pair each pause start with the first unused end at or after it (several correction rounds per task)."""
    out: list[tuple[datetime, datetime | None]] = []
    free = sorted(ends)
    for s in sorted(starts):
        end = next((e for e in free if e >= s), None)
        if end is not None:
            free.remove(end)
        out.append((s, end))
    return out


def acceptance_clock(application_id: str, facts: list[Fact], acceptance_days: int | None) -> ClockState | None:
    """The acceptance step's clock (受理时限): from the latest submission until it is accepted, returned, refused
    or withdrawn. Its limit is the item's acceptance step limit, else one working day for an online
    submission; a submission at a window with no limit set is accepted at the counter and gets no clock."""
    submissions = sorted((_when(f, "submitted_at"), f) for f in facts if f.type == SUBMITTED)
    if not submissions:
        return None
    started, last = submissions[-1]
    limit = acceptance_days or (ONLINE_ACCEPTANCE_DAYS if last.data.get("channel") in ONLINE_CHANNELS else None)
    if limit is None:
        return None
    ends = sorted((_when(f, "accepted_at", "returned_at", "at", "withdrawn_at"), ACCEPTANCE_ENDS[f.type])
                  for f in facts if f.type in ACCEPTANCE_ENDS)
    stop = next(((at, why) for at, why in ends if at >= started), None)
    return ClockState(
        clock_id=f"acceptance:{application_id}", kind="acceptance", application_id=application_id,
        department=last.data.get("department"), item_code=last.data.get("item_code"), step_key="acceptance",
        started_at=started, stopped_at=stop[0] if stop else None, stop_reason=stop[1] if stop else None,
        limit_value=limit, limit_unit="working_days",
    )


def build_clocks(
    application_id: str, facts: list[Fact], *, excluded_steps: frozenset[str] = frozenset(),
    acceptance_days: int | None = None,
) -> tuple[ClockState, dict[str, ClockState]]:
    """The application's clock and one clock per task (and the acceptance step's, keyed `acceptance`), from
    every fact seen about the application.

    `excluded_steps` are process steps the catalog marks `excluded_from_limit` (hearing, expert review,
    testing, public notice): while such a task runs, the application's clock is paused."""
    facts = sorted(unique_facts(facts), key=lambda f: (f.at, f.event_id))
    app = ClockState(clock_id=f"application:{application_id}", kind="application", application_id=application_id)
    tasks: dict[str, ClockState] = {}
    correction_starts: dict[str, list[datetime]] = {}
    correction_ends: dict[str, list[datetime]] = {}
    task_windows: dict[str, list[datetime | None]] = {}
    excluded_tasks: set[str] = set()

    def task(tid: str) -> ClockState:
        if tid not in tasks:
            tasks[tid] = ClockState(clock_id=f"task:{tid}", kind="task", application_id=application_id, task_id=tid)
        return tasks[tid]

    for f in facts:
        d = f.data
        if f.type == ACCEPTED:
            app.started_at = _when(f, "accepted_at")
            app.department = d.get("department") or app.department
            app.item_code = d.get("item_code") or app.item_code
            app.case_kind = d.get("case_kind") or "promised"
            app.limit_value, unit = _limit(d.get("promised_limit"))
            app.limit_unit = unit or ("hours" if app.case_kind == "immediate" else "working_days")
            app.statutory_value, app.statutory_unit = _limit(d.get("statutory_limit"))
        elif f.type in STOPPING:
            at = _when(f, "decided_at", "returned_at", "withdrawn_at", "at")
            # The earliest stop wins: a case decided is not un-decided by a late withdrawal.
            if app.stopped_at is None or at < app.stopped_at:
                app.stopped_at, app.stop_reason = at, STOPPING[f.type]
        elif f.type == TASK_ASSIGNED:
            t = task(d["task_id"])
            t.started_at = _when(f, "assigned_at")
            t.department, t.item_code, t.step_key = d.get("department"), d.get("item_code"), d.get("step_key")
            t.limit_value = int(d["limit_days"]) if d.get("limit_days") is not None else None
            t.limit_unit = "working_days"
            if d.get("due_at"):
                t.due_at = _when(f, "due_at")
            task_windows.setdefault(d["task_id"], [None, None])[0] = t.started_at
            if t.step_key in excluded_steps:
                excluded_tasks.add(d["task_id"])
        elif f.type == TASK_DECIDED:
            tid, at = d["task_id"], _when(f, "decided_at")
            t = task(tid)
            t.department = t.department or d.get("department")
            if d.get("outcome") == "request_correction":
                correction_starts.setdefault(tid, []).append(at)
            elif t.stopped_at is None or at < t.stopped_at:
                t.stopped_at, t.stop_reason = at, str(d.get("outcome") or "decided")
                task_windows.setdefault(tid, [None, None])[1] = at
        elif f.type in (TASK_REOPENED, CORRECTED):
            tid = d.get("task_id")
            if tid:
                correction_ends.setdefault(tid, []).append(_when(f, "reopened_at", "corrected_at"))

    app_pauses: list[tuple[datetime, datetime | None, str]] = []
    for tid, starts in correction_starts.items():
        # The task's reopening and the applicant's correction both say the pause is over; the earlier counts.
        ends = sorted(correction_ends.get(tid, []))
        for s, e in _pair(starts, _dedupe_resumes(ends)):
            task(tid).pauses.append(Pause(s, e, "correction", tid))
            app_pauses.append((s, e, "correction"))
    for tid in excluded_tasks:
        began, ended = task_windows[tid]
        if began is not None:
            app_pauses.append((began, ended, "special_procedure"))
    for s, e, reason in _merge(app_pauses):
        app.pauses.append(Pause(s, e, reason))
    for t in tasks.values():
        t.pauses.sort(key=lambda p: p.start)
        if app.stopped_at is not None and t.stopped_at is None and t.started_at is not None:
            t.stopped_at, t.stop_reason = app.stopped_at, app.stop_reason
    if (acceptance := acceptance_clock(application_id, facts, acceptance_days)) is not None:
        tasks["acceptance"] = acceptance
    return app, tasks


def _dedupe_resumes(ends: list[datetime]) -> list[datetime]:
    """`task.reopened` and `application.corrected` report the same resumption; keep one per close pair."""
    out: list[datetime] = []
    for e in sorted(ends):
        if out and e - out[-1] < timedelta(minutes=5):
            continue
        out.append(e)
    return out


def _merge(intervals: list[tuple[datetime, datetime | None, str]]) -> list[tuple[datetime, datetime | None, str]]:
    """Overlapping pauses (two departments asking for corrections at once) count once."""
    far = datetime.max.replace(tzinfo=CHINA)
    out: list[tuple[datetime, datetime | None, str]] = []
    for s, e, r in sorted(intervals, key=lambda i: i[0]):
        if out and s <= (out[-1][1] or far):
            ps, pe, pr = out[-1]
            end = None if pe is None or e is None else max(pe, e)
            out[-1] = (ps, end, pr)
        else:
            out.append((s, e, r))
    return out


@dataclass(frozen=True)
class ClockView:
    """A clock counted at an instant."""

    state: ClockState
    as_of: datetime
    elapsed_workdays: int | None
    paused_workdays: int
    remaining_workdays: int | None
    deadline_on: date | None
    deadline_at: datetime | None
    statutory_deadline_on: date | None
    overdue: bool
    statutory_overdue: bool
    remaining_hours: float | None
    assumed_years: frozenset[int]


def _paused_days(state: ClockState, cal: WorkCalendar, until: datetime, assumed: set[int]) -> tuple[int, int]:
    """Working days inside pauses up to `until`, and calendar days likewise. A pause counts the working days in
    (start, end]: the day a correction is requested is used, the day work resumes is given back."""
    wd = cd = 0
    for p in state.pauses:
        end = min(p.end or until, until)
        if end <= p.start:
            continue
        c = cal.workdays_between(local_day(p.start), local_day(end))
        assumed |= c.assumed_years
        wd += c.value
        cd += (local_day(end) - local_day(p.start)).days
    return wd, cd


def add_working_hours(cal: WorkCalendar, start: datetime, hours: float) -> datetime:
    """Immediate items (即办件) count hours, on working days only: non-working days are skipped whole.

    What is left after the first day is whole working days (found by the calendar in a few lookups, not a walk
    day by day) and a remainder on the next one."""
    t = start.astimezone(CHINA)
    left = timedelta(hours=hours)
    day = t.date()
    midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), CHINA)
    if cal.is_workday(day):
        if t + left <= midnight:
            return t + left
        left -= midnight - t
    next_day = day + timedelta(days=1)
    if left <= timedelta(0):
        return datetime.combine(cal.add_workdays(next_day, 0).value, datetime.min.time(), CHINA)
    whole, rest = divmod(left, timedelta(days=1))
    if rest:
        last = cal.add_workdays(next_day - timedelta(days=1), whole + 1).value
        return datetime.combine(last, datetime.min.time(), CHINA) + rest
    last = cal.add_workdays(next_day - timedelta(days=1), whole).value
    return datetime.combine(last + timedelta(days=1), datetime.min.time(), CHINA)


def measure(state: ClockState, cal: WorkCalendar, as_of: datetime) -> ClockView:
    assumed: set[int] = set()
    if state.started_at is None or state.limit_value is None:
        return ClockView(state, as_of, None, 0, None, None, None, None, False, False, None, frozenset())
    end = min(as_of, state.stopped_at) if state.stopped_at else as_of
    start_day, end_day = local_day(state.started_at), local_day(end)
    paused_wd, paused_cd = _paused_days(state, cal, end, assumed)
    used = cal.workdays_between(start_day, end_day)
    assumed |= used.assumed_years
    elapsed = max(used.value - paused_wd, 0)
    deadline_on = deadline_at = None
    remaining = None
    remaining_hours = None
    overdue = False
    if state.limit_unit == "hours":
        deadline_at = add_working_hours(cal, state.started_at, state.limit_value + 24 * paused_wd)
        remaining_hours = round((deadline_at - as_of).total_seconds() / 3600, 2)
        overdue = end > deadline_at
        deadline_on = local_day(deadline_at)
    else:
        if state.limit_unit == "calendar_days":
            deadline_on = start_day + timedelta(days=state.limit_value + paused_cd)
        else:
            r = cal.add_workdays(start_day, state.limit_value + paused_wd)
            assumed |= r.assumed_years
            deadline_on = r.value
        left = cal.workdays_between(local_day(as_of), deadline_on)
        assumed |= left.assumed_years
        remaining = left.value
        overdue = end_day > deadline_on
    statutory_on = None
    if state.statutory_value is not None:
        if state.statutory_unit == "calendar_days":
            statutory_on = start_day + timedelta(days=state.statutory_value + paused_cd)
        elif state.statutory_unit == "hours":
            statutory_on = local_day(add_working_hours(cal, state.started_at, state.statutory_value + 24 * paused_wd))
        else:
            r = cal.add_workdays(start_day, state.statutory_value + paused_wd)
            assumed |= r.assumed_years
            statutory_on = r.value
    statutory_overdue = statutory_on is not None and end_day > statutory_on
    return ClockView(state, as_of, elapsed, paused_wd, remaining, deadline_on, deadline_at, statutory_on,
                     overdue, statutory_overdue, remaining_hours, frozenset(assumed))


@dataclass(frozen=True)
class CardPolicy:
    yellow_days: int = 2
    yellow_fraction: float = 0.2


#: Calendar days the evaluator starts watching a clock before its yellow threshold day. A year's load that
#: adds make-up working days, or a larger configured threshold, can move the day earlier by a few days.
WATCH_MARGIN_DAYS = 14


def watch_day(state: ClockState, cal: WorkCalendar, policy: CardPolicy) -> date | None:
    """From which day a running clock needs evaluating (None: always, e.g. immediate items counted in hours)."""
    if state.state != "running" or state.started_at is None or state.limit_value is None:
        return None
    if state.limit_unit != "working_days":
        return None
    last = max([p.end for p in state.pauses if p.end is not None] + [state.started_at])
    paused = measure(state, cal, last).paused_workdays
    threshold = max(policy.yellow_days, math.ceil(state.limit_value * policy.yellow_fraction))
    day = cal.add_workdays(local_day(state.started_at), max(state.limit_value + paused - threshold, 0)).value
    return day - timedelta(days=WATCH_MARGIN_DAYS)


def next_watch_day(view: ClockView, cal: WorkCalendar, policy: CardPolicy, today: date) -> date | None:
    """After an evaluation on `today` has raised every card then due: the next day one can fall due (its yellow
    threshold day, the day after its promised deadline, the day after its statutory one), so that the evaluator
    reads the clock again only then and its cost stays flat in open cases. `SETTLED` when every crossing is behind
    it, or when it can carry no card (not started, no limit: `decide_card`), since its next event rebuilds it and
    counts again. A clock counted in hours is read on the days its crossings fall (today again while one is
    still ahead today), not on every round: each such clock read at every round kept the round's cost growing
    with the open immediate cases."""
    state = view.state
    if state.started_at is None or state.limit_value is None or view.deadline_on is None:
        return SETTLED
    if state.limit_unit == "hours":
        assert view.deadline_at is not None
        days = [local_day(view.deadline_at - timedelta(hours=state.limit_value * policy.yellow_fraction)),
                view.deadline_on]
        if view.statutory_deadline_on is not None:
            days.append(view.statutory_deadline_on + timedelta(days=1))
        return min((d for d in days if d >= today), default=SETTLED)
    first = watch_day(state, cal, policy)
    if first is None:  # counted in calendar days: watched always
        return None
    crossings = [first + timedelta(days=WATCH_MARGIN_DAYS), view.deadline_on + timedelta(days=1)]
    if view.statutory_deadline_on is not None:
        crossings.append(view.statutory_deadline_on + timedelta(days=1))
    return min((c for c in crossings if c > today), default=SETTLED)


#: The watch day of a clock whose every card crossing is behind it: nothing is due on it until it changes.
SETTLED = date(9999, 12, 31)


def watched_now(watch: date | None, today: date) -> bool:
    """Whether the card round reads a running clock with this watch day again on `today` (`due_clocks_after`):
    no watch day (counted in calendar days), or one that has come."""
    return watch is None or watch <= today


def round_pause(now: datetime, *, again: bool, interval: float, idle: float) -> float:
    """Seconds from `now` to the card round after one that raised every card due: `interval` while a clock it
    read is still watched today (a crossing later today, a clock counted in calendar days, a clock a case consumer
    held); otherwise nothing can fall due before the next local midnight (watch days and follow-up deadlines are
    days), so the round sleeps until just after it, at most `idle` (a safety net for another replica's writes
    whose own round did not run). A case consumer that writes a clock watched today wakes it sooner."""
    if again:
        return interval
    midnight = datetime.combine(local_day(now) + timedelta(days=1), datetime.min.time(), CHINA)
    return max(interval, min(idle, (midnight - now).total_seconds() + 1.0))


@dataclass(frozen=True)
class CardDecision:
    colour: str  # "yellow" | "red"
    reason: str
    deadline_key: str  # the deadline whose crossing this card marks (one card per crossing)
    deadline_at: datetime


def _end_of(day: date) -> datetime:
    return datetime.combine(day, datetime.max.time().replace(microsecond=0), CHINA)


def decide_card(view: ClockView, policy: CardPolicy) -> CardDecision | None:
    """红黄牌: red when overdue (a second red when the statutory limit is passed too), yellow when the
    remaining time falls to `yellow_days` working days or `yellow_fraction` of the limit, whichever comes first
    (the larger remainder). Only running clocks get cards: a paused clock is waiting on the applicant."""
    st = view.state
    if st.state != "running" or view.deadline_on is None or st.limit_value is None:
        return None
    if view.statutory_overdue and view.statutory_deadline_on is not None:
        return CardDecision("red", "statutory_limit_exceeded", f"statutory:{view.statutory_deadline_on}",
                            _end_of(view.statutory_deadline_on))
    if st.limit_unit == "hours":
        assert view.deadline_at is not None and view.remaining_hours is not None
        if view.overdue:
            return CardDecision("red", "promised_limit_exceeded", f"promised:{view.deadline_at.isoformat()}",
                                view.deadline_at)
        if view.remaining_hours <= st.limit_value * policy.yellow_fraction:
            return CardDecision("yellow", "near_deadline", f"promised:{view.deadline_at.isoformat()}",
                                view.deadline_at)
        return None
    acceptance = st.kind == "acceptance"
    if view.overdue:
        return CardDecision("red", "acceptance_limit_exceeded" if acceptance else "promised_limit_exceeded",
                            f"promised:{view.deadline_on}", _end_of(view.deadline_on))
    # Acceptance waits a day or so: yellow on its last day, not from the start.
    threshold = 0 if acceptance else max(policy.yellow_days, math.ceil(st.limit_value * policy.yellow_fraction))
    if view.remaining_workdays is not None and view.remaining_workdays <= threshold:
        return CardDecision("yellow", "acceptance_near_deadline" if acceptance else "near_deadline",
                            f"promised:{view.deadline_on}", _end_of(view.deadline_on))
    return None
