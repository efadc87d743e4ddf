"""Unit tests of issue 17's catalogue rules: a department's own limit within a parallel stage (明确部门办理时限) and
the joint review step (联合审图 / 联合验收)."""

from __future__ import annotations

import copy
from typing import Any

from services.catalog.demo.items import ITEMS
from services.catalog.domain import flowchart
from services.catalog.domain.model import ItemContent
from services.catalog.tests.test_domain import NAMES, REF, rules_broken


def food_permit() -> dict[str, Any]:
    return copy.deepcopy(ITEMS["food-permit"][1])


def test_a_department_may_have_its_own_limit_within_the_stage_limit():
    c = food_permit()
    c["process"]["steps"][1]["department_limits"] = {"LD-XFJ": 3, "LD-STHJJ": 6}
    assert rules_broken(c) == set()


def test_a_department_limit_beyond_the_stage_limit_is_refused_naming_the_department():
    c = food_permit()
    c["process"]["steps"][1]["department_limits"] = {"LD-XFJ": 7}
    assert rules_broken(c) == {("process.steps.1.department_limits.LD-XFJ", "within_step_limit")}


def test_a_department_limit_for_a_department_outside_the_stage_is_refused():
    c = food_permit()
    c["process"]["steps"][1]["department_limits"] = {"LD-GAJ": 2}
    assert rules_broken(c) == {("process.steps.1.department_limits.LD-GAJ", "department_in_step")}


def test_department_limits_belong_to_parallel_stages_only():
    c = food_permit()
    c["process"]["steps"][2]["department_limits"] = {"LD-SCJGJ": 1}
    assert ("process.steps.2.department_limits", "parallel_only") in rules_broken(c)


def test_items_without_department_limits_read_as_before():
    stage = ItemContent.model_validate(food_permit()).process.steps[1]
    assert stage.department_limits == {} and stage.review_kind is None


def test_the_joint_review_demo_items_keep_every_rule_and_lead_among_their_departments():
    for slug, lead, departments in (
        ("joint_drawing_review", "LD-ZJJ", ["LD-ZJJ", "LD-XFJ", "LD-STHJJ"]),
        ("joint_completion_acceptance", "LD-ZJJ", ["LD-ZJJ", "LD-XFJ", "LD-STHJJ", "LD-WJJ"]),
    ):
        content = ITEMS[slug][1]
        assert rules_broken(content) == set(), slug
        step = next(s for s in ItemContent.model_validate(content).process.steps if s.kind == "joint_review")
        assert step.lead_department == lead and step.departments == departments
        assert step.review_kind == ("drawing_review" if slug == "joint_drawing_review" else "acceptance")


def test_a_joint_review_needs_its_kind_a_lead_among_its_departments_and_two_departments():
    c = copy.deepcopy(ITEMS["joint_completion_acceptance"][1])
    step = c["process"]["steps"][1]
    step.update(review_kind=None, lead_department="LD-GAJ")
    assert {("process.steps.1.review_kind", "review_kind_required"),
            ("process.steps.1.lead_department", "lead_in_stage")} <= rules_broken(c)
    step.update(review_kind="acceptance", lead_department="LD-ZJJ", departments=["LD-ZJJ"])
    assert ("process.steps.1.departments", "joint_min_departments") in rules_broken(c)


def test_review_kind_belongs_to_joint_review_steps_only():
    c = food_permit()
    c["process"]["steps"][1]["review_kind"] = "acceptance"
    assert ("process.steps.1.review_kind", "joint_review_only") in rules_broken(c)


def test_the_flowchart_draws_a_joint_review_step():
    code, content = ITEMS["joint_completion_acceptance"]
    item = ItemContent.model_validate(content)
    assert "竣工联合验收" in flowchart.svg(code, 1, item, NAMES)
    assert REF.departments >= set(item.process.steps[1].departments)
