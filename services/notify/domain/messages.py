"""Message kinds and their templates (消息模板): what each kind may say, in which channels, with which
placeholders. A message is a template rendered with a personalisation that holds only the placeholders the
kind declares, so no ID number or other personal datum can reach a message unless a template names it, and no
kind declares one."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

CHANNELS = ("inbox", "sms", "push")
#: Channels a person may switch per kind; the in-app inbox always receives (it is the record).
OPTIONAL_CHANNELS = ("sms", "push")

#: A single SMS holds 70 UCS-2 characters (Chinese); a long one is cut into parts of 67.
SMS_SINGLE = 70
SMS_PART = 67

PLACEHOLDER = re.compile(r"\(\(([a-z_]+)\)\)")
MAX_BODY = 1000
MAX_SMS = 300
MAX_TITLE = 60


@dataclass(frozen=True)
class Kind:
    code: str
    description: str
    #: Whom it addresses: the applicant, a department, or the supervisors.
    audience: str
    placeholders: tuple[str, ...]
    #: Urgent messages are sent in quiet hours too.
    urgent: bool
    #: The channels on for someone who chose nothing.
    default_channels: tuple[str, ...]
    inbox_title: str
    inbox_body: str
    sms: str
    push_title: str
    push_body: str
    sample: dict[str, str] = field(default_factory=dict)

    def template(self) -> dict[str, dict[str, str]]:
        return {"inbox": {"title": self.inbox_title, "body": self.inbox_body}, "sms": {"body": self.sms},
                "push": {"title": self.push_title, "body": self.push_body}}


_CASE = ("item_name", "receipt_number", "receipt_short")
_SAMPLE_CASE = {"item_name": "食品经营许可", "receipt_number": "11441781MB0000001A4010000030000202611260009",
                "receipt_short": "202611260009"}

KINDS: dict[str, Kind] = {k.code: k for k in (
    Kind("application_accepted", "受理：申请已受理，告知承诺办结日期。", "applicant",
         (*_CASE, "promised_on"), False, ("inbox", "sms", "push"),
         "申请已受理", "您申请的“((item_name))”已受理，受理号((receipt_number))，承诺于((promised_on))前办结。",
         "您申请的((item_name))已受理，受理号尾号((receipt_short))，承诺((promised_on))前办结。",
         "申请已受理", "((item_name))已受理，承诺((promised_on))前办结。",
         {**_SAMPLE_CASE, "promised_on": "2026年12月10日"}),
    Kind("application_returned", "补正告知：提交的申请需补正，附一次性告知的全部内容。", "applicant",
         (*_CASE, "reasons", "notice"), False, ("inbox", "sms", "push"),
         "申请需补正（一次性告知）",
         "您提交的“((item_name))”申请需补正后再受理：((reasons))。需补正的全部内容：((notice))",
         "您提交的((item_name))申请需补正，一次性告知已发至“我的消息”，请登录查看并补正。",
         "申请需补正", "((item_name))需补正：((reasons))",
         {**_SAMPLE_CASE, "reasons": "材料不齐全", "notice": "1. 请提交“经营场所平面布局图”。"}),
    Kind("application_not_accepted", "不予受理：申请不予受理，附理由和法律依据。", "applicant",
         (*_CASE, "reasons", "legal_basis"), False, ("inbox", "sms", "push"),
         "申请不予受理", "您提交的“((item_name))”申请不予受理。理由：((reasons))。依据：((legal_basis))。如有异议，可依法申请行政复议或提起行政诉讼。",
         "您提交的((item_name))申请不予受理，理由已发至“我的消息”，请登录查看。",
         "申请不予受理", "((item_name))不予受理：((reasons))",
         {**_SAMPLE_CASE, "reasons": "不属于本机关职权范围", "legal_basis": "《中华人民共和国行政许可法》第三十二条"}),
    Kind("correction_requested", "部门补正：审批部门要求补正材料。", "applicant",
         (*_CASE, "department_name", "reasons", "notice"), False, ("inbox", "sms", "push"),
         "部门要求补正材料",
         "((department_name))要求补正“((item_name))”（受理号((receipt_number))）：((reasons))。"
         "需补正的全部内容：((notice))",
         "((department_name))要求补正您的((item_name))申请，请登录“我的消息”查看并补正。",
         "部门要求补正", "((department_name))：((reasons))",
         {**_SAMPLE_CASE, "department_name": "罗定市卫生健康局", "reasons": "平面图未标明功能分区",
          "notice": "1. 经营场所平面图：未标明功能分区"}),
    Kind("application_decided", "办结：审批决定已作出。", "applicant",
         (*_CASE, "outcome_text", "reasons"), False, ("inbox", "sms", "push"),
         "审批结果：((outcome_text))", "您申请的“((item_name))”（受理号((receipt_number))）审批结果：((outcome_text))。((reasons))",
         "您申请的((item_name))审批结果：((outcome_text))，详情请登录查看。",
         "审批结果", "((item_name))：((outcome_text))",
         {**_SAMPLE_CASE, "outcome_text": "准予许可", "reasons": ""}),
    Kind("payment_due", "缴费：应缴费用与缴款码。", "applicant",
         (*_CASE, "amount", "payment_code", "due_on"), False, ("inbox", "sms", "push"),
         "请缴纳费用", "“((item_name))”应缴费用((amount))元，缴款码((payment_code))，请于((due_on))前缴纳。",
         "您的((item_name))应缴((amount))元，缴款码((payment_code))，请于((due_on))前缴纳。",
         "请缴纳费用", "((item_name))应缴((amount))元，((due_on))前缴纳。",
         {**_SAMPLE_CASE, "amount": "50.00", "payment_code": "4400123456789", "due_on": "2026年12月15日"}),
    Kind("ready_for_collection", "领取：结果已到选定的服务点，可领取。", "applicant",
         (*_CASE, "service_point_name"), False, ("inbox", "sms", "push"),
         "办理结果可领取", "您申请的“((item_name))”（受理号((receipt_number))）办理结果已到((service_point_name))，请携带身份证件领取。",
         "您的((item_name))办理结果已到((service_point_name))，请携带身份证件领取。",
         "结果可领取", "((item_name))可在((service_point_name))领取。",
         {**_SAMPLE_CASE, "service_point_name": "罗定市政务服务中心"}),
    Kind("application_delivered", "送达：办理结果已送达。", "applicant",
         (*_CASE, "method_text"), False, ("inbox", "sms", "push"),
         "办理结果已送达", "您申请的“((item_name))”（受理号((receipt_number))）办理结果已((method_text))送达。",
         "您申请的((item_name))办理结果已((method_text))送达，请查收。",
         "结果已送达", "((item_name))已((method_text))送达。",
         {**_SAMPLE_CASE, "method_text": "以电子证照"}),
    Kind("rating_invited", "评价邀请：请对本次办事评价（好差评）。", "applicant",
         _CASE, False, ("inbox", "push"),
         "请评价本次服务", "“((item_name))”已办结，欢迎对本次服务作出评价（好差评），您的评价将用于改进服务。",
         "您的((item_name))已办结，欢迎登录对本次服务评价。",
         "请评价", "请对((item_name))的办理服务评价。", dict(_SAMPLE_CASE)),
    Kind("certificate_expiring", "到期提醒：电子证照即将到期。", "applicant",
         ("certificate_name", "valid_until", "days_left"), False, ("inbox", "sms", "push"),
         "证照即将到期", "您的“((certificate_name))”将于((valid_until))到期（还有((days_left))天），请及时办理延续。",
         "您的((certificate_name))将于((valid_until))到期，请及时办理延续。",
         "证照即将到期", "((certificate_name))还有((days_left))天到期。",
         {"certificate_name": "食品经营许可证", "valid_until": "2027年1月31日", "days_left": "30"}),
    Kind("card_raised", "红黄牌：部门的办件亮牌，通知部门联系人。", "department",
         ("receipt_number", "receipt_short", "department_name", "colour_text", "reason"), False, ("inbox", "sms"),
         "效能监察((colour_text))", "((department_name))承办的办件（受理号((receipt_number))）被亮((colour_text))：((reason))。请尽快办理。",
         "((department_name))承办的办件(尾号((receipt_short)))被亮((colour_text))，请尽快办理。",
         "效能监察((colour_text))", "办件尾号((receipt_short))被亮((colour_text))。",
         {"receipt_number": _SAMPLE_CASE["receipt_number"], "receipt_short": "202611260009",
          "department_name": "罗定市卫生健康局", "colour_text": "黄牌", "reason": "即将超过承诺时限"}),
    Kind("supervisor_digest", "督办日报：前一日的红黄牌汇总。", "supervisor",
         ("day", "yellow", "red", "departments"), False, ("inbox", "sms"),
         "效能监察日报（((day))）", "((day))新亮黄牌((yellow))张、红牌((red))张。涉及部门：((departments))。",
         "((day))新亮黄牌((yellow))张、红牌((red))张，详情请登录督办平台。",
         "效能监察日报", "((day))黄牌((yellow))张、红牌((red))张。",
         {"day": "2026年11月29日", "yellow": "2", "red": "1", "departments": "罗定市卫生健康局"}),
    Kind("access_anomaly", "数据访问异常：通知数据管理部门联系人。", "department",
         ("department_name", "anomaly", "at"), True, ("inbox", "sms"),
         "数据共享访问异常", "((at))发现数据共享访问异常：((anomaly))。请((department_name))登录核查访问日志。",
         "((at))发现数据共享访问异常，请登录核查访问日志。",
         "数据访问异常", "((at))发现访问异常，请核查。",
         {"department_name": "罗定市政务服务数据管理局", "anomaly": "短时间内大量读取", "at": "11月30日 10:05"}),
)}

APPLICANT_KINDS = tuple(k for k, v in KINDS.items() if v.audience == "applicant")


class TemplateProblem(ValueError):
    """A template or a personalisation breaks a rule; `field` names where (as the API reports it)."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field, self.rule, self.message = field, rule, message


