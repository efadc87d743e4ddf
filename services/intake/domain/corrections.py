"""A reviewing department's step as the applicant reads it: a correction request (补正) becomes the one-time
notice (一次性告知), one problem per material or field asked for."""

from __future__ import annotations

from collections.abc import Iterable

RULE = "correction_requested"
DEFAULT = "请补正。"


def notice(missing: Iterable[tuple[str | None, str | None, str | None]], reasons: str | None) -> list[dict[str, str]]:
    """(material code, form field, reason) of each thing asked for → the notice; none named → one problem on the
    whole application."""
    out = [{"field": f"materials.{code}" if code else (f"form.{field}" if field else "application"), "rule": RULE,
            "message": reason or reasons or DEFAULT} for code, field, reason in missing]
    return out or [{"field": "application", "rule": RULE, "message": reasons or DEFAULT}]


def step_of(outcome: str) -> str:
    """The timeline's words for a department's decision on its step."""
    return {"approve": "部门审查通过", "reject": "部门审查不通过"}.get(outcome, f"部门审查：{outcome}")
