"""The console's rules without a server: the league table, the acceptance clock, the charts, the CSV, the
periods, the KPI series, the prefilled one-time notice, the session cookie and its CSRF token, the walk-in form
(窗口代录) and its refusals."""

from __future__ import annotations

from datetime import date

import pytest

from services.console.api.desk import prefilled_notice
from services.console.domain.acceptance import acceptance_clock
from services.console.domain.charts import bar_chart, share_chart
from services.console.domain.kpis import REFORM_FIGURES, series
from services.console.domain.league import league
from services.console.domain.periods import last_days, last_months
from services.console.domain.tables import to_csv
from services.console.domain.walkin import chinese, field_errors, still_missing, typed_form, walk_in_body
from services.console.session import Session, csrf_ok
from services.console.web import safe_next


def test_the_league_puts_open_red_cards_first_then_overdue_tasks_then_yellow():
    dashboard = {"departments": [
        {"department": "A", "open_red_cards": 0, "open_yellow_cards": 5, "running_tasks": 3},
        {"department": "B", "open_red_cards": 2, "open_yellow_cards": 0, "open_supervision": {"red_card": 2}},
        {"department": "C", "open_red_cards": 0, "open_yellow_cards": 0},
    ]}
    forecast = [
        {"task_id": "t1", "department": "C", "reason": "promised_limit_exceeded"},
        {"task_id": "t2", "department": "C", "reason": "statutory_limit_exceeded"},
        {"task_id": None, "department": "A", "reason": "promised_limit_exceeded"},  # a case, not a task
        {"task_id": "t3", "department": "A", "reason": "near_deadline"},  # near is not overdue
    ]
    rows = league(dashboard, forecast, {"B": "市乙局"})
    assert [r.department for r in rows] == ["B", "C", "A"]
    assert rows[0].name == "市乙局" and rows[0].open_supervision_total == 2 and rows[0].level == "red"
    assert rows[1].overdue_tasks == 2 and rows[1].level == "red"
    assert rows[2].overdue_tasks == 0 and rows[2].level == "yellow"


def test_the_acceptance_clock_counts_working_days_after_the_day_of_submission():
    # 2026-10-01…07 is the National Day holiday; 2026-10-10 (a Saturday) is a make-up working day.
    workdays = {date(2026, 9, 30), date(2026, 10, 8), date(2026, 10, 9), date(2026, 10, 10), date(2026, 10, 12)}
    c = acceptance_clock(date(2026, 9, 30), date(2026, 10, 12), workdays, 5)
    assert c.waited_workdays == 4 and c.remaining_workdays == 1 and c.state == "due_soon"
    assert acceptance_clock(date(2026, 9, 30), date(2026, 9, 30), workdays, 5).state == "ok"
    assert acceptance_clock(date(2026, 9, 29), date(2026, 10, 12), workdays, 3).state == "overdue"


def test_a_share_chart_draws_the_target_and_leaves_gaps_where_nothing_was_counted():
    svg = share_chart("上网办理率<按日>", ["a", "b", "c", "d"], [0.2, None, 0.6, 0.7], 0.5)
    assert svg.startswith("<svg") and "上网办理率&lt;按日&gt;" in svg and "<按日>" not in svg
    assert svg.count('class="target"') == 1 and "目标 50%" in svg
    assert svg.count("<circle") == 3 and svg.count("<polyline") == 1  # the lone first point is a dot only
    assert svg.count('fill="#cf222e"') >= 1  # 20 % is below the target
    with pytest.raises(ValueError):
        share_chart("x", ["a"], [0.1, 0.2], None)
    bars = bar_chart("红牌", ["一个名字非常非常非常长的部门分局", "乙"], [3, 0])
    assert bars.count("<rect") == 2 and "…" in bars


