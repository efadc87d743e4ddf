"""Save-time rules of an item version. Each broken rule is one `FieldError` naming the field and the rule, so
an editor can fix everything in one pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from stdnum.cn import uscc

from services.catalog.domain.model import CERTIFICATE_SOURCES, THEMES, ItemContent, PointLevel
from shared.errors import FieldError

#: A material that one of these sources supplies is fetched by the system, never asked of the applicant.
SYSTEM_SOURCES = {"certificate", "own_certificate"}
#: Rough conversion used only to compare limits given in different units.
_DAYS = {"working_days": 1.0, "calendar_days": 5 / 7, "hours": 1 / 8}


@dataclass(frozen=True)
class Reference:
    """What the rules check names against: the catalogue's own reference data."""

    departments: frozenset[str] = frozenset()
    service_points: frozenset[str] = frozenset()
    life_events: frozenset[str] = frozenset()
    #: Intermediary-service list: code → its legal basis.
    intermediaries: dict[str, str] = field(default_factory=dict)
    #: Datashare's certificate directory as announced: type code → the fields it defines and requires.
    certificate_types: dict[str, CertificateFields] = field(default_factory=dict)


@dataclass(frozen=True)
class CertificateFields:
    defined: frozenset[str]
    required: frozenset[str]


def check_item(item: ItemContent, ref: Reference) -> list[FieldError]:
    errors: list[FieldError] = []

    def err(path: str, rule: str, message: str) -> None:
        errors.append(FieldError(field=path, rule=rule, message=message))

    if item.department not in ref.departments:
        err("department", "unknown_department", f"部门 {item.department} 不在部门目录中。")

    promised = item.promised_limit.value * _DAYS[item.promised_limit.unit]
    statutory = item.statutory_limit.value * _DAYS[item.statutory_limit.unit]
    if promised > statutory:
        err(
            "promised_limit.value",
            "promised_within_statutory",
            f"承诺办结时限 ({item.promised_limit.value}) 不得超过法定办结时限 ({item.statutory_limit.value})。",
        )
    if item.fully_online and item.visits_required != 0:
        err("visits_required", "fully_online_zero_visits", "全程网办的事项到现场次数必须为 0。")
    if item.fully_online and "online" not in item.channels:
        err("channels", "fully_online_channel", "全程网办的事项必须提供网上办理渠道。")
    if item.case_kind == "immediate" and item.promised_limit.value > 1 and item.promised_limit.unit != "hours":
        err("promised_limit.value", "immediate_same_day", "即办件应当场办结（承诺时限不超过 1 个工作日）。")

    if item.service_points != ["*"]:
        for i, code in enumerate(item.service_points):
            if code == "*":
                err(f"service_points.{i}", "wildcard_alone", '"*"（全区域通办）不能与具体服务点并列。')
            elif code not in ref.service_points:
                err(f"service_points.{i}", "unknown_service_point", f"服务点 {code} 不存在。")
    for name in ("excluded_points", "collection_points"):
        for i, code in enumerate(getattr(item, name) or []):
            if code != "*" and code not in ref.service_points:
                err(f"{name}.{i}", "unknown_service_point", f"服务点 {code} 不存在。")
    for i, theme in enumerate(item.themes):
        if theme not in THEMES:
            err(f"themes.{i}", "unknown_theme", f"主题 {theme} 不在主题分类中（{', '.join(THEMES)}）。")
    for i, name in enumerate(item.life_events):
        if name not in ref.life_events:
            err(f"life_events.{i}", "unknown_life_event", f"主题事件“{name}”不存在。")

    seen: set[str] = set()
    for i, m in enumerate(item.materials):
        at = f"materials.{i}"
        if m.code in seen:
            err(f"{at}.code", "unique", f"材料编码 {m.code} 重复。")
        seen.add(m.code)
        if m.necessity == "conditional" and not m.condition:
            err(f"{at}.condition", "condition_required", "情形要件必须写明适用情形。")
        if m.source in SYSTEM_SOURCES and not m.certificate_type:
            err(f"{at}.certificate_type", "certificate_type_required", "来源为电子证照的材料必须写明证照类型代码。")
        if m.certificate_type and m.source not in SYSTEM_SOURCES:
            err(
                f"{at}.source",
                "datashare_supplies",
                "该材料可由电子证照库共享获取，不得要求申请人自行提供（来源应为 certificate 或 own_certificate）。",
            )
        if m.certificate_type and not (m.legal_basis or "").strip():
            err(f"{at}.legal_basis", "legal_basis_required", "要求提交证照类材料必须写明设定依据。")
        if m.source == "registry" and not m.registry:
            err(f"{at}.registry", "registry_required", "来源为基础信息库的材料必须写明哪个库 (population / legal_persons)。")
        if m.registry and m.source != "registry":
            err(f"{at}.source", "datashare_supplies", "基础信息库可提供该材料，来源应为 registry。")

    for i, req in enumerate(item.intermediary_services):
        at = f"intermediary_services.{i}"
        listed = ref.intermediaries.get(req.code)
        if listed is None:
            err(f"{at}.code", "not_on_intermediary_list", f"中介服务 {req.code} 不在中介服务清单中，不得要求申请人提供。")
        elif not (req.legal_basis or listed).strip():
            err(f"{at}.legal_basis", "legal_basis_required", "中介服务必须有设定依据。")

    keys: set[str] = set()
    counted_days = 0
    for i, step in enumerate(item.process.steps):
        at = f"process.steps.{i}"
        if step.key in keys:
            err(f"{at}.key", "unique", f"步骤键 {step.key} 重复。")
        keys.add(step.key)
        for j, dept in enumerate(step.departments):
            if dept not in ref.departments:
                err(f"{at}.departments.{j}", "unknown_department", f"部门 {dept} 不在部门目录中。")
        if len(set(step.departments)) != len(step.departments):
            err(f"{at}.departments", "unique", "同一步骤中部门不得重复。")
        if step.kind == "parallel":
            if len(set(step.departments)) < 2:
                err(f"{at}.departments", "parallel_min_departments", "并联审批阶段至少需要两个部门。")
            if not step.lead_department:
                err(f"{at}.lead_department", "lead_required", "并联审批阶段必须指定牵头部门。")
            elif step.lead_department not in step.departments:
                err(f"{at}.lead_department", "lead_in_stage", "牵头部门必须是参与该阶段的部门之一。")
            for dept, days in step.department_limits.items():
                if dept not in step.departments:
                    err(f"{at}.department_limits.{dept}", "department_in_step",
                        f"部门 {dept} 不是该阶段的参与部门，不能为其设定时限。")
                if not 0 <= days <= step.limit_days:
                    err(f"{at}.department_limits.{dept}", "within_step_limit",
                        f"部门 {dept} 的办理时限 ({days}) 须在 0 至该阶段时限 ({step.limit_days}) 个工作日之间。")
        elif step.kind == "joint_review":
            if len(set(step.departments)) < 2:
                err(f"{at}.departments", "joint_min_departments", "联合审图/联合验收至少需要两个部门。")
            if not step.lead_department:
                err(f"{at}.lead_department", "lead_required", "联合审图/联合验收必须指定牵头部门。")
            elif step.lead_department not in step.departments:
                err(f"{at}.lead_department", "lead_in_stage", "牵头部门必须是参与联合审查的部门之一。")
            if step.review_kind is None:
                err(f"{at}.review_kind", "review_kind_required",
                    "联合审查步骤必须写明类型 (drawing_review 联合审图 / acceptance 联合验收)。")
        elif step.kind in ("review", "decision") and not step.departments:
            err(f"{at}.departments", "department_required", "审查和决定步骤必须指定承办部门。")
        if step.department_limits and step.kind != "parallel":
            err(f"{at}.department_limits", "parallel_only", "只有并联审批阶段可以为各部门分别设定时限。")
        if step.review_kind is not None and step.kind != "joint_review":
            err(f"{at}.review_kind", "joint_review_only", "只有联合审查步骤有审查类型。")
        if step.lead_department and step.kind not in ("parallel", "joint_review") \
                and step.lead_department not in step.departments:
            err(f"{at}.lead_department", "lead_in_stage", "牵头部门必须是该步骤的部门之一。")
        if not step.excluded_from_limit:
            counted_days += step.limit_days
    if item.promised_limit.unit == "working_days" and counted_days > item.promised_limit.value:
        err(
            "process.steps",
            "steps_within_promised",
            f"各步骤时限之和 ({counted_days}) 超过承诺办结时限 ({item.promised_limit.value})。",
        )

    if item.result.type == "certificate" and not item.result.certificate_type:
        err("result.certificate_type", "certificate_type_required", "结果为证照时必须写明证照类型代码。")
    errors.extend(check_form_fields(item))
    errors.extend(check_certificate_fields(item, ref))
    if item.fees.charged and not item.fees.items:
        err("fees.items", "fee_basis_required", "收费事项必须列明收费项目、标准和依据。")
    for i, fee in enumerate(item.fees.items if item.fees.charged else []):
        if fee.amount is None:
            err(f"fees.items.{i}.amount", "fee_amount_required", "收费项目必须写明金额（元），以便开具缴款通知。")
        codes = [e.code for e in fee.exemptions]
        if len(set(codes)) != len(codes):
            err(f"fees.items.{i}.exemptions", "unique", "减免情形编码重复。")
    return errors


