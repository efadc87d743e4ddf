"""The errors a use case or a domain rule raises: RFC 9457 problem details as plain exceptions.

This module knows no web framework, so `domain/` and `service.py` modules raise these freely;
`shared/http_errors.py` is the one adapter that renders them (422 included) as `application/problem+json`.

**Language.** Every answer is in one language, chosen by the request's `Accept-Language`: Chinese (`zh-CN`) by
default, the platform's public being Chinese, English for `en`. A problem's title comes from `TITLES` (by slug,
both languages) unless the call site names one. A detail is written once, in whichever language the call site
chose (domain rules mostly write Chinese); a call site may give the other too, and should for anything a
foreigner or a department's developer will read:

    raise Conflict("该申请已受理，不能撤回。", detail_en="The application is accepted; it can no longer be withdrawn.")
    raise Unauthorized("The token has expired.", detail_zh="令牌已过期，请重新登录。")

A text given in one language only is answered as it is in the other (better a Chinese sentence than none).
Field errors: `invalid(field, rule, message, message_en=...)` likewise (a rule's own words, as given when the
other language is missing); pydantic's request-validation errors are worded in Chinese from `RULE_MESSAGES_ZH`
(by error type: missing, string_too_long, greater_than, enum, json_invalid, extra_forbidden …)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://yimen.gov.cn/problems/"

ZH, EN = "zh-CN", "en"
LANGUAGES = (ZH, EN)
DEFAULT_LANGUAGE = ZH
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def is_chinese(text: str | None) -> bool:
    """Whether a text is written in Chinese (it holds a Han character)."""
    return bool(text) and _CJK.search(text or "") is not None


def negotiate_language(accept_language: str | None) -> str:
    """`zh-CN` or `en` for an `Accept-Language` header (RFC 9110 §12.5.4: the highest q wins, ties in order);
    Chinese when absent, `*`, or naming neither."""
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        lang = ZH if tag == "zh" or tag.startswith("zh-") else EN if tag == "en" or tag.startswith("en-") else None
        if lang is not None and q > best_q:
            best, best_q = lang, q
    return best


#: The title of every problem type, by slug: (Chinese, English).
TITLES: dict[str, tuple[str, str]] = {
    # framework and platform
    "bad-request": ("请求有误", "Bad request"),
    "unauthorized": ("需要登录认证", "Authentication required"),
    "forbidden": ("无权进行此操作", "Not allowed"),
    "not-found": ("未找到", "Not found"),
    "method-not-allowed": ("不支持此请求方法", "Method not allowed"),
    "not-acceptable": ("无法提供所要求的格式", "Not acceptable"),
    "conflict": ("与当前状态冲突", "Conflict with the current state"),
    "precondition-failed": ("资源已被修改（ETag 不匹配）", "The resource has changed (ETag mismatch)"),
    "precondition-required": ("修改此资源须提供 If-Match", "If-Match is required to change this resource"),
    "payload-too-large": ("请求内容过大", "Request body too large"),
    "unsupported-media-type": ("不支持的内容类型", "Unsupported media type"),
    "too-many-requests": ("请求过于频繁", "Too many requests"),
    "validation": ("请求不符合规则", "The request breaks one or more rules"),
    "internal": ("内部错误", "Internal error"),
    "unavailable": ("服务暂不可用", "Service unavailable"),
    "time-budget-exceeded": ("请求处理超时", "The request took too long"),
    "malformed-request": ("请求格式错误", "Malformed request"),
    "request-timeout": ("请求超时", "Request timeout"),
    "upstream-timeout": ("服务响应超时", "Service timed out"),
    "gateway-error": ("网关转发失败", "Bad gateway"),
    "error": ("错误", "Error"),
    # tokens and accounts
    "invalid-token": ("令牌无效", "Invalid token"),
    "token-expired": ("令牌已过期", "Token expired"),
    "token-revoked": ("令牌已被撤销", "Token revoked"),
    "invalid-grant": ("登录凭据无效", "The grant is not valid"),
    "invalid-client": ("客户端认证失败", "Client authentication failed"),
    "unsupported-grant-type": ("不支持的授权类型", "Unsupported grant type"),
    "refresh-token-reused": ("刷新令牌被重复使用", "Refresh token reused"),
    "wrong-password": ("密码错误", "Wrong password"),
    "account-disabled": ("账户已停用", "Account disabled"),
    "account-locked": ("账户暂时锁定", "Account temporarily locked"),
    "assurance-level-too-low": ("实名核验等级不足", "Identity assurance level too low"),
    "already-verified": ("已完成核验", "Already verified"),
    "person-exists": ("该人员已注册", "The person is already registered"),
    "staff-exists": ("该工作人员已存在", "The staff member already exists"),
    "organisation-exists": ("该组织已登记", "The organisation is already registered"),
    "not-legal-representative": ("不是法定代表人", "Not the legal representative"),
    "not-an-agent": ("不是该组织的经办人", "Not an agent of the organisation"),
    "delegation": ("委托无效", "Delegation not valid"),
    "delegation-unusable": ("委托不可使用", "The delegation cannot be used"),
    "registry-name-mismatch": ("姓名与基础库不一致", "The name does not match the registry"),
    "registry-unavailable": ("基础库暂时无法访问", "The base registry cannot be reached"),
    "identity-unavailable": ("统一身份认证服务暂时无法访问", "Identity cannot be reached"),
    "not-identity-service": ("仅限统一身份认证服务调用", "Only the identity service may call this"),
    # catalogue
    "item-not-found": ("未找到该事项", "Item not found"),
    "item-unknown": ("事项不存在", "Unknown item"),
    "item-exists": ("事项已存在", "The item already exists"),
    "version-not-found": ("未找到该版本", "Version not found"),
    "not-published": ("未发布", "Not published"),
    "not-editable": ("不可修改", "Not editable"),
    "department-not-found": ("未找到该部门", "Department not found"),
    "service-point-not-found": ("未找到该服务网点", "Service point not found"),
    # applications, tasks, decisions
    "illegal-transition": ("当前状态下不能进行此操作", "Not possible in the current state"),
    "draft-exists": ("已有草稿", "A draft already exists"),
    "no-draft": ("没有草稿", "No draft"),
    "not-a-walk-in": ("不是窗口代录的申请", "Not a walk-in application"),
    "not-accepted": ("尚未受理", "Not accepted"),
    "delivery-fixed": ("送达方式已确定，不能更改", "The delivery is already fixed"),
    "holder-not-in-application": ("证照持有人不是本申请的当事人", "The holder is not a party to the application"),
    "idempotency-in-flight": ("相同幂等键的请求正在处理", "A request with this Idempotency-Key is in progress"),
    "no-open-task": ("没有待办任务", "No open task"),
    "other-department": ("属于其他部门", "Belongs to another department"),
    "already-answered": ("已答复", "Already answered"),
    "not-answered": ("尚未答复", "Not answered yet"),
    "not-called-back": ("尚未回访", "Not called back yet"),
    "already-rated": ("已评价", "Already rated"),
    "not-open": ("未开放", "Not open"),
    "slot-exists": ("该时段已存在", "The slot already exists"),
    "slot-full": ("该时段已约满", "The slot is full"),
    "already-booked": ("已预约", "Already booked"),
    "payments-not-configured": ("支付未配置", "Payments are not configured"),
    "bad-signature": ("签名无效", "Bad signature"),
    "invalid-signature": ("签名无效", "Invalid signature"),
    "invalid-request": ("请求无效", "Invalid request"),
    "department-not-registered": ("部门尚未登记", "Department not registered yet"),
    # data sharing
    "certificate-not-found": ("未找到该电子证照", "Certificate not found"),
    "already-revoked": ("已撤销", "Already revoked"),
    "not-holder": ("不是证照持有人", "Not the holder"),
    "purpose-not-established": ("用途未确立", "The purpose is not established"),
    "source-not-named": ("未指明数据来源", "The source is not named"),
    "record-not-found": ("未找到该记录", "Record not found"),
    "dataset-not-found": ("未找到该数据集", "Dataset not found"),
    "import-rejected": ("存在不合规记录，未导入任何数据", "Rows rejected; nothing imported"),
}

#: Chinese messages of pydantic's error types (and of the platform's own pydantic validators: `date_range`,
#: `control_character`), `{…}` filled from the error's context, for request-validation errors.
RULE_MESSAGES_ZH: dict[str, str] = {
    "missing": "必须填写此项。",
    "string_too_short": "至少 {min_length} 个字符。",
    "string_too_long": "最多 {max_length} 个字符。",
    "too_short": "至少 {min_length} 项。",
    "too_long": "最多 {max_length} 项。",
    "greater_than": "须大于 {gt}。",
    "greater_than_equal": "须大于或等于 {ge}。",
    "less_than": "须小于 {lt}。",
    "less_than_equal": "须小于或等于 {le}。",
    "multiple_of": "须为 {multiple_of} 的倍数。",
    "int_parsing": "须为整数。",
    "int_type": "须为整数。",
    "int_from_float": "须为整数，不能带小数。",
    "float_parsing": "须为数字。",
    "float_type": "须为数字。",
    "finite_number": "须为有限的数字。",
    "decimal_parsing": "须为数字。",
    "decimal_type": "须为数字。",
    "decimal_max_digits": "最多 {max_digits} 位数字。",
    "decimal_max_places": "最多 {decimal_places} 位小数。",
    "bool_parsing": "须为 true 或 false。",
    "bool_type": "须为 true 或 false。",
    "string_type": "须为文本。",
    "string_unicode": "须为有效的 Unicode 文本。",
    "string_pattern_mismatch": "格式不正确（须符合 {pattern}）。",
    "enum": "须为以下之一：{expected}。",
    "literal_error": "须为以下之一：{expected}。",
    "json_invalid": "不是有效的 JSON：{error}。",
    "json_type": "须为 JSON 文本。",
    "extra_forbidden": "不接受此字段。",
    "dict_type": "须为对象。",
    "model_type": "须为对象。",
    "model_attributes_type": "须为对象。",
    "list_type": "须为数组。",
    "tuple_type": "须为数组。",
    "set_type": "须为数组。",
    "date_parsing": "须为日期，格式 YYYY-MM-DD。",
    "date_type": "须为日期，格式 YYYY-MM-DD。",
    "date_from_datetime_parsing": "须为日期，格式 YYYY-MM-DD。",
    "date_from_datetime_inexact": "须为日期，不能带时间。",
    "datetime_parsing": "须为时间，格式 RFC 3339（如 2026-12-01T09:00:00+08:00）。",
    "datetime_type": "须为时间，格式 RFC 3339（如 2026-12-01T09:00:00+08:00）。",
    "datetime_from_date_parsing": "须为时间，格式 RFC 3339（如 2026-12-01T09:00:00+08:00）。",
    "timezone_aware": "须带时区。",
    "timezone_naive": "不能带时区。",
    "time_parsing": "须为时刻，格式 HH:MM。",
    "time_type": "须为时刻，格式 HH:MM。",
    "uuid_parsing": "须为 UUID。",
    "uuid_type": "须为 UUID。",
    "url_parsing": "须为有效的网址。",
    "url_type": "须为有效的网址。",
    "url_scheme": "网址协议须为 {expected_schemes}。",
    "url_too_long": "网址最多 {max_length} 个字符。",
    "bytes_type": "须为二进制内容。",
    "union_tag_invalid": "类型 {tag} 不是 {expected_tags} 之一。",
    "union_tag_not_found": "缺少类型字段 {discriminator}。",
    "value_error": "取值无效。",
    "assertion_error": "取值无效。",
    "date_range": "须在 {min_year}–{max_year} 年之间。",
    "control_character": "不能包含控制字符。",
}


def rule_message_zh(rule: str, context: dict[str, Any] | None = None) -> str | None:
    """The Chinese message of a rule, filled from `context`; None when the rule has none or it needs more."""
    template = RULE_MESSAGES_ZH.get(rule)
    if template is None:
        return None
    ctx = dict(context or {})
    if isinstance(ctx.get("expected"), str):
        ctx["expected"] = ctx["expected"].replace(" or ", "、").replace("', '", "'、'")
    try:
        return template.format_map(ctx)
    except (KeyError, IndexError, ValueError):
        return None if "{" in template else template


class FieldError(BaseModel):
    """One broken rule on one field."""

    field: str = Field(description="Dotted path of the field, e.g. `body.id_number` or `materials.2.file`.")
    rule: str = Field(description="Stable machine name of the rule, e.g. `check_digit`, `missing`, `max_length`.")
    message: str = Field(description="What is wrong, in words a person can act on, in the answer's language "
                                     "(`Content-Language`).")
    #: The same message in other languages (`{"en": …}`), not part of the body: `in_language` picks.
    _texts: dict[str, str] = PrivateAttr(default_factory=dict)
    _context: dict[str, Any] = PrivateAttr(default_factory=dict)
    #: Raised by the framework (pydantic's request validation), not by a rule of ours: its message is pydantic's
    #: English, and `RULE_MESSAGES_ZH` words its rule in Chinese. A rule of ours gives its own words instead.
    _framework: bool = PrivateAttr(default=False)

    def with_text(self, lang: str, message: str | None) -> FieldError:
        if message:
            self._texts[lang] = message
        return self

    def in_language(self, lang: str) -> FieldError:
        """This error with its message in `lang` (as given when there is no such text)."""
        if lang in self._texts:
            message = self._texts[lang]
        elif lang == ZH and self._framework and not is_chinese(self.message):
            message = rule_message_zh(self.rule, self._context) or self.message
        else:
            message = self.message
        return FieldError(field=self.field, rule=self.rule, message=message)


class ProblemDetail(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class Problem(Exception):
    """An error with a stable `type`; subclasses set the defaults, call sites give the detail."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        slug: str | None = None,
        title: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
        detail_en: str | None = None,
        detail_zh: str | None = None,
        title_en: str | None = None,
        title_zh: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        if slug:
            self.slug = slug
        self.given_title = title
        if title:
            self.title = title
        if status:
            self.status = status
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra
        self.details = {k: v for k, v in ((EN, detail_en), (ZH, detail_zh)) if v}
        self.titles = {k: v for k, v in ((EN, title_en), (ZH, title_zh)) if v}

    def title_in(self, lang: str) -> str:
        if lang in self.titles:
            return self.titles[lang]
        if self.given_title and (is_chinese(self.given_title) == (lang == ZH)):
            return self.given_title
        if self.slug in TITLES:
            return TITLES[self.slug][0 if lang == ZH else 1]
        return self.title

    def detail_in(self, lang: str) -> str | None:
        return self.details.get(lang) or self.detail or self.details.get(EN if lang == ZH else ZH)

    def body(self, instance: str | None = None, lang: str | None = None) -> dict[str, Any]:
        """The problem+json body; in `lang` (`zh-CN`, `en`) where texts exist, as given when `lang` is None."""
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": self.title if lang is None else self.title_in(lang),
            "status": self.status,
        }
        detail = self.detail if lang is None else self.detail_in(lang)
        if detail:
            body["detail"] = detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [(e if lang is None else e.in_language(lang)).model_dump() for e in self.errors]
        body.update(self.extra)
        return body


