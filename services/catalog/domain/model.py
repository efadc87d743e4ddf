"""The catalogue's vocabulary: an item version (事项) with its service guide (办事指南), materials, process
definition, result and fees. Pure pydantic models; the save-time rules live in `rules.py`."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: 事项类型 (item kinds) by their national two-digit code.
KIND_NAMES: dict[str, str] = {
    "01": "行政许可",
    "02": "行政处罚",
    "03": "行政强制",
    "04": "行政征收",
    "05": "行政给付",
    "06": "行政检查",
    "07": "行政确认",
    "08": "行政奖励",
    "09": "行政裁决",
    "10": "其他行政权力",
    "20": "公共服务",
}

#: The reform plan's themes (主题分类).
THEMES: dict[str, str] = {
    "education": "公共教育",
    "employment": "劳动就业",
    "social_security": "社会保障",
    "health": "医疗卫生",
    "housing": "住房保障",
    "culture_sport": "文化体育",
    "poverty_relief": "扶贫济困",
    "startup": "创业创新",
    "business": "市场准入与经营",
    "civil_affairs": "婚姻家庭与民政",
    "household": "户籍与身份",
    "environment": "生态环境",
    "safety": "安全生产与消防",
    "construction": "工程建设",
    "elderly": "养老服务",
    "birth": "生育收养",
}

Kind = Literal["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "20"]
Audience = Literal["natural_person", "legal_person"]
Channel = Literal["online", "mobile", "kiosk", "window", "post"]
#: The keys of `THEMES` (a test keeps the two equal), so a filter by theme is an enum in the API.
Theme = Literal[
    "education", "employment", "social_security", "health", "housing", "culture_sport", "poverty_relief", "startup",
    "business", "civil_affairs", "household", "environment", "safety", "construction", "elderly", "birth",
]
CaseKind = Literal["immediate", "promised"]
#: The three levels of the service-point tree: city centre, town/street (镇街), village/community (村居).
PointLevel = Literal["city", "town", "village"]
Necessity = Literal["required", "optional", "conditional", "may_follow"]
MaterialSource = Literal["applicant", "certificate", "registry", "own_certificate"]
LimitUnit = Literal["working_days", "calendar_days", "hours"]
StepKind = Literal["acceptance", "review", "parallel", "joint_review", "decision", "delivery"]
#: What a `joint_review` step is (联合审图 / 联合验收).
JointReviewKind = Literal["drawing_review", "acceptance"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimeLimit(Strict):
    value: int = Field(ge=0, le=3650, description="How many units.")
    unit: LimitUnit = "working_days"
    note: str | None = Field(default=None, max_length=500)


FieldType = Literal[
    "text", "textarea", "number", "integer", "amount", "date", "phone", "mobile", "landline", "id_number",
    "credit_code", "address", "boolean", "select",
]

#: The longest value a field of each type may hold unless the field sets `max_length` (characters).
DEFAULT_MAX_LENGTH: dict[str, int] = {
    "text": 200, "textarea": 2000, "number": 30, "integer": 20, "amount": 20, "date": 10, "phone": 20,
    "mobile": 20, "landline": 20, "id_number": 18, "credit_code": 18, "address": 300, "boolean": 5, "select": 100,
}
#: The most any field may hold: a form is a few fields a person types, not a document store.
MAX_FIELD_LENGTH = 5000


class FormField(Strict):
    """A field of the application form the applicant fills in (intake renders and checks it).

    The type carries its rule: `phone` is a mainland mobile or a landline, `mobile` and `landline` only that
    one, `id_number` a citizen ID with its check character (GB 11643), `credit_code` a unified social credit
    code (GB 32100), `date` YYYY-MM-DD, `amount` a non-negative sum in yuan with at most two decimals, `select`
    one of `options`. Text types are held to `max_length` (or the type's default)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1, max_length=100)
    type: FieldType = "text"
    required: bool = True
    options: list[str] = Field(default_factory=list, max_length=200)
    min_length: int | None = Field(default=None, ge=0, le=MAX_FIELD_LENGTH)
    max_length: int | None = Field(default=None, ge=1, le=MAX_FIELD_LENGTH,
                                   description="Characters; defaults by type (text 200, textarea 2000, address 300…).")


class Attachment(Strict):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=500)