def offered_points(listed: list[str] | None, excluded: list[str], tree: list[tuple[str, str | None]]) -> list[str]:
    """The points an item is really offered at: a listed point and everything below it in the tree (a town's
    villages), less the excluded points and everything below them. `["*"]` is the whole tree. The city centre
    (the root) passes nothing down: an item handled at the centre is not thereby handled in every town."""
    children: dict[str | None, list[str]] = {}
    parent_of = dict(tree)
    for code, parent in tree:
        children.setdefault(parent, []).append(code)

    def below(code: str) -> set[str]:
        if parent_of.get(code) is None:
            return {code}
        out, todo = {code}, [code]
        while todo:
            for c in children.get(todo.pop(), []):
                if c not in out:
                    out.add(c)
                    todo.append(c)
        return out

    known = {c for c, _ in tree}
    wanted: set[str] = set()
    for code in listed or []:
        wanted |= known if code == "*" else (below(code) if code in known else set())
    for code in excluded:
        if code in known:
            wanted -= below(code)
    return [c for c, _ in tree if c in wanted]


def check_form_fields(item: ItemContent) -> list[FieldError]:
    """Each form field has one name, and its rule is complete: a choice lists its options, a length range is
    a range."""
    errors: list[FieldError] = []
    names: set[str] = set()
    for i, f in enumerate(item.form_fields):
        at = f"form_fields.{i}"
        if f.name in names:
            errors.append(FieldError(field=f"{at}.name", rule="unique", message=f"表单字段 {f.name} 重复。"))
        names.add(f.name)
        if f.type == "select" and not f.options:
            errors.append(FieldError(field=f"{at}.options", rule="options_required", message="选择项字段必须列出可选值。"))
        if f.options and f.type != "select":
            errors.append(FieldError(field=f"{at}.options", rule="options_for_select", message="只有选择项字段才有可选值。"))
        if f.min_length is not None and f.max_length is not None and f.min_length > f.max_length:
            errors.append(FieldError(field=f"{at}.min_length", rule="range", message="最小长度不得大于最大长度。"))
    return errors


