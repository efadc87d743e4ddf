"""Walk-in filing at the desk (窗口代录): the form a clerk fills for the person at the counter turned into the
body of `POST /intake/v1/walk-ins`, and the APIs' refusals put back beside the inputs they are about, in Chinese.
No I/O: the page (api/desk_walkin.py) does the calls."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

CJK = re.compile(r"[\u4e00-\u9fff]")
#: A bilingual message (Chinese, then the same in English): the clerk reads the Chinese half.
ENGLISH_TAIL = re.compile(r"^(.*[\u4e00-\u9fff。！？；）”])\s*[A-Za-z][^\u4e00-\u9fff]*$", re.S)

#: What a rule means, for the few refusals whose message is not already Chinese (request validation, the
#: channel and audience checks).
RULE_TEXT = {
    "required": "必填。", "missing": "必填。", "string_too_long": "内容过长。", "string_too_short": "内容过短。",
    "max_length": "内容过长。", "min_length": "内容过短。", "string_pattern_mismatch": "格式不正确。",
    "id_number": "身份证号码不正确（18 位，末位校验码）。", "registry_mismatch": "与人口库登记信息不一致，请核对身份证。",
    "card_mismatch": "与该身份证号码的账户信息不一致，请核对身份证。", "unknown_item": "本窗口不办理该事项。",
    "channel_not_offered": "该事项不在窗口办理。", "service_point_not_offered": "本窗口不受理该事项。",
    "audience": "该事项不面向个人办理。", "phone": "电话号码不正确。", "mobile": "手机号码不正确。",
    "literal_error": "请从列表中选择。", "enum": "请从列表中选择。", "extra_forbidden": "不能填写该项。",
    "unknown_field": "该事项的申请表没有这个字段。", "type": "格式不正确。", "date": "日期格式应为 年-月-日。",
    "int_parsing": "请填写整数。", "float_parsing": "请填写数字。", "number": "请填写数字。", "amount": "金额格式不正确。",
}

#: API field paths (`body.person.name`, `form.phone`, …) → the name of the input on the desk's form.
PREFIXES = (("body.person.", "person."), ("person.", "person."), ("body.form.", "form."), ("form.", "form."),
            ("body.delivery", "delivery"), ("delivery", "delivery"), ("body.item_code", "item_code"),
            ("item_code", "item_code"), ("consent", "consent"), ("body.reference", "consent"),
            ("reference", "consent"), ("channel", "item_code"), ("service_point", "item_code"),
            ("applicant", "item_code"))


def chinese(error: Mapping[str, Any]) -> str:
    """The message a clerk reads: the API's own when it is Chinese, otherwise what its rule means."""
    message = str(error.get("message") or "")
    if CJK.search(message):
        bilingual = ENGLISH_TAIL.match(message)
        return bilingual.group(1) if bilingual else message
    rule = str(error.get("rule") or "")
    if not rule:
        return f"平台未能办理：{message}" if message else "平台未能办理，请稍后重试。"
    return RULE_TEXT.get(rule, f"填写有误（{rule}）。")


def input_of(field: str) -> str:
    """The input an API's field path is about; `""` (the page's top) for what no input holds (materials…)."""
    for prefix, name in PREFIXES:
        if field == prefix.rstrip(".") or field.startswith(prefix):
            if name.endswith("."):
                rest = field[len(prefix):].split(".", 1)[0]
                return name + rest if rest else ""
            return name
    return ""


def field_errors(errors: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each input's messages; the key `""` collects those about nothing on the form."""
    out: dict[str, list[str]] = {}
    for e in errors:
        out.setdefault(input_of(str(e.get("field") or "")), []).append(chinese(e))
    return out


def typed_form(fields: Iterable[Mapping[str, Any]], posted: Mapping[str, str]) -> dict[str, Any]:
    """The item's form from the posted `f.<name>` inputs, each value in its field's type. A blank field is left
    out (the one-time notice names it if required); a number that does not parse is sent as typed, so that the
    API's check names it rather than the console guessing."""
    out: dict[str, Any] = {}
    for f in fields:
        name, kind = f.get("name"), f.get("type", "text")
        if not name:
            continue
        raw = posted.get(f"f.{name}")
        if kind == "boolean":
            out[name] = raw == "on"
            continue
        value = (raw or "").strip()
        if not value:
            continue
        if kind == "integer" and re.fullmatch(r"-?\d{1,18}", value):
            out[name] = int(value)
        elif kind == "number":
            try:
                number = Decimal(value)
                out[name] = int(number) if number == number.to_integral_value() else float(number)
            except InvalidOperation:
                out[name] = value
        else:
            out[name] = value
    return out


def walk_in_body(posted: Mapping[str, str], fields: Iterable[Mapping[str, Any]], point: str | None) -> dict[str, Any]:
    """`POST /intake/v1/walk-ins` from the desk's form: pick-up at the clerk's own point unless post is chosen."""
    method = posted.get("delivery") or "pickup"
    delivery: dict[str, Any] = {"method": method}
    if method == "pickup" and point:
        delivery["service_point"] = point
    elif method == "post":
        delivery["address"] = (posted.get("address") or "").strip()
    return {"person": {"id_number": (posted.get("id_number") or "").strip().upper(),
                       "name": (posted.get("name") or "").strip(), "phone": (posted.get("phone") or "").strip()},
            "item_code": posted.get("item_code") or "", "form": typed_form(fields, posted), "delivery": delivery}


def still_missing(notice: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The one-time notice's problems other than the consent the desk records itself before submitting."""
    return [p for p in notice.get("problems") or [] if p.get("field") != "consent"]
