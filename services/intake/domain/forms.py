"""Form values checked against the item's form fields (表单校验): the shape on every write (no unknown keys, no
value longer than its field allows, a bounded total), and each type's rule in the one-time notice and at
submit (a phone is a phone, an ID number has its check character, a choice is one of its options)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from stdnum.cn import ric, uscc

from services.intake.domain.findings import Finding

#: The longest value a field of each type may hold unless the field sets `max_length` (as catalog publishes).
DEFAULT_MAX_LENGTH: dict[str, int] = {
    "text": 200, "string": 200, "textarea": 2000, "number": 30, "integer": 20, "amount": 20, "date": 10,
    "phone": 20, "mobile": 20, "landline": 20, "id_number": 18, "credit_code": 18, "address": 300, "boolean": 5,
    "select": 100,
}
#: Whatever a field says, no value is longer (characters), and no form is larger (bytes of its JSON).
MAX_VALUE_LENGTH = 5000
MAX_FORM_BYTES = 64 * 1024

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
#: 区号 (3-4 digits from 0) + 7-8 digit number, optional extension; or a 5-digit public service number (12345).
_LANDLINE = re.compile(r"^0\d{2,3}-?[1-9]\d{6,7}(-\d{1,6})?$|^(1\d{4}|9\d{4})$")
_AMOUNT = re.compile(r"^\d{1,15}(\.\d{1,2})?$")
_USCC_ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")


def _fields(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: dict(f) for f in item.get("form_fields") or [] if isinstance(f, Mapping) and f.get("name")}


def _label(f: Mapping[str, Any]) -> str:
    return str(f.get("label") or f.get("name"))


def max_length(f: Mapping[str, Any]) -> int:
    given = f.get("max_length")
    if isinstance(given, int) and given > 0:
        return min(given, MAX_VALUE_LENGTH)
    return DEFAULT_MAX_LENGTH.get(str(f.get("type", "text")), 200)


def check_shape(item: Mapping[str, Any], form: Mapping[str, Any]) -> list[Finding]:
    """What a draft may hold at all, checked on create and on every change: only the item's fields, each a
    scalar no longer than its field allows, the whole bounded. Blank and type-invalid values are allowed
    here (a draft is work in progress); the notice names them."""
    fields = _fields(item)
    out: list[Finding] = []
    for key, value in form.items():
        f = fields.get(key)
        if f is None:
            out.append(Finding(f"form.{key}"[:200], "unknown_field", "该事项的申请表没有这个字段。"))
            continue
        if value is not None and not isinstance(value, str | int | float | bool):
            out.append(Finding(f"form.{key}", "type", f"“{_label(f)}”只能填写文字、数字或是/否。"))
            continue
        limit = max_length(f)
        if isinstance(value, str) and len(value) > limit:
            out.append(Finding(f"form.{key}", "max_length", f"“{_label(f)}”最多 {limit} 个字符。"))
    if not out and len(json.dumps(dict(form), ensure_ascii=False).encode()) > MAX_FORM_BYTES:
        out.append(Finding("form", "max_size", f"申请表内容不得超过 {MAX_FORM_BYTES // 1024} KB。"))
    return out


def known_only(item: Mapping[str, Any], form: Mapping[str, Any]) -> dict[str, Any]:
    """The values of a form that the item's (perhaps newer) version still asks for, e.g. when copying."""
    fields = _fields(item)
    return {k: v for k, v in form.items() if k in fields}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _compact(value: str) -> str:
    return re.sub(r"[\s\u3000]+", "", unicodedata.normalize("NFKC", value))


def _id_number_problem(v: str) -> str | None:
    v = v.upper()
    if len(v) != 18 or not v[:17].isdigit() or not (v[17].isdigit() or v[17] == "X"):
        return "须为 18 位公民身份号码（17 位数字加 1 位数字或 X）"
    try:
        ric.get_birth_date(v)
    except Exception:
        return "出生日期部分不是有效日期"
    # The region part is not checked against today's code list: a code in force when the number was assigned
    # stays valid inside it (GB 11643); stdnum's `validate` would reject such real numbers.
    if ric.calc_check_digit(v) != v[17]:
        return "校验码不正确（GB 11643）"
    return None