def placeholders_in(text: str) -> list[str]:
    return PLACEHOLDER.findall(text)


def check_template(kind: Kind, template: dict[str, dict[str, str]], *, field_prefix: str = "body.channels") -> None:
    """A template names only the kind's placeholders, has every channel, and fits the length bounds."""
    for channel in CHANNELS:
        parts = template.get(channel)
        if not isinstance(parts, dict):
            raise TemplateProblem(f"{field_prefix}.{channel}", "required", f"The {channel} template is missing.")
        expected = ("title", "body") if channel != "sms" else ("body",)
        for extra in set(parts) - set(expected):
            raise TemplateProblem(f"{field_prefix}.{channel}.{extra}", "unknown_field",
                                  f"The {channel} template has only: {', '.join(expected)}.")
        for part in expected:
            text = parts.get(part)
            where = f"{field_prefix}.{channel}.{part}"
            if not isinstance(text, str) or not text.strip():
                raise TemplateProblem(where, "required", f"The {channel} {part} must not be empty.")
            bound = MAX_TITLE if part == "title" else MAX_SMS if channel == "sms" else MAX_BODY
            if len(text) > bound:
                raise TemplateProblem(where, "max_length", f"At most {bound} characters.")
            if "((" in PLACEHOLDER.sub("", text) or "))" in PLACEHOLDER.sub("", text):
                raise TemplateProblem(where, "placeholder_syntax",
                                      "A placeholder is written ((name)) with a lowercase name.")
            for name in placeholders_in(text):
                if name not in kind.placeholders:
                    raise TemplateProblem(where, "unknown_placeholder",
                                          f"(({name})) is not a placeholder of {kind.code}; "
                                          f"allowed: {', '.join(kind.placeholders)}.")