FileType = Literal["pdf", "jpg", "png", "ofd"]
DEFAULT_FILE_TYPES: tuple[FileType, ...] = ("pdf", "jpg", "png")


class Material(Strict):
    """One material (申请材料): where it comes from, how many, what form, and why it is required."""

    code: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=200)
    necessity: Necessity = "required"
    condition: str | None = Field(default=None, max_length=500)
    source: MaterialSource = "applicant"
    certificate_type: str | None = Field(default=None, max_length=40)
    registry: Literal["population", "legal_persons"] | None = None
    fields: list[str] = Field(default_factory=list, description="What the material needs from its source.")
    commitment_allowed: bool = Field(default=False, description="A written commitment may replace it (告知承诺).")
    form: Literal["paper", "electronic"] = "electronic"
    originals: int = Field(default=0, ge=0, le=20)
    copies: int = Field(default=0, ge=0, le=20)
    file_types: list[FileType] = Field(default_factory=lambda: list(DEFAULT_FILE_TYPES))
    max_bytes: int = Field(default=10_485_760, ge=1024, le=104_857_600)
    legal_basis: str | None = Field(default=None, max_length=1000)
    template: Attachment | None = None
    sample: Attachment | None = None
    notes: str | None = Field(default=None, max_length=1000)


class Step(Strict):
    """One step of the process; a `parallel` step is a stage several departments handle at once (并联审批), and
    may give each department its own limit within the step's (`department_limits`, 明确部门办理时限). A
    `joint_review` step is one review the lead department schedules and several departments take part in
    (联合审图 / 联合验收): each gives its opinion, the lead consolidates one result."""

    key: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1, max_length=100)
    kind: StepKind
    departments: list[str] = Field(default_factory=list)
    lead_department: str | None = None
    limit_days: int = Field(default=0, ge=0, le=365)
    department_limits: dict[str, int] = Field(
        default_factory=dict, max_length=50,
        description="A parallel step's own limit per department (working days), each within `limit_days`; "
                    "a department not named has the step's limit.")
    review_kind: JointReviewKind | None = Field(
        default=None, description="A `joint_review` step's kind: `drawing_review` (联合审图) or `acceptance` (联合验收).")
    on_reject: Literal["reject_case", "lead_arbitrates"] = "reject_case"
    deemed_approval_on_timeout: bool = False
    excluded_from_limit: bool = False
    description: str | None = Field(default=None, max_length=1000)


class Process(Strict):
    steps: list[Step] = Field(min_length=1)


class SpecialProcedure(Strict):
    """特别程序: not counted in the time limit."""

    name: str = Field(min_length=1, max_length=100)
    kind: Literal["hearing", "expert_review", "testing", "public_notice"]
    max_days: int = Field(ge=0, le=365)


#: Where a certificate field's value comes from when the result is issued: a form field (`form.<name>`), the
#: applicant (`applicant.name`, `applicant.holder_id`) or the decision (`decision.decided_on`,
#: `decision.department`).
CERTIFICATE_SOURCES = frozenset({"applicant.name", "applicant.holder_id", "decision.decided_on", "decision.department"})


class Result(Strict):
    type: Literal["certificate", "document", "none"]
    certificate_type: str | None = Field(default=None, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    sample: Attachment | None = None
    fields: dict[str, str] = Field(
        default_factory=dict, max_length=50,
        description="证照字段映射: certificate field → `form.<field>`, `applicant.name`, `applicant.holder_id`, "
                    "`decision.decided_on` or `decision.department`. Required (with `name`) for a certificate.",
    )


class FeeExemption(Strict):
    """A ground for not paying a fee (减免), with the rule that grants it. The applicant claims it by its code;
    the accepting clerk may refuse the claim (intake)."""

    code: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1, max_length=200)
    basis: str = Field(min_length=1, max_length=1000, description="The legal basis of the exemption.")
    proof: str | None = Field(default=None, max_length=500, description="What the applicant shows to claim it.")