def check_certificate_fields(item: ItemContent, ref: Reference | None = None) -> list[FieldError]:
    """A certificate result says where each of its fields comes from (证照字段映射), at least the name it is
    issued under, every field its type requires (when datashare has announced the type) and no field the type
    lacks, and every source exists: an issued certificate must never be an empty shell."""
    result = item.result
    if result.type != "certificate":
        if result.fields:
            return [FieldError(field="result.fields", rule="certificate_only", message="只有证照类结果才需要字段映射。")]
        return []
    errors: list[FieldError] = []
    if "name" not in result.fields:
        errors.append(FieldError(field="result.fields.name", rule="certificate_mapping_required",
                                 message="结果为证照时必须写明证照字段的来源，至少包括持证名称 (name)。"))
    known = (ref.certificate_types.get(result.certificate_type or "") if ref else None)
    if known is not None:
        for name in sorted(known.required - set(result.fields) - {"name"}):
            errors.append(FieldError(field=f"result.fields.{name}", rule="certificate_mapping_required",
                                     message=f"证照类型 {result.certificate_type} 要求字段 {name}，须写明其来源。"))
        for name in sorted(set(result.fields) - known.defined):
            errors.append(FieldError(field=f"result.fields.{name}", rule="unknown_certificate_field",
                                     message=f"证照类型 {result.certificate_type} 没有字段 {name}。"))
    form_names = {f.name for f in item.form_fields}
    for target, source in result.fields.items():
        at = f"result.fields.{target}"
        if not target or len(target) > 64:
            errors.append(FieldError(field=at, rule="field_name", message="证照字段名须为 1-64 个字符。"))
        if source.startswith("form."):
            if source[5:] not in form_names:
                errors.append(FieldError(field=at, rule="unknown_form_field",
                                         message=f"表单中没有字段 {source[5:]}，无法作为证照字段来源。"))
        elif source not in CERTIFICATE_SOURCES:
            errors.append(FieldError(field=at, rule="unknown_source", message=(
                f"来源 {source} 无效：应为 form.<字段>、{'、'.join(sorted(CERTIFICATE_SOURCES))} 之一。")))
    return errors


#: The service-point tree: city centre → towns/streets (镇街) → villages/communities (村居).
PARENT_LEVEL: dict[str, str | None] = {"city": None, "town": "city", "village": "town"}


