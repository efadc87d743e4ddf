"""好差评 (国办发〔2019〕51号; GB/T 39734-2020): five levels, the last two are bad ratings (差评)."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    very_satisfied = "very_satisfied"
    satisfied = "satisfied"
    basically_satisfied = "basically_satisfied"
    dissatisfied = "dissatisfied"
    very_dissatisfied = "very_dissatisfied"


NAMES = {
    Level.very_satisfied: "非常满意",
    Level.satisfied: "满意",
    Level.basically_satisfied: "基本满意",
    Level.dissatisfied: "不满意",
    Level.very_dissatisfied: "非常不满意",
}
BY_NAME = {v: k for k, v in NAMES.items()}
SCORES = {Level.very_satisfied: 5, Level.satisfied: 4, Level.basically_satisfied: 3, Level.dissatisfied: 2,
          Level.very_dissatisfied: 1}


def parse_level(value: object) -> object:
    """Accept the Chinese names as well as the codes."""
    return BY_NAME.get(value, value) if isinstance(value, str) else value


def is_bad(level: Level) -> bool:
    """Dissatisfied or worse opens a rectification (整改) for the department."""
    return SCORES[level] <= 2
