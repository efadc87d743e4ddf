"""The league table (排行榜) of departments: who is red today."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Forecast reasons that mean a clock is past a deadline (not merely near it).
OVERDUE_REASONS = frozenset({"promised_limit_exceeded", "statutory_limit_exceeded"})


@dataclass
class LeagueRow:
    department: str
    name: str
    open_red_cards: int = 0
    open_yellow_cards: int = 0
    overdue_tasks: int = 0
    running_tasks: int = 0
    running_applications: int = 0
    paused_applications: int = 0
    open_supervision: dict[str, int] = field(default_factory=dict)

    @property
    def open_supervision_total(self) -> int:
        return sum(self.open_supervision.values())

    @property
    def level(self) -> str:
        """`red`, `yellow` or `green`: the colour the row is drawn in."""
        if self.open_red_cards or self.overdue_tasks:
            return "red"
        return "yellow" if self.open_yellow_cards else "green"


def league(dashboard: Mapping[str, Any], forecast: Iterable[Mapping[str, Any]],
           names: Mapping[str, str]) -> list[LeagueRow]:
    """One row per department from efficacy's dashboard (open cards, clocks, queue) and today's card forecast
    (tasks past their deadline), worst first: open red cards, then overdue tasks, then yellow cards."""
    rows: dict[str, LeagueRow] = {}

    def row(dept: str | None) -> LeagueRow:
        code = dept or "—"
        return rows.setdefault(code, LeagueRow(code, names.get(code, code)))

    for p in dashboard.get("departments", []):
        r = row(p.get("department"))
        r.open_red_cards += int(p.get("open_red_cards") or 0)
        r.open_yellow_cards += int(p.get("open_yellow_cards") or 0)
        r.running_tasks += int(p.get("running_tasks") or 0)
        r.running_applications += int(p.get("running_applications") or 0)
        r.paused_applications += int(p.get("paused_applications") or 0)
        for kind, n in (p.get("open_supervision") or {}).items():
            r.open_supervision[kind] = r.open_supervision.get(kind, 0) + int(n)
    for f in forecast:
        if f.get("task_id") and f.get("reason") in OVERDUE_REASONS:
            row(f.get("department")).overdue_tasks += 1
    return sorted(rows.values(), key=lambda r: (-r.open_red_cards, -r.overdue_tasks, -r.open_yellow_cards,
                                                -r.open_supervision_total, r.department))


LEAGUE_COLUMNS = ("department", "name", "open_red_cards", "overdue_tasks", "open_yellow_cards",
                  "open_supervision", "running_tasks", "running_applications", "paused_applications")


def league_csv_rows(rows: Iterable[LeagueRow]) -> list[list[Any]]:
    return [[r.department, r.name, r.open_red_cards, r.overdue_tasks, r.open_yellow_cards, r.open_supervision_total,
             r.running_tasks, r.running_applications, r.paused_applications] for r in rows]
