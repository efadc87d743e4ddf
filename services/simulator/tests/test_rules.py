"""Unit: how a simulated department answers by its rule."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.simulator.domain.rules import CorrectionMemory, Mode, Outcome, Rule, TaskNotice, evaluate


def notice(task: str = "t1", application: str = "a1", department: str = "LD-SCJGJ") -> TaskNotice:
    return TaskNotice(
        event_type="yimen.workflow.task.assigned", task_id=task, application_id=application, department=department
    )


def test_approve_mode_approves_every_task():
    memory = CorrectionMemory()
    for task in ("t1", "t2"):
        draft = evaluate(Rule(mode=Mode.APPROVE), notice(task), memory)
        assert draft is not None and draft.outcome is Outcome.APPROVE and draft.missing == []


def test_reject_mode_gives_reasons_and_the_legal_basis():
    draft = evaluate(Rule(mode=Mode.REJECT), notice(), CorrectionMemory())
    assert draft is not None and draft.outcome is Outcome.REJECT
    assert draft.reasons and draft.legal_basis.startswith("《中华人民共和国行政许可法》")


def test_never_mode_does_not_answer():
    assert evaluate(Rule(mode=Mode.NEVER), notice(), CorrectionMemory()) is None


def test_correct_once_asks_for_a_correction_first_then_approves_the_reopened_task():
    memory, rule = CorrectionMemory(), Rule(mode=Mode.CORRECT_ONCE)
    first = evaluate(rule, notice(), memory)
    assert first is not None and first.outcome is Outcome.REQUEST_CORRECTION
    assert first.missing and first.missing[0].material_code and first.missing[0].reason
    second = evaluate(rule, notice(), memory)
    assert second is not None and second.outcome is Outcome.APPROVE


def test_correct_once_approves_a_new_task_of_an_application_it_already_sent_back():
    memory, rule = CorrectionMemory(), Rule(mode=Mode.CORRECT_ONCE)
    evaluate(rule, notice("t1", "a1"), memory)
    draft = evaluate(rule, notice("t9", "a1"), memory)
    assert draft is not None and draft.outcome is Outcome.APPROVE


def test_correct_once_remembers_per_department_and_per_application():
    memory, rule = CorrectionMemory(), Rule(mode=Mode.CORRECT_ONCE)
    evaluate(rule, notice("t1", "a1", "LD-SCJGJ"), memory)
    other_dept = evaluate(rule, notice("t2", "a1", "LD-WJJ"), memory)
    other_app = evaluate(rule, notice("t3", "a2", "LD-SCJGJ"), memory)
    assert other_dept is not None and other_dept.outcome is Outcome.REQUEST_CORRECTION
    assert other_app is not None and other_app.outcome is Outcome.REQUEST_CORRECTION


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"mode": "maybe"}, "mode"),
        ({"mode": "approve", "delay_seconds": -1}, "delay_seconds"),
        ({"mode": "approve", "channel": "fax"}, "channel"),
        ({"mode": "approve", "colour": "red"}, "colour"),
        ({}, "mode"),
    ],
)
def test_a_rule_refuses_what_it_cannot_do(raw, field):
    with pytest.raises(ValidationError) as caught:
        Rule.model_validate(raw)
    assert caught.value.errors()[0]["loc"] == (field,)


def test_the_shipped_rules_cover_the_demo_departments():
    import json

    from services.simulator.config import HERE

    shipped = json.loads((HERE / "departments.json").read_text(encoding="utf-8"))["departments"]
    codes = {d["code"] for d in shipped}
    assert {"LD-SCJGJ", "LD-WJJ", "LD-XFJ", "LD-STHJJ"} <= codes
    for d in shipped:
        Rule.model_validate(d["rule"])

