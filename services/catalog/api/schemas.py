"""Request and response models of the catalog API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from services.catalog.domain.lifecycle import ChangeAction, Status
from services.catalog.domain.model import (
    KIND_NAMES,
    Attachment,
    Audience,
    CaseKind,
    Channel,
    Contact,
    Fees,
    FormField,
    IntermediaryRequirement,
    ItemContent,
    Kind,
    Material,
    Necessity,
    PointLevel,
    Result,
    SpecialProcedure,
    Step,
    TimeLimit,
)
from services.catalog.domain.rules import Verdict

CODE_PATTERN = r"^[0-9A-Z]{18}[1-5][0-9A-Z]{12}$"
#: A demo item every example that reads one names (食品经营许可, 罗定市市场监督管理局).
EXAMPLE_ITEM = "11441781MB0000001A4010000030000"
#: The item the create example makes (a fresh code under 市场监督管理局; the demo catalogue does not hold it).
NEW_ITEM = "11441781MB0000001A4010000990000"
#: A second item the create example makes, to show the way back: submitted, then returned to draft.
RETURNED_ITEM = "11441781MB0000001A4010000980000"


class VersionRow(Protocol):
    """What a stored item version offers the response models (the store's row, read by attribute)."""

    item_code: str
    version: int
    status: str
    content: dict[str, Any]
    revision: int
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime
    updated_by: str
    ended_at: datetime | None


_EXAMPLE: dict[str, Any] = {
    "code": NEW_ITEM,
    "name": "小餐饮店登记",
    "kind": "01",
    "department": "LD-SCJGJ",
    "audience": ["natural_person"],
    "case_kind": "promised",
    "statutory_limit": {"value": 20, "unit": "working_days"},
    "promised_limit": {"value": 5, "unit": "working_days"},
    "visits_required": 0,
    "fully_online": True,
    "channels": ["online", "window"],
    "service_points": ["*"],
    "themes": ["startup"],
    "life_events": ["开办餐饮店"],
    "keywords": ["小吃店", "饭店"],
    "form_fields": [
        {"name": "business_name", "label": "经营者名称", "type": "text", "required": True},
        {"name": "business_address", "label": "经营场所", "type": "address", "required": True},
        {"name": "phone", "label": "联系电话", "type": "phone", "required": True},
    ],
    "materials": [
        {"code": "business_licence", "name": "营业执照", "source": "certificate",
         "certificate_type": "11441781MB0000001A001", "fields": ["number", "holder_name"],
         "legal_basis": "《食品经营许可和备案管理办法》第十三条"},
        {"code": "floor_plan", "name": "经营场所平面布局图", "source": "applicant",
         "legal_basis": "《食品经营许可和备案管理办法》第十三条"},
    ],
    "process": {"steps": [
        {"key": "acceptance", "name": "受理", "kind": "acceptance", "departments": ["LD-SCJGJ"], "limit_days": 1},
        {"key": "review", "name": "审查", "kind": "review", "departments": ["LD-SCJGJ"], "limit_days": 3},
        {"key": "decision", "name": "决定", "kind": "decision", "departments": ["LD-SCJGJ"], "limit_days": 1},
    ]},
    "result": {"type": "document", "name": "登记回执"},
}


class ItemCreate(ItemContent):
    """A new item; it starts as draft version 1."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        _EXAMPLE, {**_EXAMPLE, "code": RETURNED_ITEM, "name": "小餐饮店登记（变更）"}]})

    code: str = Field(pattern=CODE_PATTERN, description="实施编码: credit code (18) + level (1) + basic code (12).")

    def content(self) -> ItemContent:
        return ItemContent.model_validate(self.model_dump(exclude={"code"}))


class ItemUpdate(ItemContent):
    """The whole content of the draft (replaces it)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{k: v for k, v in _EXAMPLE.items()
                                                                              if k != "code"}]})


class ItemRead(ItemContent):
    """One version of an item with its status and history stamps."""

    model_config = ConfigDict(extra="ignore")

    code: str
    version: int
    status: Status
    kind_name: str
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime
    updated_by: str | None = Field(default=None, description="Editors' views only.")

    @classmethod
    def of(cls, v: VersionRow) -> ItemRead:
        return cls.model_validate({
            **v.content, "code": v.item_code, "version": v.version, "status": v.status,
            "kind_name": KIND_NAMES[v.content["kind"]], "published_at": v.published_at, "created_at": v.created_at,
            "updated_at": v.updated_at, "updated_by": v.updated_by,
        })