class FeeItem(Strict):
    name: str = Field(min_length=1, max_length=200)
    standard: str = Field(min_length=1, max_length=500)
    basis: str = Field(min_length=1, max_length=1000)
    amount: Decimal | None = Field(default=None, ge=0, le=1_000_000, max_digits=12, decimal_places=2,
                                   description="Yuan per application; what the payment notice (缴款通知) asks for.")
    exemptions: list[FeeExemption] = Field(default_factory=list)


class Fees(Strict):
    charged: bool = False
    items: list[FeeItem] = Field(default_factory=list)
    waivable: bool = False
    note: str | None = Field(default=None, max_length=500)


class IntermediaryRequirement(Strict):
    """An intermediary service (中介服务) the applicant must obtain first."""

    code: str = Field(min_length=1, max_length=40)
    legal_basis: str | None = Field(default=None, max_length=1000)


class Contact(Strict):
    channel: Literal["phone", "window", "online", "mobile", "email", "post"]
    value: str = Field(min_length=1, max_length=300)


class GuideDetails(Strict):
    """The service guide's remaining elements named by the reform plan, as an editor writes them (the whole
    guide a citizen reads is `GET /items/{code}/guide`)."""

    summary: str | None = Field(default=None, max_length=2000)
    legal_basis: list[str] = Field(default_factory=list)
    accepting_unit: str | None = Field(default=None, max_length=200)
    implementing_nature: Literal["法定机关", "授权组织", "受委托组织"] = "法定机关"
    conditions: list[str] = Field(default_factory=list, description="受理条件")
    forms: list[Attachment] = Field(default_factory=list, description="Forms to download")
    samples: list[Attachment] = Field(default_factory=list, description="Sample filled forms")
    common_mistakes: list[str] = Field(default_factory=list)
    accountability: str | None = Field(default=None, max_length=1000)
    consultation: list[Contact] = Field(default_factory=list)
    complaint: list[Contact] = Field(default_factory=list)
    office_hours: str | None = Field(default=None, max_length=300)
    address: str | None = Field(default=None, max_length=300)
    transit: str | None = Field(default=None, max_length=500)
    status_query: str | None = Field(default=None, max_length=300)
    handling_area: str | None = Field(default=None, max_length=200, description="通办范围")


class ItemContent(Strict):
    """Everything an editor writes about one version of an item."""

    name: str = Field(min_length=1, max_length=200)
    kind: Kind
    department: str = Field(min_length=1, max_length=32)
    audience: list[Audience] = Field(min_length=1)
    case_kind: CaseKind = "promised"
    statutory_limit: TimeLimit
    promised_limit: TimeLimit
    visits_required: int = Field(default=1, ge=0, le=10)
    fully_online: bool = False
    min_assurance_level: int = Field(
        default=2, ge=1, le=3,
        description="实名核验 level an applicant needs to submit: 1 self-registered, 2 matched against the population "
        "registry (default), 3 ID card checked in person at a window (for higher-risk items).")
    channels: list[Channel] = Field(min_length=1)
    service_points: list[str] = Field(default_factory=lambda: ["*"], description='Codes, or ["*"] for every point. '
                                      "A town's code offers the item at its villages too, unless excluded.")
    excluded_points: list[str] = Field(default_factory=list, description="Points (and their villages) where the "
                                       "item is not offered although a parent offers it.")
    collection_points: list[str] | None = Field(
        default=None, description='Where results may be collected (异地领取): codes or ["*"]; null: wherever the item '
        "is offered. Inherits down the tree like `service_points`.")
    themes: list[str] = Field(default_factory=list)
    life_events: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list, description="Synonyms people search with (饭店, 餐馆 …).")
    form_fields: list[FormField] = Field(default_factory=list, max_length=100)
    materials: list[Material] = Field(default_factory=list)
    process: Process
    special_procedures: list[SpecialProcedure] = Field(default_factory=list)
    result: Result
    fees: Fees = Field(default_factory=Fees)
    intermediary_services: list[IntermediaryRequirement] = Field(default_factory=list)
    guide: GuideDetails = Field(default_factory=GuideDetails)


DEFAULT_STEPS: list[tuple[str, str, StepKind]] = [
    ("acceptance", "受理", "acceptance"),
    ("review", "审查", "review"),
    ("decision", "决定", "decision"),
    ("delivery", "送达", "delivery"),
]
