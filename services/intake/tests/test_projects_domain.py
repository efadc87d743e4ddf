"""Projects' pure rules: the GB/T 40058-2021 code (segments and check character), the negative list, stage gates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.intake.domain import projects as p

VALID = p.issue_project_code(2026, random="12345")


def rules(code: str) -> list[str]:
    return [f.rule for f in p.check_project_code(code, this_year=2026)]


def test_an_issued_code_has_five_segments_24_characters_and_passes_its_own_check():
    assert VALID == "2026-445381-39-03-123452"
    assert len(VALID) == 24 and [len(s) for s in VALID.split("-")] == [4, 6, 2, 2, 6]
    assert rules(VALID) == []
    for _ in range(50):
        assert rules(p.issue_project_code(2026)) == []


def test_the_check_character_is_iso_7064_mod_11_2_and_may_be_x():
    # The resident ID number's algorithm on a known example, extended to 19 digits by the same weights.
    assert p.check_character("2026445381390312345") == "2"
    xs = [d for d in (f"2026445381390300{n:03d}" for n in range(1000)) if p.check_character(d) == "X"]
    assert xs and rules(f"{xs[0][:4]}-{xs[0][4:10]}-{xs[0][10:12]}-{xs[0][12:14]}-{xs[0][14:]}X") == []


@pytest.mark.parametrize(("code", "rule"), [
    ("2026-445381-39-03-123450", "project_code.check_character"),
    ("2026-445381-39-03-12345", "project_code.length"),
    ("2026/445381/39/03/123452", "project_code.segments"),
    ("20A6-445381-39-03-123452", "project_code.year"),
    ("1999-445381-39-03-123452", "project_code.year"),
    ("2026-44538A-39-03-123452", "project_code.region"),
    ("2026-995381-39-03-123452", "project_code.region"),
    ("2026-445381-00-03-123452", "project_code.department"),
    ("2026-445381-39-07-123452", "project_code.type"),
    ("2026-445381-39-03-1234Y2", "project_code.serial"),
    ("2026-4453811-9-03-123452", "project_code.region"),
])
def test_a_broken_code_names_its_segment(code, rule):
    found = p.check_project_code(code, this_year=2026)
    assert rule in [f.rule for f in found]
    assert all(f.field == "body.project_code" for f in found)


def test_the_negative_list_prohibits_or_attaches_conditions_by_industry():
    assert p.screen("C3011").prohibited is not None and p.screen("C3011").prohibited.code == "FL-101"
    starch = p.screen("C1391")
    assert starch.prohibited is None and [c["code"] for c in starch.conditions] == ["FL-201"]
    assert starch.conditions[0]["conditions"]
    assert p.screen("C3911") == p.Screening(None, ())


STAGES = p.stages_of({"stages": [
    {"key": "b", "name": "二", "order": 2, "total_limit_days": 10, "items": [{"item_code": "X2", "department": "D2", "limit_days": 5}]},
    {"key": "a", "name": "一", "order": 1, "total_limit_days": 10, "items": [{"item_code": "X1", "department": "D1", "limit_days": 3}]},
]})
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_stages_open_in_order_and_gate_the_next():
    assert [s.key for s in STAGES] == ["a", "b"]
    progress: dict[str, p.StageProgress] = {}
    assert [p.status_of(STAGES, progress, s.key) for s in STAGES] == [p.StageStatus.OPEN, p.StageStatus.LOCKED]
    with pytest.raises(p.GateRefusal) as refused:
        p.gate(STAGES, progress, "b")
    assert refused.value.slug == "previous-stage-not-completed"
    assert p.gate(STAGES, progress, "a").key == "a"
    progress["a"] = p.StageProgress(accepted_at=NOW, outcomes={"app1": None})
    assert p.status_of(STAGES, progress, "a") is p.StageStatus.IN_PROGRESS
    with pytest.raises(p.GateRefusal) as again:
        p.gate(STAGES, progress, "a")
    assert again.value.slug == "stage-already-applied"
    assert not p.stage_completed(progress["a"])
    progress["a"].outcomes["app1"] = "approved"
    assert p.stage_completed(progress["a"])
    progress["a"].completed_at = NOW
    assert p.status_of(STAGES, progress, "b") is p.StageStatus.OPEN
    assert not p.project_completed(STAGES, progress)
    progress["b"] = p.StageProgress(accepted_at=NOW, completed_at=NOW, outcomes={"app2": "approved"})
    assert p.project_completed(STAGES, progress)


def test_a_stage_with_a_refused_item_completes_but_does_not_open_the_next():
    progress = {"a": p.StageProgress(accepted_at=NOW, completed_at=NOW, outcomes={"x": "rejected"})}
    assert p.status_of(STAGES, progress, "a") is p.StageStatus.COMPLETED
    with pytest.raises(p.GateRefusal) as refused:
        p.gate(STAGES, progress, "b")
    assert refused.value.slug == "previous-stage-not-approved"