class ItemSummary(BaseModel):
    """A published item as a list shows it."""

    code: str
    version: int
    name: str
    kind: Kind
    kind_name: str
    department: str
    audience: list[Audience]
    case_kind: CaseKind
    statutory_limit: TimeLimit
    promised_limit: TimeLimit
    visits_required: int
    fully_online: bool
    min_assurance_level: int = 2
    channels: list[Channel]
    service_points: list[str]
    themes: list[str]
    life_events: list[str]
    published_at: datetime | None

    @classmethod
    def of(cls, v: VersionRow) -> ItemSummary:
        c = v.content
        return cls(code=v.item_code, version=v.version, kind_name=KIND_NAMES[c["kind"]], published_at=v.published_at,
                   **{k: c[k] for k in cls.model_fields if k in c and k not in ("code", "version")})


class VersionInfo(BaseModel):
    """A version's status and dates (who edited it is in the change log, for editors only)."""

    version: int
    status: Status
    created_at: datetime
    published_at: datetime | None
    ended_at: datetime | None = Field(description="When it was superseded or withdrawn.")


class ChangeRead(BaseModel):
    version: int
    action: ChangeAction
    actor: str
    at: datetime
    fields: list[str]
    note: str | None


class SearchHit(BaseModel):
    score: int = Field(description="Summed weight of the matched tokens (name 10, keyword 8, life event 6 …).")
    matched: list[str]
    item: ItemSummary


class SearchPage(BaseModel):
    query: str
    terms: list[str] = Field(description="The tokens the query was segmented into.")
    items: list[SearchHit]
    next_cursor: str | None = None


class Note(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "依据新修订的管理办法调整材料清单"}]})

    note: str | None = Field(default=None, max_length=1000)


class DepartmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    credit_code: str | None
    address: str | None
    phone: str | None
    office_hours: str | None
    #: government_department | service_enterprise | intermediary.
    kind: str = "government_department"


class DepartmentWrite(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "罗定市交通运输局", "credit_code": "11441781MB0000012E",
                                         "phone": "0766-3822600"}]},
    )

    name: str = Field(min_length=1, max_length=200)
    credit_code: str | None = Field(default=None, pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$",
                                    description="统一社会信用代码 (GB 32100), its check character included.")
    address: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, max_length=50)
    office_hours: str | None = Field(default=None, max_length=300)
    kind: Literal["government_department", "service_enterprise", "intermediary"] = "government_department"


class ServicePointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    level: PointLevel = Field(description="city | town (镇街) | village (村居)")
    parent_code: str | None
    address: str | None
    phone: str | None
    opening_hours: str | None
    transit: str | None


class ServicePointDetail(ServicePointRead):
    children: list[str]
    items: list[str] = Field(description="Codes of published items this point accepts (全区域通办 ones included).")


class LifeEventRead(BaseModel):
    name: str
    description: str | None
    audience: list[Audience]
    items: list[ItemSummary]


class IntermediaryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    department: str
    legal_basis: str
    providers: str | None
    fee_basis: str | None
    time_limit: str | None


class NegativeEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    category: Literal["prohibited", "permitted"] = Field(description="prohibited (禁止准入) | permitted (许可准入)")
    title: str
    description: str | None
    requirements: list[dict[str, Any]]
    keywords: list[str]
    legal_basis: str | None


class NegativeAnswer(BaseModel):
    query: str | None
    verdict: Verdict = Field(description="prohibited | permitted_with_approval | not_listed (free to enter) | all")
    answer: str
    entries: list[NegativeEntryRead]


class ServicePointWrite(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "罗城街道龙华社区党群服务站", "level": "village", "parent_code": "LD-LC",
        "address": "罗定市罗城街道龙华路 2 号", "opening_hours": "周一至周五 9:00-12:00、14:30-17:00"}]})

    name: str = Field(min_length=1, max_length=200)
    level: PointLevel
    parent_code: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, max_length=50)
    opening_hours: str | None = Field(default=None, max_length=300)
    transit: str | None = Field(default=None, max_length=500)


class LifeEventWrite(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "description": "办理退休手续：养老金待遇核定、医保转换。", "audience": ["natural_person"]}]})

    description: str | None = Field(default=None, max_length=2000)
    audience: list[Audience] = Field(min_length=1)
    sort_order: int = Field(default=100, ge=0, le=10000)


