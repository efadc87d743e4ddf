"""Enterprise investment projects (企业投资项目 / 工程建设项目): the national project code, the market-access
negative list checked at registration, and the stages' states and gates. Pure: no I/O, no framework."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.intake.domain.findings import Finding

# --- the project code (GB/T 40058-2021 全国固定资产投资项目代码编码规范) -----------------------------------------

#: 4-digit year - 6-digit region - 2-digit central guiding department - 2-digit project type - 5 random digits
#: and one check character: 20 characters in five segments joined by four hyphens, 24 in all.
CODE_LENGTH = 24
SEGMENTS: tuple[tuple[str, int, str], ...] = (
    ("year", 4, "年份"),
    ("region", 6, "地区代码"),
    ("department", 2, "中央业务指导部门代码"),
    ("type", 2, "项目类型代码"),
    ("serial", 6, "随机码及校验码"),
)
#: Project type codes as this platform reads them (审批 / 核准 / 备案).
PROJECT_TYPE_CODES = {"01": "审批", "02": "核准", "03": "备案"}
#: 罗定市's administrative division code (GB/T 2260), the region of codes the platform issues.
LUODING_REGION = "445381"
#: 发展改革 as the central guiding department of the demo's projects.
DEFAULT_GUIDING_DEPARTMENT = "39"
_WEIGHTS = [pow(2, 19 - i, 11) for i in range(19)]


def check_character(digits: str) -> str:
    """The check character over the 19 digits before it.

    The standard's own text could not be consulted here; this is ISO 7064 MOD 11-2 (the algorithm of the
    resident ID number, GB 11643), which gives one of 0-9 or X, as the code's last character may be. Should the
    standard specify another algorithm, only this function changes."""
    if len(digits) != 19 or not digits.isdigit():
        raise ValueError("19 digits expected")
    total = sum(int(d) * w for d, w in zip(digits, _WEIGHTS, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def check_project_code(code: str, *, field_name: str = "body.project_code", this_year: int | None = None) -> list[Finding]:
    """Every problem of a project code, each naming the segment that breaks its rule."""
    def bad(rule: str, message: str) -> list[Finding]:
        return [Finding(field_name, f"project_code.{rule}", message)]

    if len(code) != CODE_LENGTH:
        return bad("length", f"项目代码应为 {CODE_LENGTH} 位（如 2026-445381-39-03-123457），而不是 {len(code)} 位。")
    parts = code.split("-")
    if len(parts) != len(SEGMENTS):
        return bad("segments", "项目代码应由 5 段组成，以“-”分隔：年份-地区-部门-类型-随机码及校验码。")
    out: list[Finding] = []
    for part, (name, size, label) in zip(parts, SEGMENTS, strict=True):
        digits = part[:-1] if name == "serial" else part
        if len(part) != size or not digits.isdigit() or (name == "serial" and part[-1] not in "0123456789X"):
            out += bad(name, f"{label}应为 {size} 位数字" + ("（末位校验码可为 X）" if name == "serial" else "")
                       + f"，而不是“{part}”。")
    if out:
        return out
    year, region, dept, kind, serial = parts
    if not 2000 <= int(year) <= (this_year or 9999) + 1:
        out += bad("year", f"年份 {year} 不是有效的赋码年份。")
    if not "11" <= region[:2] <= "82":
        out += bad("region", f"地区代码 {region} 不是有效的行政区划代码。")
    if dept == "00":
        out += bad("department", "中央业务指导部门代码不能为 00。")
    if kind not in PROJECT_TYPE_CODES:
        out += bad("type", f"项目类型代码应为 {'、'.join(f'{k}（{v}）' for k, v in PROJECT_TYPE_CODES.items())} 之一，"
                           f"而不是 {kind}。")
    if not out:
        digits = year + region + dept + kind + serial[:-1]
        expected = check_character(digits)
        if serial[-1] != expected:
            out += bad("check_character", f"校验码不符：按前 19 位数字计算应为 {expected}，而不是 {serial[-1]}。")
    return out


def issue_project_code(year: int, *, region: str = LUODING_REGION, department: str = DEFAULT_GUIDING_DEPARTMENT,
                       project_type: str = "03", random: str | None = None) -> str:
    """A new code: the five random digits drawn here unless given (tests give them)."""
    serial = random if random is not None else f"{secrets.randbelow(100_000):05d}"
    digits = f"{year:04d}{region}{department}{project_type}{serial}"
    return f"{year:04d}-{region}-{department}-{project_type}-{serial}{check_character(digits)}"


# --- the market-access negative list (市场准入负面清单), by industry (GB/T 4754 国民经济行业分类) ---------------

INDUSTRY_CODE = re.compile(r"^[A-T]\d{2,4}$")


@dataclass(frozen=True)
class NegativeEntry:
    code: str
    category: str  # prohibited | permitted
    title: str
    #: Industry code prefixes the entry covers (C30 covers C3011 …).
    industries: tuple[str, ...]
    conditions: tuple[str, ...] = ()
    legal_basis: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "category": self.category, "title": self.title,
                "conditions": list(self.conditions), "legal_basis": self.legal_basis}


#: A small demo list, written from public knowledge of the national list and the industrial policy catalogue.
NEGATIVE_LIST: tuple[NegativeEntry, ...] = (
    NegativeEntry("FL-101", "prohibited", "禁止新建、扩建《产业结构调整指导目录》淘汰类项目：新建水泥熟料生产线（未落实产能置换）",
                  ("C3011",), legal_basis="《市场准入负面清单（2025年版）》禁止准入类第 1 项"),
    NegativeEntry("FL-102", "prohibited", "禁止新建年产 30 万吨以下的煤矿", ("B0610", "B0620"),
                  legal_basis="《市场准入负面清单（2025年版）》禁止准入类第 1 项；《产业结构调整指导目录》"),
    NegativeEntry("FL-201", "permitted", "未获得许可，不得新建有污染物排放的农副食品加工项目", ("C13",),
                  ("建设项目环境影响评价文件经生态环境部门审批（环评审批）", "投产前取得排污许可证"),
                  "《中华人民共和国环境影响评价法》第二十二条；《排污许可管理条例》第二条"),
    NegativeEntry("FL-202", "permitted", "未获得许可，不得从事危险化学品生产", ("C26",),
                  ("取得危险化学品安全生产许可证", "建设项目安全条件审查"), "《危险化学品安全管理条例》第十四条"),
)


@dataclass(frozen=True)
class Screening:
    """The negative list's answer for an industry: the prohibiting entry, or the conditions to attach."""

    prohibited: NegativeEntry | None
    permitted: tuple[NegativeEntry, ...]

    @property
    def conditions(self) -> list[dict[str, object]]:
        return [e.as_dict() for e in self.permitted]


