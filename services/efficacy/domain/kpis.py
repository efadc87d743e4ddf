"""The reform's figures (三率一数 and the rest), from one row of facts per application.

`apply` folds one event into an application's facts; the consumers call it as events arrive (incremental)
and `fold` runs it over every stored event (recompute from scratch): both must give the same rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from services.efficacy.domain.calendar import local_day
from services.efficacy.domain.clocks import ClockView, Fact, unique_facts

ONLINE_CHANNELS = frozenset({"online", "mobile"})

SUBMITTED = "yimen.intake.application.submitted"
ACCEPTED = "yimen.intake.application.accepted"
DELIVERED = "yimen.intake.application.delivered"
VISIT = "yimen.intake.visit.recorded"
TASK_DECIDED = "yimen.workflow.task.decided"
DECIDED = "yimen.workflow.application.decided"
#: Every event type the KPI facts are folded from.
EVENT_TYPES = frozenset({SUBMITTED, ACCEPTED, DELIVERED, VISIT, TASK_DECIDED, DECIDED})


@dataclass
class ApplicationFacts:
    application_id: str
    department: str | None = None
    item_code: str | None = None
    service_point: str | None = None
    channel: str | None = None
    submitted_at: str | None = None
    accepted_at: str | None = None
    delivered_at: str | None = None
    delivered_electronically: bool = False
    visits: int = 0
    corrections: int = 0
    decided_at: str | None = None
    outcome: str | None = None
    promised_days: int | None = None
    used_workdays: int | None = None
    on_time: bool | None = None

    @property
    def online(self) -> bool:
        return self.channel in ONLINE_CHANNELS

    @property
    def anchor_on(self) -> date | None:
        """The day an application counts in a period: submitted, else accepted."""
        t = self.submitted_at or self.accepted_at
        return local_day(datetime.fromisoformat(t)) if t else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _iso(v: Any) -> str | None:
    return v.isoformat() if isinstance(v, datetime) else (str(v) if v else None)


def apply(f: ApplicationFacts, fact: Fact) -> None:
    d = fact.data
    if fact.type in (SUBMITTED, ACCEPTED):
        f.department = d.get("department") or f.department
        f.item_code = d.get("item_code") or f.item_code
        f.service_point = d.get("service_point") or f.service_point
        f.channel = d.get("channel") or f.channel
        if fact.type == SUBMITTED:
            f.submitted_at = _iso(d.get("submitted_at")) or _iso(fact.at)
        else:
            f.accepted_at = _iso(d.get("accepted_at")) or _iso(fact.at)
            lim = d.get("promised_limit")
            if isinstance(lim, dict) and lim.get("unit", "working_days") == "working_days":
                f.promised_days = lim.get("value")
    elif fact.type == DELIVERED:
        f.delivered_at = _iso(d.get("delivered_at")) or _iso(fact.at)
        f.delivered_electronically = d.get("method") == "electronic"
    elif fact.type == VISIT:
        f.visits += 1
    elif fact.type == TASK_DECIDED and d.get("outcome") == "request_correction":
        f.corrections += 1
    elif fact.type == DECIDED:
        f.decided_at = _iso(d.get("decided_at")) or _iso(fact.at)
        f.outcome = d.get("outcome")


def settle(f: ApplicationFacts, view: ClockView | None) -> None:
    """Working days used and on-time, once the application's clock has stopped at a decision."""
    if view is None or view.state.stop_reason != "decided" or view.elapsed_workdays is None:
        f.used_workdays, f.on_time = None, None
        return
    f.used_workdays = view.elapsed_workdays
    f.on_time = not view.overdue


def fold(application_id: str, facts: list[Fact]) -> ApplicationFacts:
    f = ApplicationFacts(application_id)
    for fact in unique_facts(facts):
        apply(f, fact)
    return f


@dataclass(frozen=True)
class Figure:
    key: str
    name: str
    value: float | None
    numerator: float
    denominator: float
    target: float | None
    meets_target: bool | None
    definition: str


