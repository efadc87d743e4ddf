"""Unit tests of the joint review rules (联合审图 / 联合验收) and per-department limits: no I/O."""

from __future__ import annotations

from datetime import date

import pytest

from services.workflow.domain import joint_review as jr
from services.workflow.domain.process import runnable_steps

TODAY = date(2026, 11, 30)
DEPTS = ("LD-ZJJ", "LD-XFJ", "LD-STHJJ", "LD-WJJ")


def scheduled(round_: jr.Round, participants: tuple[str, ...] = ()) -> jr.Round:
    round_.participants = jr.check_schedule(jr.ReviewState.AWAITING_SCHEDULE, round_, participants=participants,
                                            on=TODAY, today=TODAY, place="项目现场")
    return round_


def give(round_: jr.Round, opinion: jr.Opinion) -> None:
    round_.opinions[opinion.department] = jr.check_opinion(jr.ReviewState.SCHEDULED, round_, opinion)


def fail(dept: str, *points: str) -> jr.Opinion:
    return jr.Opinion(dept, jr.Verdict.FAIL, failed=tuple(jr.Point(dept, p, f"{p}不合格") for p in points))


def test_a_department_limit_within_the_step_gives_that_department_its_own_limit():
    steps = runnable_steps([{"key": "p", "kind": "parallel", "departments": ["A", "B", "C"], "lead_department": "A",
                             "limit_days": 6, "department_limits": {"B": 3, "C": 9, "X": 1}}], item_department="A")
    assert [steps[0].limit_for(d) for d in ("A", "B", "C")] == [6, 3, 6]  # C beyond the step, X not in it: ignored


def test_a_step_without_department_limits_gives_every_department_the_step_limit():
    steps = runnable_steps([{"key": "p", "kind": "parallel", "departments": ["A", "B"], "limit_days": 5}],
                           item_department="A")
    assert steps[0].department_limits == () and {steps[0].limit_for(d) for d in "AB"} == {5}
    assert steps[0].task_departments == ("A", "B")


def test_a_joint_review_step_gives_one_task_to_its_lead():
    steps = runnable_steps([{"key": "j", "kind": "joint_review", "review_kind": "acceptance",
                             "departments": list(DEPTS), "lead_department": "LD-ZJJ", "limit_days": 8}],
                           item_department="LD-ZJJ")
    assert steps[0].task_departments == ("LD-ZJJ",) and steps[0].review_kind == "acceptance"


def test_the_first_round_invites_every_department_by_default_and_no_outsider():
    r = scheduled(jr.first_round(DEPTS))
    assert r.participants == DEPTS and r.pending == list(DEPTS)
    with pytest.raises(jr.ReviewError) as e:
        jr.check_schedule(jr.ReviewState.AWAITING_SCHEDULE, jr.first_round(DEPTS), participants=["LD-GAJ"], on=TODAY,
                          today=TODAY, place="x")
    assert e.value.kind == "invalid" and e.value.breaks[0].rule == "participant_eligible"


def test_a_schedule_in_the_past_or_without_a_place_is_refused():
    with pytest.raises(jr.ReviewError) as e:
        jr.check_schedule(jr.ReviewState.AWAITING_SCHEDULE, jr.first_round(DEPTS), participants=[],
                          on=date(2026, 11, 1), today=TODAY, place=" ")
    assert {b.rule for b in e.value.breaks} == {"not_in_past", "required"}


def test_one_opinion_per_participant_and_a_fail_names_its_points():
    r = scheduled(jr.first_round(DEPTS))
    with pytest.raises(jr.ReviewError) as e:
        give(r, jr.Opinion("LD-XFJ", jr.Verdict.FAIL))
    assert e.value.breaks[0].rule == "required_for_fail"
    with pytest.raises(jr.ReviewError) as e:
        give(r, jr.Opinion("LD-WJJ", jr.Verdict.PASS_WITH_CONDITIONS))
    assert e.value.breaks[0].rule == "required_for_conditions"
    give(r, jr.Opinion("LD-WJJ", jr.Verdict.PASS))
    with pytest.raises(jr.ReviewError) as e:
        give(r, jr.Opinion("LD-WJJ", jr.Verdict.PASS))
    assert e.value.kind == "conflict"
    with pytest.raises(jr.ReviewError) as e:
        give(r, jr.Opinion("LD-GAJ", jr.Verdict.PASS))
    assert e.value.kind == "forbidden"


def test_no_consolidation_before_every_participant_has_spoken():
    r = scheduled(jr.first_round(DEPTS))
    give(r, jr.Opinion("LD-ZJJ", jr.Verdict.PASS))
    with pytest.raises(jr.ReviewError) as e:
        jr.consolidate(jr.ReviewState.SCHEDULED, r, reject=False, legal_basis=None, reasons=[])
    assert e.value.kind == "conflict" and "LD-XFJ" in e.value.message


