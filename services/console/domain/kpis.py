"""The reform's five figures (网上全流程办理率, 上网办理率, 网上办结率, 最多跑一次, 零跑动) over periods, beside the
plan's targets, from efficacy's KPI reports (one report per period)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.console.domain.periods import Period

REFORM_FIGURES = ("fully_online_item_rate", "online_application_rate", "online_completion_rate",
                  "at_most_one_visit_rate", "zero_visit_rate")


@dataclass
class Series:
    key: str
    name: str
    target: float | None
    definition: str
    labels: list[str]
    values: list[float | None]

    @property
    def latest(self) -> float | None:
        return next((v for v in reversed(self.values) if v is not None), None)

    @property
    def meets_target(self) -> bool | None:
        v = self.latest
        return None if v is None or self.target is None else v >= self.target


def series(periods: Sequence[Period], reports: Sequence[Mapping[str, Any]]) -> list[Series]:
    """One series per reform figure, a value per period (None where the period counted nothing)."""
    if len(periods) != len(reports):
        raise ValueError("one report per period")
    out: list[Series] = []
    for key in REFORM_FIGURES:
        values: list[float | None] = []
        name, target, definition = key, None, ""
        for report in reports:
            fig = next((f for f in report.get("figures", []) if f.get("key") == key), None)
            if fig is None:
                values.append(None)
                continue
            name, target, definition = fig.get("name", key), fig.get("target"), fig.get("definition", "")
            values.append(fig.get("value"))
        out.append(Series(key, name, target, definition, [p.label for p in periods], values))
    return out


def series_csv_rows(all_series: Sequence[Series], periods: Sequence[Period]) -> list[list[Any]]:
    return [[s.key, s.name, p.start.isoformat(), p.end.isoformat(), v, s.target]
            for s in all_series for p, v in zip(periods, s.values, strict=True)]
