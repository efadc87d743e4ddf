"""Unit tests of the rules that used to sit in routes and use cases (who may edit, preconditions, the
service-point tree, departments, the negative list, report windows) and of the API's examples against the demo
catalogue's reference data: pure, no server, no database."""

from __future__ import annotations

from datetime import date
from typing import get_args

import pytest
from stdnum.cn import uscc

from services.catalog.api.schemas import (
    DepartmentWrite,
    IntermediaryWrite,
    ItemCreate,
    ItemUpdate,
    LifeEventWrite,
    NegativeEntryWrite,
    ServicePointWrite,
)
from services.catalog.demo.items import ITEMS
from services.catalog.demo.reference import DEPARTMENTS, INTERMEDIARY_SERVICES, LIFE_EVENTS, SERVICE_POINTS
from services.catalog.domain import lifecycle
from services.catalog.domain.access import actor_of, ensure_may_edit
from services.catalog.domain.model import THEMES, ItemContent, Theme
from services.catalog.domain.rules import (
    ListedEntry,
    Reference,
    Requirement,
    check_department,
    check_item,
    check_negative_entry,
    check_point,
    check_report_window,
    negative_verdict,
)
from shared.errors import Forbidden, PreconditionFailed, PreconditionRequired
from shared.principal import Principal

REF = Reference(
    departments=frozenset(d["code"] for d in DEPARTMENTS),
    service_points=frozenset(p["code"] for p in SERVICE_POINTS),
    life_events=frozenset(e["name"] for e in LIFE_EVENTS),
    intermediaries={s["code"]: s["legal_basis"] for s in INTERMEDIARY_SERVICES},
)
POINT_LEVEL = {p["code"]: p["level"] for p in SERVICE_POINTS}


def staff(*roles: str, dept: str | None = None) -> Principal:
    return Principal(subject="ed", kind="staff", roles=frozenset(roles), department=dept)


def rules(errors: list) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(e.field, e.rule) for e in errors}


# --- who may edit -----------------------------------------------------------------------------------------


def test_an_admin_edits_every_department_and_an_editor_only_their_own():
    ensure_may_edit(staff("admin"), "LD-GAJ")
    ensure_may_edit(staff("catalog_editor", dept="LD-GAJ"), "LD-GAJ")
    with pytest.raises(Forbidden) as other:
        ensure_may_edit(staff("catalog_editor", dept="LD-GAJ"), "LD-SCJGJ")
    assert other.value.slug == "other-department"
    with pytest.raises(Forbidden):
        ensure_may_edit(staff("window_clerk", dept="LD-SCJGJ"), "LD-SCJGJ")
    assert actor_of(staff("admin")) == "staff:ed"


# --- preconditions ----------------------------------------------------------------------------------------


def test_a_draft_changes_only_against_the_tag_last_read():
    tag = lifecycle.etag("X", 2, 3)
    assert tag == '"X.v2.r3"'
    lifecycle.check_if_match(tag, tag)
    lifecycle.check_if_match(tag, f'W/{tag}, "other"')
    lifecycle.check_if_match(tag, "*")
    with pytest.raises(PreconditionRequired):
        lifecycle.check_if_match(tag, None)
    with pytest.raises(PreconditionRequired):
        lifecycle.check_if_match(tag, "")
    with pytest.raises(PreconditionFailed):
        lifecycle.check_if_match(tag, lifecycle.etag("X", 2, 2))


# --- reference data ---------------------------------------------------------------------------------------


def test_a_service_point_sits_one_level_below_its_parent_and_is_never_its_own():
    assert check_point("LD-LC-09", "village", "LD-LC", "town") == []
    assert check_point("LD-X", "town", "LD-CENTRE", "city") == []
    assert rules(check_point("LD-X", "village", "LD-CENTRE", "city")) == {("body.parent_code", "tree_level")}
    assert rules(check_point("LD-X", "city", "LD-CENTRE", "city")) == {("body.parent_code", "tree_level")}
    assert rules(check_point("LD-X", "town", None, None)) == {("body.parent_code", "parent_required")}
    assert rules(check_point("LD-X", "town", "NOPE", None)) == {("body.parent_code", "unknown_service_point")}
    assert ("body.parent_code", "tree_level") in rules(check_point("LD-LC", "town", "LD-LC", "town"))


