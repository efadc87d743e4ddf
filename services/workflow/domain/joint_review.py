"""Joint drawing review (联合审图) and joint acceptance (联合验收): one review the lead department schedules and
several departments take part in, in rounds.

Round 1 covers everything and any of the step's departments the lead invites. Each participant gives one opinion:
`pass`, `pass_with_conditions` (with its conditions) or `fail` (with the failed points, each with its reason). Once
every participant has spoken the lead consolidates one result. Failed points go back to the owner as one notice
(补正, 一次性告知); after the correction a re-inspection round (复验) covers only the failed points and only the
departments that failed them. Pure rules: the use cases (`services.workflow.service.joint_reviews`) store and
announce what these functions decide."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from services.workflow.domain.process import RuleBreak


class ReviewKind(StrEnum):
    DRAWING_REVIEW = "drawing_review"
    ACCEPTANCE = "acceptance"


class Verdict(StrEnum):
    PASS = "pass"
    PASS_WITH_CONDITIONS = "pass_with_conditions"
    FAIL = "fail"


class Result(StrEnum):
    PASSED = "passed"
    PASSED_WITH_CONDITIONS = "passed_with_conditions"
    #: Failed points go back to the owner (补正); a re-inspection follows the correction.
    CORRECTION_REQUIRED = "correction_required"
    #: The lead refuses outright (with reasons and legal basis): the case is rejected.
    REJECTED = "rejected"


class ReviewState(StrEnum):
    AWAITING_SCHEDULE = "awaiting_schedule"
    SCHEDULED = "scheduled"
    AWAITING_CORRECTION = "awaiting_correction"
    PASSED = "passed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class ScheduleMode(StrEnum):
    MEETING = "meeting"
    ON_SITE = "on_site"


@dataclass(frozen=True)
class Point:
    """One point a department checks (审查/验收要点) that failed, and why."""

    department: str
    point: str
    reason: str


@dataclass(frozen=True)
class Opinion:
    department: str
    verdict: Verdict
    conditions: tuple[str, ...] = ()
    failed: tuple[Point, ...] = ()


@dataclass
class Round:
    """One round: the first covers everything (`points` empty); a re-inspection covers `points` only."""

    number: int
    eligible: tuple[str, ...]
    points: tuple[Point, ...] = ()
    participants: tuple[str, ...] = ()
    opinions: dict[str, Opinion] = field(default_factory=dict)
    result: Result | None = None

    @property
    def reinspection(self) -> bool:
        return self.number > 1

    @property
    def pending(self) -> list[str]:
        return [d for d in self.participants if d not in self.opinions]


class ReviewError(Exception):
    """A rule broken, with the HTTP-free kind of refusal the use case maps to a problem."""

    def __init__(self, kind: str, message: str, breaks: Sequence[RuleBreak] = ()) -> None:
        super().__init__(message)
        self.kind = kind  # "conflict" | "forbidden" | "invalid"
        self.message = message
        self.breaks = list(breaks)


def first_round(departments: Iterable[str]) -> Round:
    return Round(number=1, eligible=tuple(dict.fromkeys(departments)))


def check_schedule(
    state: ReviewState, current: Round, *, participants: Sequence[str], on: date, today: date, place: str
) -> tuple[str, ...]:
    """The lead schedules (or reschedules, before anyone has given an opinion). The first round's participants
    are any of the step's departments (all by default); a re-inspection's are exactly the departments whose
    points failed. Returns the participants."""
    if state not in (ReviewState.AWAITING_SCHEDULE, ReviewState.SCHEDULED):
        raise ReviewError("conflict", f"The joint review is {state}; it cannot be scheduled now.")
    if current.opinions:
        raise ReviewError("conflict", "Opinions have been given in this round; it cannot be rescheduled.")
    chosen = tuple(dict.fromkeys(participants)) or current.eligible
    breaks: list[RuleBreak] = []
    outside = [d for d in chosen if d not in current.eligible]
    if outside:
        breaks.append(RuleBreak("participants", "participant_eligible",
                                f"{', '.join(outside)} cannot take part in this round (eligible: "
                                f"{', '.join(current.eligible)})."))
    if current.reinspection and set(chosen) != set(current.eligible):
        breaks.append(RuleBreak("participants", "reinspection_failed_departments_only",
                                "A re-inspection covers the departments whose points failed, all of them and only "
                                f"them: {', '.join(current.eligible)}."))
    if on < today:
        breaks.append(RuleBreak("date", "not_in_past", f"The date {on.isoformat()} is in the past."))
    if not place.strip():
        breaks.append(RuleBreak("place", "required", "Say where the review (or the on-site inspection) takes place."))
    if breaks:
        raise ReviewError("invalid", "The schedule breaks a rule.", breaks)
    return chosen


def check_opinion(state: ReviewState, current: Round, opinion: Opinion) -> Opinion:
    """One opinion per participant and round. `fail` names every failed point with its reason; a re-inspection
    only judges the points under re-inspection of that department (a point not named again has passed)."""
    if state is not ReviewState.SCHEDULED:
        raise ReviewError("conflict", f"The joint review is {state}; opinions are taken once it is scheduled.")
    if opinion.department not in current.participants:
        raise ReviewError("forbidden", f"{opinion.department} does not take part in round {current.number}.")
    if opinion.department in current.opinions:
        raise ReviewError("conflict", f"{opinion.department} has already given its opinion in round {current.number}.")
    breaks: list[RuleBreak] = []
    if opinion.verdict is Verdict.FAIL and not opinion.failed:
        breaks.append(RuleBreak("failed_points", "required_for_fail", "A fail names the failed points."))
    if opinion.verdict is not Verdict.FAIL and opinion.failed:
        breaks.append(RuleBreak("failed_points", "only_for_fail", "Failed points belong to a fail."))
    if opinion.verdict is Verdict.PASS_WITH_CONDITIONS and not [c for c in opinion.conditions if c.strip()]:
        breaks.append(RuleBreak("conditions", "required_for_conditions", "A pass with conditions lists them."))
    for i, p in enumerate(opinion.failed):
        if not p.point.strip():
            breaks.append(RuleBreak(f"failed_points.{i}.point", "required", "Name the point."))
        if not p.reason.strip():
            breaks.append(RuleBreak(f"failed_points.{i}.reason", "required", "Give the reason the point failed."))
    if current.reinspection:
        under = {p.point for p in current.points if p.department == opinion.department}
        for i, p in enumerate(opinion.failed):
            if p.point not in under:
                breaks.append(RuleBreak(f"failed_points.{i}.point", "point_under_reinspection",
                                        f"A re-inspection judges only the failed points: {'; '.join(sorted(under))}."))
    if breaks:
        raise ReviewError("invalid", "The opinion breaks a rule.", breaks)
    return opinion


def consolidate(state: ReviewState, current: Round, *, reject: bool, legal_basis: str | None,
                reasons: Sequence[str]) -> Result:
    """The lead's one result, once every participant has spoken: any failed point → back to the owner for
    correction (or, if the lead so decides with reasons and legal basis, rejected); otherwise passed, with
    conditions if any participant set some."""
    if state is not ReviewState.SCHEDULED:
        raise ReviewError("conflict", f"The joint review is {state}; there is nothing to consolidate.")
    if current.pending:
        raise ReviewError("conflict", f"Still waiting for the opinions of {', '.join(current.pending)}.")
    failed = failed_points(current)
    if reject:
        breaks = []
        if not failed:
            breaks.append(RuleBreak("reject", "reject_needs_failed_points", "Nothing failed: there is nothing to reject."))
        if not [r for r in reasons if r.strip()]:
            breaks.append(RuleBreak("reasons", "required_for_reject", "A rejection must state its reasons."))
        if not (legal_basis or "").strip():
            breaks.append(RuleBreak("legal_basis", "required_for_reject", "A rejection must cite its legal basis."))
        if breaks:
            raise ReviewError("invalid", "The consolidation breaks a rule.", breaks)
        return Result.REJECTED
    if failed:
        return Result.CORRECTION_REQUIRED
    if conditions_of(current.opinions.values()):
        return Result.PASSED_WITH_CONDITIONS
    return Result.PASSED


def failed_points(current: Round) -> list[Point]:
    return [p for o in current.opinions.values() for p in o.failed]


def conditions_of(opinions: Iterable[Opinion]) -> list[str]:
    return [f"{o.department}：{c.strip()}" for o in opinions for c in o.conditions if c.strip()]


def state_after(result: Result) -> ReviewState:
    return {Result.PASSED: ReviewState.PASSED, Result.PASSED_WITH_CONDITIONS: ReviewState.PASSED,
            Result.CORRECTION_REQUIRED: ReviewState.AWAITING_CORRECTION, Result.REJECTED: ReviewState.REJECTED}[result]


def reinspection(previous: Round) -> Round:
    """After the owner's correction: the next round covers only the failed points, and only their departments."""
    if previous.result is not Result.CORRECTION_REQUIRED:
        raise ReviewError("conflict", f"Round {previous.number} asked for no correction; there is nothing to re-inspect.")
    points = tuple(failed_points(previous))
    departments = tuple(dict.fromkeys(p.department for p in points))
    return Round(number=previous.number + 1, eligible=departments, points=points)


def notice(points: Sequence[Point], names: dict[str, str] | None = None) -> list[str]:
    """The one notice to the owner: every failed point, with its department and reason."""
    names = names or {}
    return [f"{names.get(p.department, p.department)}：{p.point}——{p.reason}" for p in points]