def check_point_parent(level: str, parent_level: str | None, parent_given: bool) -> list[FieldError]:
    """A point sits exactly one level below its parent; the city centre is the root."""
    want = PARENT_LEVEL[level]
    if want is None and parent_given:
        return [FieldError(field="body.parent_code", rule="tree_level", message="市级服务中心是树根，不能有上级。")]
    if want is not None and not parent_given:
        return [FieldError(field="body.parent_code", rule="parent_required", message=f"{level} 级服务点必须有上级。")]
    if want is not None and parent_given and parent_level is None:
        return [FieldError(field="body.parent_code", rule="unknown_service_point", message="上级服务点不存在。")]
    if want is not None and parent_level != want:
        return [FieldError(field="body.parent_code", rule="tree_level",
                           message=f"{level} 级服务点的上级必须是 {want} 级（而不是 {parent_level}）。")]
    return []


def check_point(code: str, level: PointLevel, parent_code: str | None, parent_level: str | None) -> list[FieldError]:
    """A service point written by an admin: in its place in the tree and never its own parent."""
    errors = check_point_parent(level, parent_level, parent_code is not None)
    if parent_code == code:
        errors.append(FieldError(field="body.parent_code", rule="tree_level", message="服务点不能是自己的上级。"))
    return errors


def check_department(code: str, credit_code: str | None) -> list[FieldError]:
    """A department's code is short ASCII; its unified social credit code (GB 32100) has a valid check character."""
    errors: list[FieldError] = []
    if not code.isascii() or not 1 <= len(code) <= 32:
        errors.append(FieldError(field="path.code", rule="format",
                                 message="部门代码须为不超过 32 个字符的字母、数字或连字符。"))
    if credit_code is not None and not uscc.is_valid(credit_code):
        errors.append(FieldError(field="body.credit_code", rule="credit_code",
                                 message="统一社会信用代码校验位不正确（GB 32100）。"))
    return errors


def check_life_event_name(name: str) -> list[FieldError]:
    if not 1 <= len(name) <= 100:
        return [FieldError(field="path.name", rule="max_length", message="主题事件名称须为 1 到 100 个字符。")]
    return []


@dataclass(frozen=True)
class Requirement:
    """A prior approval a negative-list entry asks for: its name, the department and the item that grant it."""

    approval: str
    department: str | None = None
    item: str | None = None


def check_negative_entry(category: str, requirements: list[Requirement], *, departments: frozenset[str],
                         items: frozenset[str]) -> list[FieldError]:
    """A permitted-entry (许可准入) line names what must be obtained first, and every department and item it
    names exists."""
    errors: list[FieldError] = []
    if category == "permitted" and not requirements:
        errors.append(FieldError(field="body.requirements", rule="approval_required",
                                 message="许可准入类条目必须列明须先取得的许可。"))
    for i, req in enumerate(requirements):
        if req.department and req.department not in departments:
            errors.append(FieldError(field=f"body.requirements.{i}.department", rule="unknown_department",
                                     message=f"部门 {req.department} 不在部门目录中。"))
        if req.item and req.item not in items:
            errors.append(FieldError(field=f"body.requirements.{i}.item", rule="unknown_item",
                                     message=f"事项 {req.item} 不存在。"))
    return errors


#: The longest window of the search-miss report (days).
MAX_REPORT_DAYS = 366


def check_report_window(start: date, end: date) -> list[FieldError]:
    if end < start:
        return [FieldError(field="query.to", rule="order", message="`to` must not be before `from`.")]
    if (end - start).days > MAX_REPORT_DAYS:
        return [FieldError(field="query.to", rule="max_range", message=f"At most {MAX_REPORT_DAYS} days.")]
    return []


Verdict = Literal["prohibited", "permitted_with_approval", "not_listed", "all"]


@dataclass(frozen=True)
class ListedEntry:
    """What the answer to “may I open X here?” needs of a negative-list entry."""

    title: str
    category: str
    approvals: tuple[str, ...] = ()


def negative_verdict(query: str | None, hits: Sequence[ListedEntry]) -> tuple[Verdict, str]:
    """The answer to “may I open X here?” from the entries the words matched: prohibited entries win, then
    the approvals to obtain first; anything not listed is open to all (非禁即入)."""
    if query is None:
        return "all", "市场准入负面清单全部条目。"
    prohibited = [e for e in hits if e.category == "prohibited"]
    if prohibited:
        return "prohibited", "该经营活动属于禁止准入事项：" + "；".join(e.title for e in prohibited)
    if hits:
        needs = [a for e in hits for a in e.approvals]
        return "permitted_with_approval", "可以经营，但须先取得：" + "、".join(dict.fromkeys(needs))
    return "not_listed", "负面清单以外的行业、领域，各类市场主体可依法平等进入。"
