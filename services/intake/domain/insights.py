"""Drafts abandoned, and at which material (卡点分析, tasks 4–6 of the plan): per item, where the drafts that
were never submitted stopped, read from each draft's latest one-time notice. Counts only: no applicant."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

NOT_CHECKED = "not_checked"


def stopped_at(notice: Iterable[Mapping[str, Any]] | None) -> str:
    """The first thing the latest notice still asked for: a material code, a form field, or `not_checked`
    when the applicant never asked what was missing."""
    for problem in notice or []:
        field = str(problem.get("field") or "")
        if field:
            return field.removeprefix("materials.")[:120]
    return NOT_CHECKED


def abandoned(rows: Iterable[tuple[str, str, Iterable[Mapping[str, Any]] | None]]) -> dict[str, tuple[str, Counter[str]]]:
    """(item code, item name, notice) of idle drafts → per item, its name and where its drafts stopped."""
    out: dict[str, tuple[str, Counter[str]]] = defaultdict(lambda: ("", Counter()))
    for code, name, notice in rows:
        counter = out[code][1]
        counter[stopped_at(notice)] += 1
        out[code] = (name, counter)
    return dict(out)
