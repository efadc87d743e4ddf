"""Forms checked by type (表单校验): the rules alone, then through the running service on create, PATCH, check
and submit."""

from __future__ import annotations

import pytest

from services.intake.domain import forms
from services.intake.tests import factories as f
from services.intake.tests.test_applications import BASE, commit, draft, fields, submit, upload

TYPED_FIELDS = [
    {"name": "shop_name", "label": "店名", "type": "text", "required": True, "max_length": 20},
    {"name": "address", "label": "经营场所", "type": "address", "required": True},
    {"name": "phone", "label": "联系电话", "type": "phone", "required": True},
    {"name": "mobile", "label": "手机", "type": "mobile", "required": False},
    {"name": "operator_id", "label": "经营者身份证号", "type": "id_number", "required": False},
    {"name": "credit_code", "label": "统一社会信用代码", "type": "credit_code", "required": False},
    {"name": "opening_on", "label": "开业日期", "type": "date", "required": False},
    {"name": "capital", "label": "注册资本", "type": "amount", "required": False},
    {"name": "category", "label": "经营类别", "type": "select", "required": False, "options": ["热食类", "冷食类"]},
]
GOOD = {"shop_name": "罗城小厨", "address": "兴华路1号", "phone": "0766-3822000", "mobile": "+86 138 0013 8000",
        "operator_id": "445381199001011230", "credit_code": "91445381MA59MBADQJ", "opening_on": "2026-12-01",
        "capital": "100000.50", "category": "热食类"}


def typed_item(**kw):
    return f.food_permit_item(form_fields=TYPED_FIELDS, **kw)


def test_every_type_accepts_its_valid_values():
    assert forms.check_values(typed_item(), GOOD) == []


@pytest.mark.parametrize(("name", "value", "rule"), [
    ("phone", "abc", "phone"), ("phone", "1380013800", "phone"), ("mobile", "0766-3822000", "mobile"),
    ("operator_id", "445381199001011231", "id_number"), ("operator_id", "44538119901301123X", "id_number"),
    ("credit_code", "91445381MA59MBADQK", "credit_code"), ("credit_code", "91445381MA59MBADQI", "credit_code"),
    ("opening_on", "2026-02-30", "date"), ("capital", "-1", "amount"), ("capital", "1.234", "amount"),
    ("category", "烧烤", "enum"), ("shop_name", "店" * 21, "max_length"), ("phone", 13800138000, "type"),
])
def test_a_value_its_type_refuses_is_named_with_the_rule(name, value, rule):
    found = forms.check_values(typed_item(), {**GOOD, name: value})
    assert [(x.field, x.rule) for x in found] == [(f"form.{name}", rule)]


def test_the_shape_check_refuses_unknown_keys_nested_values_and_over_long_text_but_not_blanks():
    item = typed_item()
    found = forms.check_shape(item, {"phone": "", "nope": "x", "address": {"a": 1}, "shop_name": "x" * 21})
    assert {(x.field, x.rule) for x in found} == {
        ("form.nope", "unknown_field"), ("form.address", "type"), ("form.shop_name", "max_length")}
    assert forms.check_shape(item, {"phone": "abc"}) == []  # a draft may hold what the notice will name


def test_a_text_field_without_a_limit_is_held_to_its_type_default():
    item = f.food_permit_item()
    assert [x.rule for x in forms.check_shape(item, {"shop_name": "x" * 201})] == ["max_length"]
    assert [x.rule for x in forms.check_shape(item, {"shop_name": "x" * 200})] == []


async def test_create_and_patch_refuse_unknown_keys_and_huge_values(intake, tokens):
    item = await intake.publish_item(typed_item())
    me = f.citizen(tokens)
    body = {"item_code": item["code"], "channel": "online", "service_point": "LD-CENTRE"}
    r = await intake.client.post(f"{BASE}/applications", headers=me,
                                 json={**body, "form": {"shop_name": "x" * 300_000, "k1": "v"}})
    assert r.status_code == 422 and fields(r.json()) == {("form.shop_name", "max_length"), ("form.k1", "unknown_field")}
    r = await intake.client.post(f"{BASE}/applications", headers=me,
                                 json={**body, "form": {f"k{i}": "v" for i in range(20_000)}})
    assert r.status_code == 422
    app = await draft(intake, me, item["code"], form={"shop_name": "罗城小厨"})
    url = f"{BASE}/applications/{app['id']}"
    tag = (await intake.client.get(url, headers=me)).headers["ETag"]
    r = await intake.client.patch(url, headers={**me, "If-Match": tag}, json={"form": {"extra": "y" * 5000}})
    assert r.status_code == 422 and fields(r.json()) == {("form.extra", "unknown_field")}
    r = await intake.client.patch(url, headers={**me, "If-Match": tag}, json={"form": {"address": "a" * 301}})
    assert r.status_code == 422 and fields(r.json()) == {("form.address", "max_length")}
    got = (await intake.client.get(url, headers=me)).json()
    assert got["form"] == {"shop_name": "罗城小厨"}
    r = await intake.client.patch(url, headers={**me, "If-Match": tag}, json={"form": {"shop_name": None, "phone": "1"}})
    assert r.status_code == 200 and r.json()["form"] == {"phone": "1"}  # a null clears a field


async def test_a_phone_of_letters_is_in_the_notice_and_refused_at_submit(intake, tokens):
    item = await intake.publish_item(typed_item())
    me = f.citizen(tokens)
    app = await draft(intake, me, item["code"], form={**GOOD, "phone": "abc", "operator_id": "445381199001011231"})
    assert (await upload(intake, me, app["id"], "M03")).status_code == 201
    assert (await commit(intake, me, app["id"])).status_code == 201
    notice = (await intake.client.post(f"{BASE}/applications/{app['id']}/check", headers=me)).json()
    assert {(p["field"], p["rule"]) for p in notice["problems"]} == {("form.phone", "phone"),
                                                                     ("form.operator_id", "id_number")}
    r = await submit(intake, me, app["id"], key="typed-1")
    assert r.status_code == 422 and fields(r.json()) == {("form.phone", "phone"), ("form.operator_id", "id_number")}
    url = f"{BASE}/applications/{app['id']}"
    tag = (await intake.client.get(url, headers=me)).headers["ETag"]
    r = await intake.client.patch(url, headers={**me, "If-Match": tag},
                                  json={"form": {"phone": "13800138000", "operator_id": GOOD["operator_id"]}})
    assert r.status_code == 200, r.text
    assert (await submit(intake, me, app["id"], key="typed-2")).status_code == 200