def test_a_department_has_a_short_ascii_code_and_a_credit_code_with_its_check_character():
    assert check_department("LD-JTJ", "11441781MB0000012E") == []
    assert check_department("LD-JTJ", None) == []
    assert rules(check_department("LD-JTJ", "11441781MB0000012X")) == {("body.credit_code", "credit_code")}
    assert rules(check_department("交通局", None)) == {("path.code", "format")}
    assert rules(check_department("X" * 33, None)) == {("path.code", "format")}


def test_a_permitted_entry_names_what_to_obtain_and_only_known_departments_and_items():
    known = {"departments": frozenset({"LD-ZSJ"}), "items": frozenset({"I1"})}
    assert check_negative_entry("prohibited", [], **known) == []
    assert rules(check_negative_entry("permitted", [], **known)) == {("body.requirements", "approval_required")}
    assert check_negative_entry("permitted", [Requirement("许可", "LD-ZSJ", "I1")], **known) == []
    assert rules(check_negative_entry("permitted", [Requirement("许可", "LD-NOPE", "I2")], **known)) == {
        ("body.requirements.0.department", "unknown_department"), ("body.requirements.0.item", "unknown_item")}


def test_may_i_open_it_prohibited_wins_then_approvals_then_free_entry():
    ban = ListedEntry(title="禁止放贷", category="prohibited")
    food = ListedEntry(title="食品经营", category="permitted", approvals=("营业执照", "食品经营许可证"))
    hygiene = ListedEntry(title="公共场所", category="permitted", approvals=("营业执照", "卫生许可证"))
    assert negative_verdict(None, [ban, food])[0] == "all"
    assert negative_verdict("放贷", [food, ban]) == ("prohibited", "该经营活动属于禁止准入事项：禁止放贷")
    verdict, answer = negative_verdict("开饭店", [food, hygiene])
    assert verdict == "permitted_with_approval" and answer.endswith("营业执照、食品经营许可证、卫生许可证")
    assert negative_verdict("卖花", [])[0] == "not_listed"


def test_a_search_miss_report_covers_at_most_a_year_in_order():
    assert check_report_window(date(2026, 1, 1), date(2026, 12, 31)) == []
    assert rules(check_report_window(date(2026, 2, 1), date(2026, 1, 1))) == {("query.to", "order")}
    assert rules(check_report_window(date(2025, 1, 1), date(2026, 12, 31))) == {("query.to", "max_range")}


def test_the_theme_enum_is_exactly_the_theme_list():
    assert set(get_args(Theme)) == set(THEMES)


# --- the API's examples keep the platform's own rules -------------------------------------------------------


def test_the_item_examples_pass_every_rule_against_the_demo_reference_data():
    for model in (ItemCreate, ItemUpdate):
        example = model.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
        body = model.model_validate(example)
        content = ItemContent.model_validate(body.model_dump(exclude={"code"}))
        assert check_item(content, REF) == []
        # Materials and form keys are ones the demo catalogue uses, so a front end learns real names.
        demo_materials = {m["code"] for _, c in ITEMS.values() for m in c["materials"]}
        demo_fields = {f["name"] for _, c in ITEMS.values() for f in c["form_fields"]}
        assert {m.code for m in content.materials} <= demo_materials
        assert {f.name for f in content.form_fields} <= demo_fields
    code = ItemCreate.model_config["json_schema_extra"]["examples"][0]["code"]  # type: ignore[index]
    assert code not in {c for c, _ in ITEMS.values()} and code.startswith(DEPARTMENTS[1]["credit_code"])


def test_the_reference_examples_name_existing_parents_departments_and_valid_credit_codes():
    def example(model):  # type: ignore[no-untyped-def]
        return model.model_validate(model.model_config["json_schema_extra"]["examples"][0])

    dept = example(DepartmentWrite)
    assert dept.credit_code is None or uscc.is_valid(dept.credit_code)
    point = example(ServicePointWrite)
    assert check_point("LD-LC-09", point.level, point.parent_code, POINT_LEVEL.get(point.parent_code or "")) == []
    assert "LD-LC-09" not in POINT_LEVEL
    assert example(IntermediaryWrite).department in REF.departments
    entry = example(NegativeEntryWrite)
    reqs = [Requirement(**r.model_dump()) for r in entry.requirements]
    assert check_negative_entry(entry.category, reqs, departments=REF.departments, items=frozenset()) == []
    assert example(LifeEventWrite).audience