#: The same rule for an ID number outside a form (a walk-in's card, 窗口代录).
id_number_problem = _id_number_problem


def _credit_code_problem(v: str) -> str | None:
    v = v.upper()
    if len(v) != 18 or any(c not in _USCC_ALPHABET for c in v) or not v[2:8].isdigit():
        return "须为 18 位统一社会信用代码（不含 I、O、Z、S、V）"
    if uscc.calc_check_digit(v) != v[17]:
        return "校验码不正确（GB 32100）"
    return None


def value_problem(f: Mapping[str, Any], value: Any) -> tuple[str, str] | None:
    """(rule, message) for a non-blank value its field's type or rule refuses, or None."""
    kind = str(f.get("type", "text"))
    label = _label(f)
    if kind == "boolean":
        return None if isinstance(value, bool) else ("type", f"“{label}”须为是或否。")
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float) or (kind == "integer" and not isinstance(value, int)):
            return "type", f"“{label}”须为{'整数' if kind == 'integer' else '数字'}。"
        return None
    if kind == "amount":
        text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else _text(value)
        if text is None or not _AMOUNT.match(text.strip()):
            return "amount", f"“{label}”须为不小于 0 的金额（元），最多两位小数。"
        try:
            Decimal(text.strip())
        except InvalidOperation:
            return "amount", f"“{label}”须为金额。"
        return None
    text = _text(value)
    if text is None:
        return "type", f"“{label}”须为文字。"
    length = len(text.strip())
    if isinstance(f.get("min_length"), int) and length < f["min_length"]:
        return "min_length", f"“{label}”至少 {f['min_length']} 个字符。"
    if length > max_length(f):
        return "max_length", f"“{label}”最多 {max_length(f)} 个字符。"
    compact = _compact(text)
    if kind == "date":
        try:
            date.fromisoformat(compact)
        except ValueError:
            return "date", f"“{label}”须为日期（YYYY-MM-DD）。"
        return None
    if kind in ("phone", "mobile", "landline"):
        number = compact.replace("(", "").replace(")", "")
        for prefix in ("+86", "0086"):
            if number.startswith(prefix):
                number = number[len(prefix):]
        mobile, landline = bool(_MOBILE.match(number)), bool(_LANDLINE.match(number))
        if kind == "mobile" and not mobile:
            return "mobile", f"“{label}”须为 11 位手机号码（13-19 开头）。"
        if kind == "landline" and not landline:
            return "landline", f"“{label}”须为固定电话（区号-号码，如 0766-3822000）。"
        if kind == "phone" and not (mobile or landline):
            return "phone", f"“{label}”须为手机号码或固定电话（如 13800138000、0766-3822000）。"
        return None
    if kind == "id_number":
        problem = _id_number_problem(compact)
        return ("id_number", f"“{label}”{problem}。") if problem else None
    if kind == "credit_code":
        problem = _credit_code_problem(compact)
        return ("credit_code", f"“{label}”{problem}。") if problem else None
    if kind == "select":
        options = [str(o) for o in f.get("options") or []]
        if text not in options:
            return "enum", f"“{label}”须为以下之一：{'、'.join(options)}。"
        return None
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_values(item: Mapping[str, Any], form: Mapping[str, Any]) -> list[Finding]:
    """The notice's view of the form: every required field filled, every value valid by its type's rule,
    nothing the item does not ask for; all at once."""
    out: list[Finding] = []
    fields = _fields(item)
    for name, f in fields.items():
        value = form.get(name)
        if _blank(value):
            if f.get("required", True):
                out.append(Finding(f"form.{name}", "required", f"请填写“{_label(f)}”。"))
            continue
        problem = value_problem(f, value)
        if problem:
            out.append(Finding(f"form.{name}", *problem))
    out.extend(x for x in check_shape(item, form) if x.rule in ("unknown_field", "max_size"))
    return out
