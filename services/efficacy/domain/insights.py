"""Where people get stuck (tasks 4–6 and 14 of the plan: the evidence for the next round of simplification):
the materials most often sent back for correction (补正), before acceptance by the window or during review by a
department, and the steps that use most of their time limit. Counts per item only: no applicant, no person."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RETURNED = "yimen.intake.application.returned"
TASK_DECIDED = "yimen.workflow.task.decided"


@dataclass
class StepUse:
    step_key: str
    department: str | None
    tasks: int = 0
    over_limit: int = 0
    shares: list[float] = field(default_factory=list)

    @property
    def average_share(self) -> float:
        return round(sum(self.shares) / len(self.shares), 4) if self.shares else 0.0

    @property
    def max_share(self) -> float:
        return round(max(self.shares), 4) if self.shares else 0.0


def corrected_materials(event_type: str, data: Mapping[str, Any]) -> list[str]:
    """The materials (or form fields) a return before acceptance or a department's correction request named."""
    if event_type == RETURNED:
        names = [str(m.get("field") or "") for m in data.get("missing") or [] if isinstance(m, Mapping)]
    elif event_type == TASK_DECIDED and data.get("outcome") == "request_correction":
        names = [str(m.get("material_code") or m.get("field") or "") for m in data.get("missing") or []
                 if isinstance(m, Mapping)]
    else:
        return []
    return [n.removeprefix("materials.")[:120] for n in names if n]


def correction_counts(events: Iterable[tuple[str | None, str, Mapping[str, Any]]]) -> dict[str | None, Counter[str]]:
    """(item code, event type, payload) → per item, how often each material was sent back."""
    out: dict[str | None, Counter[str]] = defaultdict(Counter)
    for item, event_type, data in events:
        for name in corrected_materials(event_type, data):
            out[item][name] += 1
    return out


def step_use(tasks: Iterable[tuple[str | None, str | None, str | None, int, int]]) -> dict[str | None, list[StepUse]]:
    """(item code, step key, department, working days used, limit) of settled tasks → per item, each step's share
    of its limit used, the steps that use most of theirs first."""
    by: dict[tuple[str | None, str, str | None], StepUse] = {}
    for item, step, dept, used, limit in tasks:
        if limit <= 0:
            continue
        s = by.setdefault((item, step or "—", dept), StepUse(step or "—", dept))
        s.tasks += 1
        s.shares.append(used / limit)
        s.over_limit += used > limit
    out: dict[str | None, list[StepUse]] = defaultdict(list)
    for (item, _step, _dept), s in by.items():
        out[item].append(s)
    for steps in out.values():
        steps.sort(key=lambda s: (-s.average_share, -s.max_share, s.step_key))
    return out