def render(text: str, personalisation: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        return personalisation.get(m.group(1), "")

    return PLACEHOLDER.sub(sub, text)


def check_personalisation(kind: Kind, values: dict[str, object], *, field_prefix: str = "body.personalisation"
                          ) -> dict[str, str]:
    """Only the kind's placeholders, as text; a missing one is an error (a preview shows what would be sent)."""
    for name in values:
        if name not in kind.placeholders:
            raise TemplateProblem(f"{field_prefix}.{name}", "unknown_placeholder",
                                  f"{name} is not a placeholder of {kind.code}.")
    out: dict[str, str] = {}
    for name in kind.placeholders:
        if name not in values:
            raise TemplateProblem(f"{field_prefix}.{name}", "required", f"The placeholder {name} needs a value.")
        out[name] = str(values[name])
    return out


def sms_parts(text: str) -> int:
    """How many messages a text is sent as (carriers cut long Chinese texts into parts of 67)."""
    n = len(text)
    return 1 if n <= SMS_SINGLE else math.ceil(n / SMS_PART)


@dataclass(frozen=True)
class Rendered:
    channel: str
    title: str | None
    body: str


def render_all(template: dict[str, dict[str, str]], personalisation: dict[str, str], *, signature: str
               ) -> dict[str, Rendered]:
    out: dict[str, Rendered] = {}
    for channel in CHANNELS:
        parts = template[channel]
        body = render(parts["body"], personalisation)
        if channel == "sms":
            out[channel] = Rendered(channel, None, signature + body)
        else:
            out[channel] = Rendered(channel, render(parts["title"], personalisation), body)
    return out


def receipt_short(receipt_number: str | None) -> str:
    """The date and serial at the end of a receipt number: enough to recognise a case in an SMS."""
    return (receipt_number or "")[-12:]


def notice_text(items: list[str]) -> str:
    """The one-time notice (一次性告知) as one text: every item, numbered."""
    items = [i.strip() for i in items if i and i.strip()]
    return "；".join(f"{n}. {text}" for n, text in enumerate(items, 1)) or "见受理部门说明"