def _ratio(n: float, d: float) -> float | None:
    return round(n / d, 4) if d else None


DEFINITIONS = {
    "fully_online_item_rate": ("网上全流程办理率", "published items that can be handled fully online / all published items "
                               "(current catalogue, filtered by department and item)"),
    "online_application_rate": ("上网办理率", "applications submitted online or on mobile / all applications"),
    "online_completion_rate": ("网上办结率", "applications submitted online and delivered electronically / "
                               "all applications"),
    "at_most_one_visit_rate": ("最多跑一次", "online applications with at most one on-site visit recorded / "
                               "online applications"),
    "zero_visit_rate": ("零跑动", "online applications with no on-site visit recorded / online applications"),
    "on_time_rate": ("按时办结率", "applications decided within the promised limit (working days, pauses for "
                     "corrections and special procedures excluded) / applications decided"),
    "average_workdays_used": ("平均办理用时", "mean working days from acceptance to decision, pauses excluded "
                              "(denominator: decided applications); compare with average_promised_workdays"),
    "average_promised_workdays": ("平均承诺时限", "mean promised limit in working days of the decided applications"),
    "corrections_per_application": ("补正率", "correction requests (补正) / applications"),
    "rating_score": ("好差评得分", "mean rating on the five levels, 5 = 非常满意 … 1 = 非常不满意"),
}


@dataclass
class Totals:
    """The sums every figure is a ratio of; computed in SQL over the kept rows, or in Python over recomputed ones."""

    applications: int = 0
    online: int = 0
    completed_online: int = 0
    online_at_most_one_visit: int = 0
    online_zero_visits: int = 0
    decided: int = 0
    on_time: int = 0
    used_workdays: int = 0
    promised_workdays: int = 0
    corrections: int = 0
    items: int = 0
    items_fully_online: int = 0
    ratings: int = 0
    rating_points: int = 0


def totals_of(rows: list[ApplicationFacts], items_fully_online: list[bool], rating_scores: list[int]) -> Totals:
    online = [r for r in rows if r.online]
    decided = [r for r in rows if r.on_time is not None]
    return Totals(
        applications=len(rows), online=len(online),
        completed_online=sum(1 for r in online if r.delivered_electronically),
        online_at_most_one_visit=sum(1 for r in online if r.visits <= 1),
        online_zero_visits=sum(1 for r in online if r.visits == 0),
        decided=len(decided), on_time=sum(1 for r in decided if r.on_time),
        used_workdays=sum(r.used_workdays or 0 for r in decided),
        promised_workdays=sum(r.promised_days or 0 for r in decided),
        corrections=sum(r.corrections for r in rows),
        items=len(items_fully_online), items_fully_online=sum(items_fully_online),
        ratings=len(rating_scores), rating_points=sum(rating_scores),
    )


def figures(t: Totals, targets: dict[str, float]) -> list[Figure]:
    """Every figure beside its target."""
    values: dict[str, tuple[float, float]] = {
        "fully_online_item_rate": (t.items_fully_online, t.items),
        "online_application_rate": (t.online, t.applications),
        "online_completion_rate": (t.completed_online, t.applications),
        "at_most_one_visit_rate": (t.online_at_most_one_visit, t.online),
        "zero_visit_rate": (t.online_zero_visits, t.online),
        "on_time_rate": (t.on_time, t.decided),
        "average_workdays_used": (t.used_workdays, t.decided),
        "average_promised_workdays": (t.promised_workdays, t.decided),
        "corrections_per_application": (t.corrections, t.applications),
        "rating_score": (t.rating_points, t.ratings),
    }
    out = []
    for key, (num, den) in values.items():
        name, definition = DEFINITIONS[key]
        value = _ratio(num, den)
        target = targets.get(key)
        meets = None if value is None or target is None else value >= target
        out.append(Figure(key, name, value, num, den, target, meets, definition))
    return out