def test_the_csv_opens_in_a_spreadsheet_and_cannot_smuggle_a_formula():
    text = to_csv(["部门", "说明"], [["LD-A", "=HYPERLINK(\"http://x\")"], ["LD-B", None], ["LD-C", -1]])
    assert text.startswith("\ufeff部门,说明\r\n")
    assert "'=HYPERLINK" in text and "LD-B,\r\n" in text and "LD-C,-1\r\n" in text


def test_periods_end_today_and_months_start_on_the_first():
    days = last_days(date(2026, 3, 2), 3)
    assert [(p.start, p.end) for p in days] == [(date(2026, 2, 28),) * 2, (date(2026, 3, 1),) * 2, (date(2026, 3, 2),) * 2]
    months = last_months(date(2026, 1, 15), 3)
    assert [p.label for p in months] == ["2025-11", "2025-12", "2026-01"]
    assert months[1].end == date(2025, 12, 31) and months[2].end == date(2026, 1, 15)


def test_the_series_hold_one_value_per_period_and_know_the_target():
    periods = last_days(date(2026, 3, 2), 2)
    reports = [{"figures": [{"key": "online_application_rate", "name": "上网办理率", "value": 0.4, "target": 0.5,
                             "definition": "d"}]},
               {"figures": []}]
    out = {s.key: s for s in series(periods, reports)}
    assert list(out) == list(REFORM_FIGURES)
    s = out["online_application_rate"]
    assert s.values == [0.4, None] and s.latest == 0.4 and s.meets_target is False and s.target == 0.5


def test_the_return_notice_ticks_what_is_missing_and_what_the_last_notice_named():
    app = {"materials": [{"material_code": "id_card"}, {"material_code": "plan"}],
           "notice": [{"field": "materials.plan", "rule": "illegible", "message": "平面图不清晰"},
                      {"field": "form.phone", "rule": "required", "message": "请填写“联系电话”。"}]}
    item = {"materials": [{"code": "id_card", "name": "身份证"}, {"code": "plan", "name": "平面图"},
                          {"code": "lease", "name": "租赁合同"}, {"code": "photo", "name": "照片", "necessity": "optional"}]}
    rows = {r["code"]: r for r in prefilled_notice(app, item)}
    assert not rows["id_card"]["ticked"] and rows["id_card"]["given"]
    assert rows["plan"]["ticked"] and rows["plan"]["message"] == "平面图不清晰"
    assert rows["lease"]["ticked"] and rows["lease"]["message"] == "请补正“租赁合同”。"
    assert not rows["photo"]["ticked"]
    assert rows["form.phone"]["ticked"]


def test_the_session_cookie_round_trips_and_its_csrf_token_is_bound_to_it():
    s = Session.new("access.jwt", "refresh")
    back = Session.decode(s.encode())
    assert back is not None and (back.access_token, back.refresh_token, back.sid) == ("access.jwt", "refresh", s.sid)
    assert csrf_ok(back, s.csrf) and not csrf_ok(back, Session.new("access.jwt", "refresh").csrf)
    assert not csrf_ok(back, "") and not csrf_ok(back, None)
    for junk in (None, "", "%%%", "e30", "x" * 5000):
        assert Session.decode(junk) is None


@pytest.mark.parametrize("value,expected", [
    ("/console/desk", "/console/desk"), ("/console/cases/abc?x=1", "/console/cases/abc?x=1"),
    ("//evil.example/console/", None), ("https://evil.example/console/", None), ("/identity/v1/token", None),
    ("/console/\\evil", None), (None, None),
])
def test_after_sign_in_only_a_console_path_is_followed(value, expected):
    assert safe_next(value) == expected


FIELDS = [{"name": "applicant_name", "type": "text"}, {"name": "copies", "type": "integer"},
          {"name": "area", "type": "number"}, {"name": "urgent", "type": "boolean"},
          {"name": "kind", "type": "select", "options": ["首次", "补领"]}, {"name": "note", "type": "textarea"}]


