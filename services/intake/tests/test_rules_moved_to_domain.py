"""The rules that used to sit in the routes, checked without a server: starting and changing a draft, what may
stand for a material, the hand-over, the If-Match precondition, who may use the staff desks, and a department's
correction request as the one-time notice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.intake.domain import access, corrections, drafts
from shared.errors import Forbidden, PreconditionFailed, PreconditionRequired, ValidationProblem
from shared.principal import ADMIN, DEPARTMENT_REVIEWER, SUPERVISOR, WINDOW_CLERK, ActingFor, Principal

ITEM = {
    "channels": ["online", "window"], "service_points": ["LD-CENTRE"], "audience": ["natural_person"],
    "form_fields": [{"name": "business_name", "label": "名称", "type": "text", "required": True}],
    "materials": [
        {"code": "business_licence", "name": "营业执照", "source": "certificate", "certificate_type": "X"},
        {"code": "floor_plan", "name": "平面图", "source": "applicant"},
        {"code": "food_safety_commitment", "name": "承诺书", "source": "applicant", "commitment_allowed": True},
    ],
    "fees": {"charged": True, "items": [{"name": "工本费", "amount": "20.00",
                                         "exemptions": [{"code": "first_application", "name": "首次申领"}]}]},
}


def rules(exc: pytest.ExceptionInfo[ValidationProblem]) -> set[tuple[str, str]]:
    return {(e.field, e.rule) for e in exc.value.errors}


def person(**kw: object) -> Principal:
    return Principal(subject="p-1", kind="person", roles=frozenset({"citizen"}), **kw)  # type: ignore[arg-type]


def staff(*roles: str, point: str | None = None, dept: str | None = None) -> Principal:
    return Principal(subject="s-1", kind="staff", roles=frozenset(roles), service_point=point, department=dept)


def test_a_draft_is_started_only_by_a_channel_point_audience_and_form_the_item_offers():
    ok = drafts.start_findings(ITEM, channel="online", service_point="LD-CENTRE", applicant_kind="person",
                               form={"business_name": "罗城小厨"})
    assert ok == []
    found = drafts.start_findings(ITEM, channel="post", service_point="LD-CENTRE", applicant_kind="organisation",
                                  form={"shop_name": "x"})
    assert {(f.field, f.rule) for f in found} == {
        ("channel", "channel_not_offered"), ("applicant", "audience"), ("form.shop_name", "unknown_field")}


def test_the_delivery_choice_defaults_its_point_to_where_it_is_handed_in_and_post_needs_an_address():
    assert drafts.delivery_values(ITEM, method="pickup", point=None, address="ignored", handed_in_at="LD-CENTRE") == {
        "delivery_method": "pickup", "delivery_point": "LD-CENTRE", "delivery_address": None}
    assert drafts.delivery_values(ITEM, method="electronic", point="LD-CENTRE", address=None,
                                  handed_in_at="LD-CENTRE")["delivery_point"] is None
    with pytest.raises(ValidationProblem) as exc:
        drafts.delivery_values(ITEM, method="post", point=None, address=" ", handed_in_at="LD-CENTRE")
    assert rules(exc) == {("delivery.address", "required")}


def test_only_a_listed_fee_exemption_is_claimed():
    assert drafts.exemption_values(ITEM, "first_application") == {
        "fee_exemption": "first_application", "fee_exemption_state": "claimed"}
    assert drafts.exemption_values(ITEM, None) == {"fee_exemption": None, "fee_exemption_state": None}
    with pytest.raises(ValidationProblem) as exc:
        drafts.exemption_values(ITEM, "veteran")
    assert rules(exc) == {("fee_exemption", "unknown_exemption")}


def test_a_form_change_replaces_the_fields_given_and_a_null_clears_one():
    assert drafts.merged_form({"a": "1", "b": "2"}, {"b": None, "c": "3"}) == {"a": "1", "c": "3"}


def test_a_material_is_one_the_item_asks_for():
    assert drafts.requested_material(ITEM, "floor_plan")["name"] == "平面图"
    with pytest.raises(ValidationProblem) as exc:
        drafts.requested_material(ITEM, "M01")
    assert rules(exc) == {("material_code", "unknown_material")}


def test_a_commitment_stands_only_where_the_item_allows_it_and_names_the_material_by_default():
    assert "承诺书" in drafts.commitment_statement(ITEM["materials"][2], None)
    assert drafts.commitment_statement(ITEM["materials"][2], "本人承诺。") == "本人承诺。"
    with pytest.raises(ValidationProblem) as exc:
        drafts.commitment_statement(ITEM["materials"][1], None)
    assert rules(exc) == {("kind", "commitment_not_allowed")}


def test_a_certificate_number_stands_only_for_a_government_certificate_and_is_kept_trimmed():
    assert drafts.certificate_reference(ITEM["materials"][0], " 92445381MA4W00001T ") == "92445381MA4W00001T"
    with pytest.raises(ValidationProblem) as exc:
        drafts.certificate_reference(ITEM["materials"][1], "123")
    assert rules(exc) == {("kind", "certificate_ref_not_allowed")}
    with pytest.raises(ValidationProblem) as exc:
        drafts.certificate_reference(ITEM["materials"][0], "  ")
    assert rules(exc) == {("reference", "required")}


def test_a_commitment_is_never_reused():
    drafts.reusable("upload")
    with pytest.raises(ValidationProblem) as exc:
        drafts.reusable("commitment")
    assert rules(exc) == {("attachment_id", "commitment_not_reusable")}


def test_the_result_goes_the_chosen_way_and_by_post_with_carrier_and_tracking_number():
    drafts.hand_over_check(chosen="pickup", method="pickup", carrier=None, tracking_number=None)
    with pytest.raises(ValidationProblem) as exc:
        drafts.hand_over_check(chosen="post", method="pickup", carrier=None, tracking_number=None)
    assert rules(exc) == {("body.method", "not_chosen")}
    with pytest.raises(ValidationProblem) as exc:
        drafts.hand_over_check(chosen="post", method="post", carrier="EMS", tracking_number=None)
    assert rules(exc) == {("body.tracking_number", "required")}


def test_a_change_without_if_match_is_428_and_with_a_stale_etag_412():
    at = datetime(2026, 11, 30, 4, 0, 0, 123456, tzinfo=UTC)
    tag = drafts.etag("a" * 32, at)
    drafts.precondition(tag, tag)
    drafts.precondition(" * ", tag)
    with pytest.raises(PreconditionRequired):
        drafts.precondition(None, tag)
    with pytest.raises(PreconditionFailed):
        drafts.precondition('"stale"', tag)


def test_the_etag_is_the_same_instant_whatever_its_offset_and_changes_with_it():
    at = datetime(2026, 11, 30, 4, 0, 0, 123456, tzinfo=UTC)
    same = at.astimezone(timezone(timedelta(hours=8)))
    assert drafts.etag("a" * 32, at) == drafts.etag("a" * 32, same) == drafts.etag("a" * 32, at.replace(tzinfo=None))
    assert drafts.etag("a" * 32, at) != drafts.etag("a" * 32, at + timedelta(microseconds=1))
    assert drafts.etag("a" * 32, at).startswith('"') and drafts.etag("a" * 32, at).endswith('"')


def test_a_points_collections_are_for_its_own_clerks_and_supervisors():
    access.staff_of_point(staff(WINDOW_CLERK, point="LD-LC"), "LD-LC")
    access.staff_of_point(staff(SUPERVISOR), "LD-LC")
    for who in (staff(WINDOW_CLERK, point="LD-SL"), staff(DEPARTMENT_REVIEWER, point="LD-LC"), person()):
        with pytest.raises(Forbidden):
            access.staff_of_point(who, "LD-LC")


def test_a_visit_is_recorded_at_the_clerks_own_point_never_the_one_claimed():
    assert access.visit_point(staff(WINDOW_CLERK, point="LD-LC"), None) == "LD-LC"
    assert access.visit_point(staff(WINDOW_CLERK, point="LD-LC"), "LD-LC") == "LD-LC"
    with pytest.raises(ValidationProblem) as exc:
        access.visit_point(staff(WINDOW_CLERK, point="LD-LC"), "LD-SL")
    assert rules(exc) == {("service_point", "not_your_point")}
    for who in (staff(WINDOW_CLERK), staff(DEPARTMENT_REVIEWER, point="LD-LC")):
        with pytest.raises(Forbidden):
            access.visit_point(who, None)


def test_a_walk_in_is_filed_by_a_window_clerk_with_a_point():
    assert access.walk_in_point(staff(WINDOW_CLERK, point="LD-CENTRE")) == "LD-CENTRE"
    for who in (staff(WINDOW_CLERK), staff(ADMIN, point="LD-CENTRE"), person()):
        with pytest.raises(Forbidden):
            access.walk_in_point(who)


def test_an_appointment_is_held_by_whom_the_applicant_acts_for():
    assert access.appointment_holder(person()) == "p-1"
    assert access.appointment_holder(person(organisation="91441781MA4W00001X")) == "91441781MA4W00001X"
    assert access.appointment_holder(person(acting_for=ActingFor(subject="p-2", kind="person"))) == "p-2"
    with pytest.raises(Forbidden):
        access.appointment_holder(staff(WINDOW_CLERK, point="LD-CENTRE"))


def test_commitments_and_insights_are_a_departments_own_and_supervisors_see_the_city():
    assert access.department_of(staff(DEPARTMENT_REVIEWER, dept="LD-SCJGJ")) == "LD-SCJGJ"
    with pytest.raises(Forbidden):
        access.department_of(staff(DEPARTMENT_REVIEWER))
    assert access.insights_department(staff(SUPERVISOR), "LD-WJJ") == "LD-WJJ"
    assert access.insights_department(staff(DEPARTMENT_REVIEWER, dept="LD-SCJGJ"), None) == "LD-SCJGJ"
    with pytest.raises(Forbidden):
        access.insights_department(staff(DEPARTMENT_REVIEWER, dept="LD-SCJGJ"), "LD-WJJ")
    with pytest.raises(Forbidden):
        access.insights_department(person(), None)


def test_a_correction_request_becomes_the_one_time_notice():
    assert corrections.notice([("floor_plan", None, "不清晰"), (None, "phone", None)], "请补正材料") == [
        {"field": "materials.floor_plan", "rule": "correction_requested", "message": "不清晰"},
        {"field": "form.phone", "rule": "correction_requested", "message": "请补正材料"}]
    assert corrections.notice([], None) == [
        {"field": "application", "rule": "correction_requested", "message": "请补正。"}]
    assert corrections.step_of("approve") == "部门审查通过" and corrections.step_of("defer") == "部门审查：defer"