def screen(industry_code: str, entries: Sequence[NegativeEntry] = NEGATIVE_LIST) -> Screening:
    hits = [e for e in entries if any(industry_code.startswith(p) for p in e.industries)]
    prohibited = next((e for e in hits if e.category == "prohibited"), None)
    return Screening(prohibited, tuple(e for e in hits if e.category == "permitted"))


# --- stages -------------------------------------------------------------------------------------------------------


class StageStatus(StrEnum):
    LOCKED = "locked"
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


@dataclass(frozen=True)
class StageItem:
    item_code: str
    department: str
    limit_days: int
    name: str | None = None


@dataclass(frozen=True)
class Stage:
    key: str
    name: str
    order: int
    total_limit_days: int
    items: tuple[StageItem, ...]


@dataclass
class StageProgress:
    """What happened to one stage of one project: accepted once, then each item application's outcome."""

    accepted_at: datetime | None = None
    completed_at: datetime | None = None
    #: application id → outcome (None while undecided).
    outcomes: dict[str, str | None] = field(default_factory=dict)

    @property
    def all_decided(self) -> bool:
        return bool(self.outcomes) and all(o is not None for o in self.outcomes.values())

    @property
    def approved(self) -> bool:
        return self.all_decided and all(o == "approved" for o in self.outcomes.values())


def stages_of(payload: Mapping[str, object]) -> list[Stage]:
    """A project type as catalog publishes it, in stage order."""
    raw = payload.get("stages") or []
    assert isinstance(raw, list)
    stages = [Stage(key=s["key"], name=s["name"], order=int(s["order"]), total_limit_days=int(s["total_limit_days"]),
                    items=tuple(StageItem(i["item_code"], i["department"], int(i["limit_days"]), i.get("name"))
                                for i in s.get("items") or []))
              for s in raw]
    return sorted(stages, key=lambda s: s.order)


def status_of(stages: Sequence[Stage], progress: Mapping[str, StageProgress], key: str) -> StageStatus:
    """Completed once every item is decided; in progress once accepted; open when the stage before it completed
    with every item approved (the first is open from registration); locked otherwise."""
    mine = progress.get(key)
    if mine is not None and mine.completed_at is not None:
        return StageStatus.COMPLETED
    if mine is not None and mine.accepted_at is not None:
        return StageStatus.IN_PROGRESS
    keys = [s.key for s in stages]
    i = keys.index(key)
    if i == 0:
        return StageStatus.OPEN
    before = progress.get(keys[i - 1])
    return StageStatus.OPEN if before is not None and before.completed_at is not None and before.approved \
        else StageStatus.LOCKED


class GateRefusal(Exception):
    """Why a stage cannot be applied for now: `slug` names the rule, the message says what to do."""

    def __init__(self, slug: str, message: str) -> None:
        super().__init__(message)
        self.slug = slug


def gate(stages: Sequence[Stage], progress: Mapping[str, StageProgress], key: str) -> Stage:
    """The stage an application may be filed for now, or a refusal (unknown keys are the caller's 404)."""
    stage = next(s for s in stages if s.key == key)
    status = status_of(stages, progress, key)
    if status in (StageStatus.IN_PROGRESS, StageStatus.COMPLETED):
        raise GateRefusal("stage-already-applied", f"阶段“{stage.name}”已统一受理，不能重复申请。")
    if status is StageStatus.LOCKED:
        i = [s.key for s in stages].index(key)
        before = stages[i - 1]
        prev = progress.get(before.key)
        if prev is not None and prev.completed_at is not None and not prev.approved:
            raise GateRefusal("previous-stage-not-approved",
                              f"上一阶段“{before.name}”有事项未获批准，本阶段“{stage.name}”不能申请。")
        raise GateRefusal("previous-stage-not-completed",
                          f"上一阶段“{before.name}”尚未办结，本阶段“{stage.name}”暂不能申请（并联审批按阶段推进）。")
    return stage


def stage_completed(progress: StageProgress) -> bool:
    """A stage completes when every item application is decided (approved or not)."""
    return progress.completed_at is None and progress.all_decided


def project_completed(stages: Sequence[Stage], progress: Mapping[str, StageProgress]) -> bool:
    return all((p := progress.get(s.key)) is not None and p.completed_at is not None and p.approved for s in stages)