class BadRequest(Problem):
    pass


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict with the current state"


class PreconditionFailed(Problem):
    status, slug, title = 412, "precondition-failed", "The resource has changed (ETag mismatch)"


class PreconditionRequired(Problem):
    status, slug, title = 428, "precondition-required", "If-Match is required to change this resource"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class TooManyRequests(Problem):
    status, slug, title = 429, "too-many-requests", "Too many requests"


class ValidationProblem(Problem):
    """A 422 raised by domain rules, with the same shape as pydantic's request validation."""

    status, slug, title = 422, "validation", "The request breaks one or more rules"

    def __init__(self, errors: list[FieldError] | FieldError, detail: str | None = None, **kw: Any) -> None:
        errs = errors if isinstance(errors, list) else [errors]
        self.summarised = detail is None
        super().__init__(detail or "; ".join(f"{e.field}: {e.message}" for e in errs), errors=errs, **kw)

    def detail_in(self, lang: str) -> str | None:
        if self.summarised and self.errors and lang not in self.details:
            # The summary of the field errors, in the same language as they are.
            return ("；" if lang == ZH else "; ").join(
                f"{e.field}: {e.in_language(lang).message}" for e in self.errors)
        return super().detail_in(lang)


def invalid(field: str, rule: str, message: str, *, message_en: str | None = None,
            message_zh: str | None = None) -> ValidationProblem:
    error = FieldError(field=field, rule=rule, message=message).with_text(EN, message_en).with_text(ZH, message_zh)
    return ValidationProblem(error)