class IntermediaryWrite(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "房屋安全鉴定", "department": "LD-ZJJ", "legal_basis": "《城市危险房屋管理规定》第七条"}]})

    name: str = Field(min_length=1, max_length=200)
    department: str = Field(min_length=1, max_length=32)
    legal_basis: str = Field(min_length=2, max_length=2000, description="设定依据; an entry without one is refused.")
    providers: str | None = Field(default=None, max_length=2000)
    fee_basis: str | None = Field(default=None, max_length=2000)
    time_limit: str | None = Field(default=None, max_length=200)


class Requirement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approval: str = Field(min_length=1, max_length=200)
    department: str | None = Field(default=None, max_length=32)
    item: str | None = Field(default=None, max_length=40, description="Code of the catalogue item that grants it.")


class NegativeEntryWrite(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "category": "permitted", "title": "未获得许可，不得经营网吧", "keywords": ["网吧", "网咖"],
        "requirements": [{"approval": "网络文化经营许可", "department": "LD-ZSJ"}],
        "legal_basis": "《互联网上网服务营业场所管理条例》第七条"}]})

    category: Literal["prohibited", "permitted"]
    title: str = Field(min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=2000)
    requirements: list[Requirement] = Field(default_factory=list)
    keywords: list[str] = Field(min_length=1)
    legal_basis: str | None = Field(default=None, max_length=2000)
    active: bool = True


class SearchMissRead(BaseModel):
    terms: str = Field(description="The words typed (segmented, sorted; digits and Latin letters dropped).")
    searches: int
    last_on: date


# --- the service guide (办事指南) --------------------------------------------------------------------------


class DepartmentRef(BaseModel):
    code: str
    name: str | None = Field(description="Null only if the department has left the directory.")


class GuideTimeLimit(BaseModel):
    statutory: TimeLimit = Field(description="法定办结时限")
    promised: TimeLimit = Field(description="承诺办结时限")


class GuideStep(Step):
    """A process step with its departments named."""

    department_names: list[str]


class ItemRef(BaseModel):
    code: str = Field(description="The item's 实施编码.")
    name: str


class RequiredCertificate(BaseModel):
    """A certificate (电子证照) the applicant must already hold: the platform fetches it from datashare's
    certificate library, the applicant does not upload it. `issued_by` says which published items issue it, so
    a front end can link “don't have it yet? apply here”."""

    certificate_type: str = Field(description="Certificate type code of datashare's directory.")
    name: str = Field(description="The type's name as datashare announced it (else the material's name).")
    necessity: Necessity = Field(description="The strictest necessity of the materials asking for it.")
    materials: list[str] = Field(description="Codes of this item's materials that ask for it.")
    issued_by: list[ItemRef] = Field(description="Published items whose result is a certificate of this type "
                                                 "(this item aside); empty when the catalogue knows none.")


class FlowchartLinks(BaseModel):
    svg: str
    mermaid: str


class Guide(BaseModel):
    """The whole service guide (办事指南) of one published version: what a citizen reads before applying.
    Amounts in `fees` are decimal strings in yuan ("20.00"), never floats."""

    code: str
    version: int
    status: Status
    name: str
    kind: Kind
    kind_name: str
    department: DepartmentRef
    summary: str | None
    legal_basis: list[str]
    accepting_unit: str | None
    implementing_nature: Literal["法定机关", "授权组织", "受委托组织"]
    audience: list[Audience]
    conditions: list[str] = Field(description="受理条件")
    case_kind: CaseKind
    time_limit: GuideTimeLimit
    visits_required: int
    fully_online: bool
    min_assurance_level: int = Field(description="实名核验 level an applicant needs to submit (1-3).")
    channels: list[Channel]
    handling_area: str | None
    service_points: list[str]
    excluded_points: list[str]
    offered_at: list[str] = Field(description="Codes of every point where the item is handled (resolved through "
                                              "the service-point tree).")
    collect_at: list[str] = Field(description="Codes of every point where the result may be collected.")
    process: list[GuideStep]
    special_procedures: list[SpecialProcedure]
    form_fields: list[FormField] = Field(description="The application form the applicant fills in; `name` is "
                                                     "the key of the value in an application's `form`.")
    materials: list[Material]
    certificates: list[RequiredCertificate]
    forms: list[Attachment]
    samples: list[Attachment]
    common_mistakes: list[str]
    fees: Fees
    intermediary_services: list[IntermediaryRequirement]
    result: Result
    accountability: str | None
    consultation: list[Contact]
    complaint: list[Contact]
    office_hours: str | None
    address: str | None
    transit: str | None
    status_query: str | None
    flowchart: FlowchartLinks
    published_at: datetime | None

