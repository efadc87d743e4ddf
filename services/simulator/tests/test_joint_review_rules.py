"""Unit tests of a simulated department's part in a joint review (联合审图 / 联合验收): no I/O."""

from __future__ import annotations

from services.simulator.domain.rules import (
    CorrectionMemory,
    JointNotice,
    Mode,
    PointMemory,
    Rule,
    TaskNotice,
    evaluate,
    joint_action,
)

OPENED = "yimen.workflow.joint_review.opened"
SCHEDULED = "yimen.workflow.joint_review.scheduled"
RECORDED = "yimen.workflow.joint_review.opinion_recorded"


def notice(event_type: str, **kw) -> JointNotice:  # type: ignore[no-untyped-def]
    return JointNotice(event_type=event_type, review_id="R1", application_id="A1", lead_department="LD-ZJJ",
                       round=kw.pop("round", 1), **kw)


def test_the_lead_schedules_an_opened_round_and_consolidates_once_nothing_is_pending():
    rule, memory = Rule(mode=Mode.APPROVE), PointMemory()
    action = joint_action(rule, "LD-ZJJ", notice(OPENED), memory, "2026-11-30")
    assert action is not None and action.action == "schedule" and action.body["date"] == "2026-11-30"
    assert joint_action(rule, "LD-XFJ", notice(OPENED), memory, "2026-11-30") is None
    assert joint_action(rule, "LD-ZJJ", notice(RECORDED, pending=("LD-XFJ",)), memory, "2026-11-30") is None
    done = joint_action(rule, "LD-ZJJ", notice(RECORDED, pending=()), memory, "2026-11-30")
    assert done is not None and done.action == "consolidation"


def test_fail_point_once_fails_its_point_the_first_time_and_passes_the_reinspection():
    rule, memory = Rule(mode=Mode.FAIL_POINT_ONCE, point="消防车通道"), PointMemory()
    first = joint_action(rule, "LD-XFJ", notice(SCHEDULED, participants=("LD-ZJJ", "LD-XFJ")), memory, "d")
    assert first is not None and first.action == "opinions" and first.body["verdict"] == "fail"
    assert first.body["failed_points"][0]["point"] == "消防车通道"  # type: ignore[index]
    again = joint_action(rule, "LD-XFJ", notice(SCHEDULED, participants=("LD-XFJ",), round=2), memory, "d")
    assert again is not None and again.body["verdict"] == "pass"


def test_a_department_not_invited_to_the_round_and_a_silent_one_do_nothing():
    memory = PointMemory()
    assert joint_action(Rule(mode=Mode.APPROVE), "LD-WJJ", notice(SCHEDULED, participants=("LD-XFJ",)), memory,
                        "d") is None
    assert joint_action(Rule(mode=Mode.NEVER), "LD-ZJJ", notice(OPENED), memory, "d") is None


def test_fail_point_once_approves_ordinary_tasks():
    draft = evaluate(Rule(mode=Mode.FAIL_POINT_ONCE), TaskNotice("yimen.workflow.task.assigned", "T", "A", "LD-XFJ"),
                     CorrectionMemory())
    assert draft is not None and draft.outcome.value == "approve"