def test_all_pass_is_passed_and_conditions_make_it_passed_with_conditions():
    r = scheduled(jr.first_round(DEPTS[:2]))
    give(r, jr.Opinion("LD-ZJJ", jr.Verdict.PASS))
    give(r, jr.Opinion("LD-XFJ", jr.Verdict.PASS))
    assert jr.consolidate(jr.ReviewState.SCHEDULED, r, reject=False, legal_basis=None, reasons=[]) is jr.Result.PASSED
    r = scheduled(jr.first_round(DEPTS[:2]))
    give(r, jr.Opinion("LD-ZJJ", jr.Verdict.PASS))
    give(r, jr.Opinion("LD-XFJ", jr.Verdict.PASS_WITH_CONDITIONS, conditions=("投用前完成联动测试",)))
    assert jr.consolidate(jr.ReviewState.SCHEDULED, r, reject=False, legal_basis=None,
                          reasons=[]) is jr.Result.PASSED_WITH_CONDITIONS
    assert jr.conditions_of(r.opinions.values()) == ["LD-XFJ：投用前完成联动测试"]


def test_failed_points_go_to_the_owner_as_one_notice_and_reinspection_covers_only_them():
    r = scheduled(jr.first_round(DEPTS))
    give(r, jr.Opinion("LD-ZJJ", jr.Verdict.PASS))
    give(r, fail("LD-XFJ", "消防车通道", "疏散指示"))
    give(r, jr.Opinion("LD-STHJJ", jr.Verdict.PASS))
    give(r, jr.Opinion("LD-WJJ", jr.Verdict.PASS))
    r.result = jr.consolidate(jr.ReviewState.SCHEDULED, r, reject=False, legal_basis=None, reasons=[])
    assert r.result is jr.Result.CORRECTION_REQUIRED
    assert jr.state_after(r.result) is jr.ReviewState.AWAITING_CORRECTION
    assert jr.notice(jr.failed_points(r), {"LD-XFJ": "消防"}) == ["消防：消防车通道——消防车通道不合格",
                                                                    "消防：疏散指示——疏散指示不合格"]
    second = jr.reinspection(r)
    assert second.number == 2 and second.reinspection and second.eligible == ("LD-XFJ",)
    assert [p.point for p in second.points] == ["消防车通道", "疏散指示"]
    # Only the department that failed takes part, all of those and only them.
    with pytest.raises(jr.ReviewError) as e:
        jr.check_schedule(jr.ReviewState.AWAITING_SCHEDULE, second, participants=["LD-XFJ", "LD-WJJ"], on=TODAY,
                          today=TODAY, place="x")
    assert {b.rule for b in e.value.breaks} == {"participant_eligible", "reinspection_failed_departments_only"}
    scheduled(second)
    # A re-inspection judges only the failed points.
    with pytest.raises(jr.ReviewError) as e:
        give(second, fail("LD-XFJ", "新问题"))
    assert e.value.breaks[0].rule == "point_under_reinspection"
    give(second, fail("LD-XFJ", "疏散指示"))
    second.result = jr.consolidate(jr.ReviewState.SCHEDULED, second, reject=False, legal_basis=None, reasons=[])
    third = jr.reinspection(second)
    assert [p.point for p in third.points] == ["疏散指示"]
    scheduled(third)
    give(third, jr.Opinion("LD-XFJ", jr.Verdict.PASS))
    assert jr.consolidate(jr.ReviewState.SCHEDULED, third, reject=False, legal_basis=None,
                          reasons=[]) is jr.Result.PASSED


def test_a_rejection_needs_failed_points_reasons_and_legal_basis():
    r = scheduled(jr.first_round(DEPTS[:2]))
    give(r, jr.Opinion("LD-ZJJ", jr.Verdict.PASS))
    give(r, fail("LD-XFJ", "主体结构"))
    with pytest.raises(jr.ReviewError) as e:
        jr.consolidate(jr.ReviewState.SCHEDULED, r, reject=True, legal_basis=None, reasons=[])
    assert {b.rule for b in e.value.breaks} == {"required_for_reject"}
    assert jr.consolidate(jr.ReviewState.SCHEDULED, r, reject=True, legal_basis="《建设工程质量管理条例》第十六条",
                          reasons=["主体结构不合格"]) is jr.Result.REJECTED


def test_nothing_to_reinspect_after_a_pass():
    r = scheduled(jr.first_round(DEPTS[:2]))
    r.result = jr.Result.PASSED
    with pytest.raises(jr.ReviewError):
        jr.reinspection(r)