def test_the_walk_in_form_is_sent_in_each_fields_type_blank_fields_left_out():
    posted = {"f.applicant_name": " 黄伯 ", "f.copies": "2", "f.area": "12.50", "f.kind": "补领", "f.note": "  ",
              "f.unknown": "ignored"}
    assert typed_form(FIELDS, posted) == {"applicant_name": "黄伯", "copies": 2, "area": 12.5, "urgent": False,
                                          "kind": "补领"}
    # What does not parse goes as typed: intake's check names it, the console does not guess.
    assert typed_form(FIELDS, {"f.copies": "两份", "f.area": "12亩", "f.urgent": "on"}) == {
        "copies": "两份", "area": "12亩", "urgent": True}
    assert typed_form(FIELDS, {"f.area": "3"})["area"] == 3


def test_the_walk_in_body_picks_up_at_the_clerks_point_unless_posted():
    posted = {"name": " 黄伯 ", "id_number": "44538119520304123x", "phone": "13712345678", "item_code": "C1",
              "f.applicant_name": "黄伯"}
    body = walk_in_body(posted, FIELDS, "LD-CENTRE")
    assert body["person"] == {"id_number": "44538119520304123X", "name": "黄伯", "phone": "13712345678"}
    assert body["delivery"] == {"method": "pickup", "service_point": "LD-CENTRE"}
    assert body["item_code"] == "C1" and body["form"]["applicant_name"] == "黄伯"
    post = walk_in_body({**posted, "delivery": "post", "address": " 罗城街道河堤路3号 "}, FIELDS, "LD-CENTRE")
    assert post["delivery"] == {"method": "post", "address": "罗城街道河堤路3号"}
    assert "service_point" not in post["delivery"]


def test_api_refusals_go_beside_their_input_in_chinese():
    errors = field_errors([
        {"field": "body.person.name", "rule": "registry_mismatch", "message": "姓名与人口库中该身份证号码登记的姓名不一致。"},
        {"field": "body.person.phone", "rule": "string_too_long", "message": "String should have at most 32 characters"},
        {"field": "form.copies", "rule": "integer", "message": "“份数”须为整数。"},
        {"field": "service_point", "rule": "service_point_not_offered", "message": "This item is not handled here."},
        {"field": "body.delivery.address", "rule": "missing", "message": "Field required"},
        {"field": "reference", "rule": "string_too_long", "message": "too long"},
        {"field": "materials.photo", "rule": "required", "message": "请提交“照片”。"},
    ])
    assert errors["person.name"] == ["姓名与人口库中该身份证号码登记的姓名不一致。"]
    assert errors["person.phone"] == ["内容过长。"]
    assert errors["form.copies"] == ["“份数”须为整数。"]
    assert errors["item_code"] == ["本窗口不受理该事项。"]
    assert errors["delivery"] == ["必填。"] and errors["consent"] == ["内容过长。"]
    assert errors[""] == ["请提交“照片”。"]  # no input holds a material: the top of the page
    assert chinese({"rule": "something_new", "message": "Unexpected"}) == "填写有误（something_new）。"
    assert chinese({"rule": "registry_mismatch", "message": "姓名不一致，请核对身份证。The name does not match."}) == \
        "姓名不一致，请核对身份证。"
    assert chinese({"message": "请提交“照片”（原件）。"}) == "请提交“照片”（原件）。"
    assert chinese({"message": "Only a window clerk files."}) == "平台未能办理：Only a window clerk files."


def test_the_desk_records_consent_itself_so_only_other_gaps_stop_it():
    notice = {"problems": [{"field": "consent", "rule": "required"},
                           {"field": "materials.photo", "rule": "required", "message": "请提交“照片”。"}]}
    assert [p["field"] for p in still_missing(notice)] == ["materials.photo"]
    assert still_missing({"problems": [{"field": "consent", "rule": "required"}]}) == []
    assert still_missing({}) == []
