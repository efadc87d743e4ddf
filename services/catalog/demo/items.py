"""The demo items: a realistic starter catalogue of a county-level city, written from public knowledge of
Guangdong's implementation lists. `ITEMS` maps a short slug to (code, content dict)."""

from __future__ import annotations

from typing import Any

from services.catalog.demo.reference import CENTRE_ADDRESS, DEPARTMENTS, OFFICE_HOURS

CREDIT = {d["code"]: d["credit_code"] for d in DEPARTMENTS}
NAME = {d["code"]: d["name"] for d in DEPARTMENTS}
PHONE = {d["code"]: d["phone"] for d in DEPARTMENTS}

BUSINESS_LICENCE = "11441781MB0000001A001"
FOOD_PERMIT = "11441781MB0000001A002"
HYGIENE_PERMIT = "11441781MB0000002D001"
BIRTH_CERTIFICATE = "11441781MB0000002D002"
FIRE_SAFETY = "11441781MB0000003G001"
HOUSEHOLD_REGISTER = "11441781MB0000005N001"
MARRIAGE_CERTIFICATE = "11441781MB0000006R001"


def item_code(dept: str, kind: str, seq: int) -> str:
    """实施编码: the department's credit code, level 4 (county), and a 12-character basic code."""
    return f"{CREDIT[dept]}4{kind}{seq:06d}0000"


# --- materials ------------------------------------------------------------------------------------------

def identity(code: str = "applicant_id", name: str = "申请人身份证明") -> dict[str, Any]:
    return {"code": code, "name": name, "source": "registry", "registry": "population",
            "fields": ["name", "id_number", "address"], "necessity": "required",
            "notes": "系统通过人口库核验，无需提交复印件。"}


def company(code: str = "company_record") -> dict[str, Any]:
    return {"code": code, "name": "法人登记信息", "source": "registry", "registry": "legal_persons",
            "fields": ["name", "credit_code", "legal_representative"]}


def certificate(code: str, name: str, type_code: str, basis: str, **kw: Any) -> dict[str, Any]:
    return {"code": code, "name": name, "source": "certificate", "certificate_type": type_code,
            "legal_basis": basis, "fields": ["number", "holder_name"], **kw}


def upload(code: str, name: str, basis: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"code": code, "name": name, "source": "applicant", "legal_basis": basis, **kw}


def commitment(code: str, name: str, basis: str | None = None) -> dict[str, Any]:
    return {"code": code, "name": name, "source": "applicant", "commitment_allowed": True, "legal_basis": basis,
            "notes": "可签署告知承诺书代替，审批后核查。"}


def form(*fields: tuple[str, str, str] | dict[str, Any]) -> list[dict[str, Any]]:
    """Required fields given as (name, label, type), or a whole field dict (optional ones, choices, lengths)."""
    return [f if isinstance(f, dict) else {"name": f[0], "label": f[1], "type": f[2], "required": True}
            for f in fields]


#: The applicant's name and phone: every item's form asks at least this.
CONTACT = (("applicant_name", "申请人姓名", "text"), ("phone", "联系电话", "phone"))


# --- process ------------------------------------------------------------------------------------------

def standard_steps(dept: str, promised: int) -> list[dict[str, Any]]:
    """受理 → 审查 → 决定 → 送达, sharing the promised days."""
    if promised <= 0:
        return [
            {"key": "acceptance", "name": "受理", "kind": "acceptance", "departments": [dept], "limit_days": 0},
            {"key": "decision", "name": "审核办结（即办）", "kind": "decision", "departments": [dept], "limit_days": 0},
        ]
    review = max(promised - 2, 0)
    decision = 1 if promised >= 2 else 0
    return [
        {"key": "acceptance", "name": "受理", "kind": "acceptance", "departments": [dept], "limit_days": 0},
        {"key": "review", "name": "审查", "kind": "review", "departments": [dept], "limit_days": review},
        {"key": "decision", "name": "决定", "kind": "decision", "departments": [dept], "limit_days": decision},
        {"key": "delivery", "name": "送达", "kind": "delivery", "departments": [dept],
         "limit_days": promised - review - decision},
    ]


def item(
    dept: str, kind: str, seq: int, name: str, *,
    audience: tuple[str, ...] = ("natural_person",), statutory: int = 20, promised: int = 10,
    immediate: bool = False, visits: int = 0, fully_online: bool = True,
    channels: tuple[str, ...] = ("online", "mobile", "window"), themes: tuple[str, ...] = (),
    life_events: tuple[str, ...] = (), keywords: tuple[str, ...] = (), materials: list[dict[str, Any]] | None = None,
    steps: list[dict[str, Any]] | None = None, result: dict[str, Any] | None = None,
    fees: dict[str, Any] | None = None, basis: tuple[str, ...] = (), summary: str | None = None,
    form_fields: list[dict[str, Any]] | None = None, points: tuple[str, ...] = ("*",),
    special: list[dict[str, Any]] | None = None, intermediary: list[dict[str, Any]] | None = None,
    conditions: tuple[str, ...] = (), mistakes: tuple[str, ...] = (), min_assurance_level: int = 2,
    excluded_points: tuple[str, ...] = (), collection_points: tuple[str, ...] | None = None,
) -> tuple[str, dict[str, Any]]:
    if immediate:
        promised = 0
    code = item_code(dept, kind, seq)
    content = {
        "name": name, "kind": kind, "department": dept, "audience": list(audience),
        "case_kind": "immediate" if immediate else "promised",
        "statutory_limit": {"value": statutory, "unit": "working_days"},
        "promised_limit": {"value": promised, "unit": "working_days"},
        "visits_required": 0 if fully_online else visits, "fully_online": fully_online,
        "min_assurance_level": min_assurance_level,
        "channels": list(channels), "service_points": list(points), "excluded_points": list(excluded_points),
        "collection_points": list(collection_points) if collection_points is not None else None,
        "themes": list(themes),
        "life_events": list(life_events), "keywords": list(keywords),
        "form_fields": form_fields or form(*CONTACT),
        "materials": materials or [identity()],
        "process": {"steps": steps or standard_steps(dept, promised)},
        "special_procedures": special or [],
        "result": result or {"type": "document", "certificate_type": None, "name": f"{name}办理结果通知书"},
        "fees": fees or {"charged": False, "items": [], "waivable": False, "note": "不收费"},
        "intermediary_services": intermediary or [],
        "guide": {
            "summary": summary or f"{NAME[dept]}办理“{name}”的服务指南。",
            "legal_basis": list(basis),
            "accepting_unit": NAME[dept],
            "conditions": list(conditions) or ["申请人符合法律法规规定的条件，材料齐全、符合法定形式。"],
            "forms": [{"name": f"{name}申请表", "url": f"/catalog/v1/items/{code}/application-form.html"}],
            "samples": [{"name": f"{name}申请表（填写样本）",
                         "url": f"/catalog/v1/items/{code}/application-form.html?sample=true"}],
            "common_mistakes": list(mistakes) or ["申请表未签名或签名与身份证明不一致。"],
            "accountability": "工作人员未按承诺时限办结的，依照《罗定市政务服务效能监察办法》追究责任。",
            "consultation": [{"channel": "phone", "value": PHONE[dept]},
                             {"channel": "window", "value": f"{CENTRE_ADDRESS}综合窗口"},
                             {"channel": "online", "value": "广东政务服务网 罗定市站点"}],
            "complaint": [{"channel": "phone", "value": "12345"}],
            "office_hours": OFFICE_HOURS,
            "address": CENTRE_ADDRESS,
            "transit": "乘 1 路、3 路、8 路公交车至“市政务服务中心”站",
            "status_query": "广东政务服务网、粤省事小程序或凭受理回执号在政务服务中心自助终端查询",
            "handling_area": "全市通办" if list(points) == ["*"] else "指定服务点办理",
        },
    }
    return code, content


CONSTRUCTION = "工程建设"
#: The one form of a project's stage (一表申请): every item of the project stages asks these.
PROJECT_FORM = (("project_name", "项目名称", "text"), ("project_code", "项目代码", "text"),
                ("construction_site", "建设地点", "address"), ("applicant_name", "申请人姓名", "text"),
                ("phone", "联系电话", "phone"))


def utility(provider: str, seq: int, name: str, what: str, basis: str) -> tuple[str, dict[str, Any]]:
    """水电气报装: a service enterprise's own item and guide (task 17), handled like a department's."""
    return item(
        provider, "20", seq, name, audience=("legal_person",), statutory=10, promised=5, themes=("construction",),
        life_events=(CONSTRUCTION,), keywords=(name, what), basis=(basis,),
        materials=[company(), commitment("connection_commitment", f"{name}用户承诺书")],
        form_fields=form(*PROJECT_FORM),
        summary=f"{NAME[provider]}（公共服务企业）办理“{name}”的服务指南：{what}，并入工程建设项目施工许可阶段并联办理。",
        fees={"charged": False, "items": [], "waivable": False, "note": "报装服务不收费（工程费用按合同另计）"})


RESTAURANT = "开办餐饮店"
NEWBORN = "新生儿出生"
PERSONAL_ID_BASIS = "《中华人民共和国居民身份证法》第三条"

_FOOD_STEPS = [
    {"key": "acceptance", "name": "受理", "kind": "acceptance", "departments": ["LD-SCJGJ"], "limit_days": 1},
    {"key": "joint_review", "name": "并联审查", "kind": "parallel",
     "departments": ["LD-SCJGJ", "LD-WJJ", "LD-XFJ", "LD-STHJJ"], "lead_department": "LD-SCJGJ",
     "limit_days": 6, "on_reject": "reject_case", "deemed_approval_on_timeout": False,
     "description": "市场监管（牵头）审查经营场所与食品安全制度，卫健、消防、生态环境同步审查。"},
    {"key": "decision", "name": "决定", "kind": "decision", "departments": ["LD-SCJGJ"], "limit_days": 2},
    {"key": "delivery", "name": "送达（电子证照）", "kind": "delivery", "departments": ["LD-SCJGJ"], "limit_days": 1},
]

def _joint_steps(review_kind: str, name: str, departments: list[str], days: int) -> list[dict[str, Any]]:
    """受理 → 联合审查 (the first department leads) → 决定 → 送达."""
    lead = departments[0]
    return [
        {"key": "acceptance", "name": "受理", "kind": "acceptance", "departments": [lead], "limit_days": 1},
        {"key": "joint_review", "name": name, "kind": "joint_review", "review_kind": review_kind,
         "departments": departments, "lead_department": lead, "limit_days": days,
         "description": "牵头部门排期（时间、地点或现场），各参与部门出具意见，牵头部门汇总出具一份结果。"},
        {"key": "decision", "name": "决定", "kind": "decision", "departments": [lead], "limit_days": 1},
        {"key": "delivery", "name": "送达", "kind": "delivery", "departments": [lead], "limit_days": 1},
    ]


_ITEMS: dict[str, tuple[str, dict[str, Any]]] = {
    # 市场监督管理局 ------------------------------------------------------------------------------------
    "individual-licence": item(
        "LD-SCJGJ", "01", 1, "个体工商户注册登记（营业执照）", promised=1, statutory=15,
        themes=("startup", "business"), life_events=(RESTAURANT,),
        keywords=("营业执照", "个体户", "开店", "饭店", "餐馆", "小店", "工商登记"),
        materials=[identity("operator_id", "经营者身份证明"),
                   upload("premises_proof", "经营场所使用证明", "《促进个体工商户发展条例》第九条"),
                   commitment("registration_commitment", "个体工商户登记承诺书")],
        form_fields=form(("business_name", "个体工商户名称", "text"), ("business_address", "经营场所", "address"),
                         ("business_scope", "经营范围", "textarea"), ("phone", "联系电话", "phone")),
        result={"type": "certificate", "certificate_type": BUSINESS_LICENCE, "name": "营业执照",
                "fields": {"name": "form.business_name", "legal_representative": "applicant.name",
                           "address": "form.business_address", "business_scope": "form.business_scope"}},
        basis=("《促进个体工商户发展条例》", "《中华人民共和国市场主体登记管理条例》第三条")),
    "company-licence": item(
        "LD-SCJGJ", "01", 2, "企业设立登记（营业执照）", audience=("legal_person",), promised=1, statutory=3,
        themes=("startup", "business"), life_events=("开办企业",),
        keywords=("营业执照", "开公司", "注册公司", "公司登记", "工商登记"),
        materials=[identity("legal_rep_id", "法定代表人身份证明"),
                   upload("articles", "公司章程", "《中华人民共和国公司法》第二十九条"),
                   upload("premises_proof", "住所使用证明", "《中华人民共和国市场主体登记管理条例》第十六条")],
        form_fields=form(("company_name", "企业名称", "text"), ("company_address", "住所", "address"),
                         ("business_scope", "经营范围", "textarea"),
                         {"name": "registered_capital", "label": "注册资本（元）", "type": "amount", "required": False},
                         {"name": "entity_type", "label": "企业类型", "type": "select", "required": True,
                          "options": ["有限责任公司", "股份有限公司", "个人独资企业", "合伙企业"]},
                         ("phone", "联系电话", "phone")),
        result={"type": "certificate", "certificate_type": BUSINESS_LICENCE, "name": "营业执照",
                "fields": {"name": "form.company_name", "address": "form.company_address",
                           "business_scope": "form.business_scope", "registered_capital": "form.registered_capital",
                           "entity_type": "form.entity_type"}},
        basis=("《中华人民共和国公司法》", "《中华人民共和国市场主体登记管理条例》")),
    "food-permit": item(
        "LD-SCJGJ", "01", 3, "食品经营许可", audience=("natural_person", "legal_person"),
        statutory=20, promised=10, themes=("startup", "business", "health"), life_events=(RESTAURANT,),
        keywords=("饭店", "餐馆", "餐饮", "餐饮店", "开饭店", "小吃店", "食品经营许可证", "食堂", "奶茶店"),
        summary="从事餐饮服务、食品销售的经营者，须取得食品经营许可证。市场监管牵头，卫健、消防、生态环境并联审查，全程网办。",
        materials=[
            certificate("business_licence", "营业执照", BUSINESS_LICENCE, "《食品经营许可和备案管理办法》第十三条"),
            identity("legal_rep_id", "法定代表人（负责人）身份证明"),
            upload("floor_plan", "经营场所平面布局图", "《食品经营许可和备案管理办法》第十三条",
                   notes="标明加工操作区域、设备布局和功能间", file_types=["pdf", "jpg", "png"]),
            commitment("food_safety_commitment", "食品安全自查承诺书", "《食品经营许可和备案管理办法》第十三条"),
        ],
        form_fields=form(("business_name", "经营者名称", "text"), ("business_address", "经营场所", "address"),
                         ("business_scope", "经营项目", "text"), ("phone", "联系电话", "phone")),
        steps=_FOOD_STEPS,
        result={"type": "certificate", "certificate_type": FOOD_PERMIT, "name": "食品经营许可证",
                "fields": {"name": "form.business_name", "operator": "applicant.name",
                           "address": "form.business_address", "business_premises": "form.business_address",
                           "main_business": "form.business_scope"}},
        basis=("《中华人民共和国食品安全法》第三十五条", "《食品经营许可和备案管理办法》"),
        conditions=("已取得营业执照", "具有与经营的食品品种、数量相适应的经营场所", "有食品安全管理人员和规章制度"),
        mistakes=("平面图未标明功能分区", "经营项目与场所条件不符")),
    "food-permit-change": item(
        "LD-SCJGJ", "01", 4, "食品经营许可变更", audience=("natural_person", "legal_person"), statutory=20, promised=5,
        themes=("business",), keywords=("食品经营许可证变更", "餐饮"),
        materials=[certificate("food_permit", "食品经营许可证", FOOD_PERMIT, "《食品经营许可和备案管理办法》第二十九条"),
                   upload("change_note", "变更情况说明")],
        form_fields=form(("business_name", "经营者名称", "text"), ("business_address", "经营场所", "address"),
                         ("business_scope", "经营项目", "text"), ("phone", "联系电话", "phone")),
        result={"type": "certificate", "certificate_type": FOOD_PERMIT, "name": "食品经营许可证",
                "fields": {"name": "form.business_name", "operator": "applicant.name",
                           "address": "form.business_address", "business_premises": "form.business_address",
                           "main_business": "form.business_scope"}},
        basis=("《食品经营许可和备案管理办法》第二十九条",)),
    "special-equipment": item(
        "LD-SCJGJ", "01", 5, "特种设备使用登记", audience=("legal_person",), statutory=15, promised=5,
        themes=("safety",), keywords=("电梯", "锅炉", "压力容器", "特种设备"),
        materials=[company(), upload("inspection_report", "监督检验证明"),
                   upload("equipment_docs", "产品合格证及出厂文件")],
        intermediary=[{"code": "ZJ-003", "legal_basis": "《中华人民共和国特种设备安全法》第四十条"}],
        basis=("《中华人民共和国特种设备安全法》第三十三条",)),
    "name-declaration": item(
        "LD-SCJGJ", "10", 6, "企业名称自主申报", audience=("legal_person", "natural_person"), immediate=True,
        statutory=1, themes=("startup",), life_events=("开办企业",), keywords=("企业名称", "公司名字", "核名"),
        basis=("《企业名称登记管理规定》",)),
    # 卫生健康局 ------------------------------------------------------------------------------------------
    "hygiene-permit": item(
        "LD-WJJ", "01", 1, "公共场所卫生许可", audience=("natural_person", "legal_person"), statutory=20, promised=8,
        themes=("health", "business"), keywords=("卫生许可证", "宾馆", "理发店", "美容院", "游泳池"),
        materials=[certificate("business_licence", "营业执照", BUSINESS_LICENCE, "《公共场所卫生管理条例实施细则》第二十二条"),
                   upload("floor_plan", "场所平面图", "《公共场所卫生管理条例实施细则》第二十二条"),
                   upload("hygiene_rules", "卫生管理制度")],
        form_fields=form(("premises_name", "场所名称", "text"), ("premises_address", "场所地址", "address"),
                         {"name": "premises_type", "label": "场所类别", "type": "select", "required": True,
                          "options": ["宾馆", "美容美发", "游泳场所", "沐浴场所", "其他"]},
                         ("phone", "联系电话", "phone")),
        result={"type": "certificate", "certificate_type": HYGIENE_PERMIT, "name": "公共场所卫生许可证",
                "fields": {"name": "form.premises_name", "address": "form.premises_address",
                           "premises_type": "form.premises_type"}},
        special=[{"name": "现场卫生检测", "kind": "testing", "max_days": 10}],
        basis=("《公共场所卫生管理条例》第八条",)),
    "birth-certificate": item(
        "LD-WJJ", "07", 2, "出生医学证明签发", statutory=5, promised=1,
        themes=("birth", "health"), life_events=(NEWBORN,),
        keywords=("出生证", "出生证明", "新生儿", "宝宝出生", "生孩子"),
        materials=[identity("mother_id", "母亲身份证明"), identity("father_id", "父亲身份证明"),
                   upload("birth_record", "分娩医院出具的出生信息登记", "《中华人民共和国母婴保健法》第二十三条")],
        form_fields=form(*CONTACT, ("child_name", "新生儿姓名", "text"),
                         {"name": "child_gender", "label": "新生儿性别", "type": "select", "required": True,
                          "options": ["男", "女"]},
                         ("birth_date", "出生日期", "date"), ("birth_place", "出生地点", "address"),
                         {"name": "mother_name", "label": "母亲姓名", "type": "text", "required": False},
                         {"name": "father_name", "label": "父亲姓名", "type": "text", "required": False}),
        result={"type": "certificate", "certificate_type": BIRTH_CERTIFICATE, "name": "出生医学证明",
                "fields": {"name": "form.child_name", "gender": "form.child_gender", "birth_date": "form.birth_date",
                           "birth_place": "form.birth_place", "mother_name": "form.mother_name",
                           "father_name": "form.father_name"}},
        basis=("《中华人民共和国母婴保健法》第二十三条",)),
    "clinic-filing": item(
        "LD-WJJ", "10", 3, "诊所备案", audience=("natural_person", "legal_person"), immediate=True, statutory=1,
        themes=("health", "startup"), keywords=("开诊所", "诊所", "门诊部"),
        materials=[upload("practitioner_cert", "医师执业证书"), upload("clinic_plan", "诊所布局平面图")],
        basis=("《医疗机构管理条例》第九条",)),
    "doctor-registration": item(
        "LD-WJJ", "01", 4, "医师执业注册", statutory=20, promised=10, themes=("health", "employment"),
        keywords=("医生", "执业医师", "医师证"),
        materials=[identity(), upload("qualification", "医师资格证书"), upload("health_check", "健康体检证明")],
        basis=("《中华人民共和国医师法》第十三条",)),
    # 消防救援大队 ---------------------------------------------------------------------------------------
    "fire-check": item(
        "LD-XFJ", "01", 1, "公众聚集场所投入使用、营业前消防安全检查", audience=("natural_person", "legal_person"),
        statutory=10, promised=5, visits=1, fully_online=False, themes=("safety", "business"),
        life_events=(RESTAURANT,), keywords=("消防检查", "消防安全", "开业消防", "饭店消防"),
        materials=[certificate("business_licence", "营业执照", BUSINESS_LICENCE, "《中华人民共和国消防法》第十五条"),
                   commitment("fire_commitment", "消防安全告知承诺书", "《中华人民共和国消防法》第十五条")],
        form_fields=form(("premises_name", "场所名称", "text"), ("premises_address", "场所地址", "address"),
                         {"name": "use", "label": "使用性质", "type": "select", "required": True,
                          "options": ["餐饮", "商场", "宾馆", "娱乐", "其他"]},
                         ("phone", "联系电话", "phone")),
        result={"type": "certificate", "certificate_type": FIRE_SAFETY, "name": "公众聚集场所投入使用营业前消防安全检查合格证",
                "fields": {"name": "form.premises_name", "address": "form.premises_address", "use": "form.use"}},
        basis=("《中华人民共和国消防法》第十五条",)),
    # 生态环境局罗定分局 -----------------------------------------------------------------------------------
    "eia-approval": item(
        "LD-STHJJ", "01", 1, "建设项目环境影响报告表审批", audience=("legal_person",), statutory=30, promised=15,
        themes=("environment", "construction"), life_events=("工程建设",), keywords=("环评", "环境影响评价"),
        materials=[company(), upload("eia_report", "环境影响报告表", "《中华人民共和国环境影响评价法》第二十二条")],
        intermediary=[{"code": "ZJ-001", "legal_basis": "《中华人民共和国环境影响评价法》第十九条"}],
        special=[{"name": "公示", "kind": "public_notice", "max_days": 5},
                 {"name": "专家评审", "kind": "expert_review", "max_days": 10}],
        basis=("《中华人民共和国环境影响评价法》第二十二条",)),
    "eia-filing": item(
        "LD-STHJJ", "10", 2, "建设项目环境影响登记表备案", audience=("natural_person", "legal_person"), immediate=True,
        statutory=1, themes=("environment",), life_events=(RESTAURANT,), keywords=("环评备案", "餐饮油烟", "饭店环保"),
        materials=[identity(), upload("registration_form", "环境影响登记表")],
        basis=("《建设项目环境影响登记表备案管理办法》",)),
    "pollutant-permit": item(
        "LD-STHJJ", "01", 3, "排污许可证核发", audience=("legal_person",), statutory=20, promised=15,
        themes=("environment",), keywords=("排污证", "排污许可"),
        materials=[company(), upload("monitoring_plan", "自行监测方案")], basis=("《排污许可管理条例》第十一条",)),
    # 公安局 --------------------------------------------------------------------------------------------
    "birth-registration": item(
        "LD-GAJ", "07", 1, "出生登记（新生儿入户）", statutory=5, promised=1, visits=0,
        themes=("household", "birth"), life_events=(NEWBORN,), keywords=("上户口", "入户", "新生儿户口", "报户口"),
        materials=[certificate("birth_certificate", "出生医学证明", BIRTH_CERTIFICATE, "《中华人民共和国户口登记条例》第七条"),
                   certificate("household_register", "居民户口簿", HOUSEHOLD_REGISTER, "《中华人民共和国户口登记条例》第七条"),
                   identity("parent_id", "父（母）身份证明")],
        basis=("《中华人民共和国户口登记条例》第七条",)),
    "id-card": item(
        "LD-GAJ", "07", 2, "居民身份证申领", statutory=60, promised=20, visits=1, fully_online=False,
        channels=("window", "post"), themes=("household",), keywords=("身份证", "办身份证", "补办身份证", "换领身份证"),
        materials=[certificate("household_register", "居民户口簿", HOUSEHOLD_REGISTER, PERSONAL_ID_BASIS)],
        fees={"charged": True, "waivable": True, "items": [
            {"name": "居民身份证工本费", "standard": "20 元/证（首次申领免费）", "basis": "发改价格〔2003〕2322号",
             "amount": "20.00", "exemptions": [
                 {"code": "first_application", "name": "首次申领居民身份证",
                  "basis": "《中华人民共和国居民身份证法》第二十条；发改价格〔2003〕2322号",
                  "proof": "户口簿（系统核验，无需提交）"},
                 {"code": "subsistence_recipient", "name": "城乡最低生活保障对象",
                  "basis": "《广东省行政事业性收费减免规定》", "proof": "低保证（系统核验）"}]}]},
        collection_points=("*",),
        basis=(PERSONAL_ID_BASIS,)),
    "temp-id-card": item(
        "LD-GAJ", "07", 3, "临时居民身份证申领", immediate=True, statutory=3, visits=1, fully_online=False,
        channels=("window",), themes=("household",), keywords=("临时身份证",),
        materials=[identity()],
        fees={"charged": True, "waivable": True, "items": [
            {"name": "临时居民身份证工本费", "standard": "10 元/证", "basis": "发改价格〔2005〕436号",
             "amount": "10.00", "exemptions": [
                 {"code": "subsistence_recipient", "name": "城乡最低生活保障对象",
                  "basis": "《广东省行政事业性收费减免规定》", "proof": "低保证（系统核验）"}]}]},
        basis=(PERSONAL_ID_BASIS,)),
    "residence-permit": item(
        "LD-GAJ", "07", 4, "居住证申领", statutory=15, promised=10, themes=("household",),
        keywords=("居住证", "暂住证"), materials=[identity(), upload("residence_proof", "居住证明")],
        basis=("《居住证暂行条例》第九条",)),
    "household-move": item(
        "LD-GAJ", "07", 5, "户口迁入（投靠类）", statutory=20, promised=10, visits=1, fully_online=False,
        # Moving someone's household registration is what identity theft would aim at: the ID card is checked
        # in person at a window first (实名核验三级).
        min_assurance_level=3, themes=("household",), keywords=("户口迁移", "迁户口", "投靠"),
        materials=[certificate("household_register", "居民户口簿", HOUSEHOLD_REGISTER, "《中华人民共和国户口登记条例》第十三条"),
                   certificate("marriage_certificate", "结婚证", MARRIAGE_CERTIFICATE, "《中华人民共和国户口登记条例》第十三条",
                               necessity="conditional", condition="夫妻投靠的")],
        basis=("《中华人民共和国户口登记条例》第十三条",)),
    # 民政局 --------------------------------------------------------------------------------------------
    "marriage": item(
        "LD-MZJ", "07", 1, "内地居民结婚登记", immediate=True, statutory=1, visits=1, fully_online=False,
        channels=("window",), points=("LD-CENTRE",), themes=("civil_affairs",), life_events=("结婚登记",),
        keywords=("结婚", "领证", "结婚证", "登记结婚"),
        materials=[identity("applicant_id", "男方身份证明"), identity("spouse_id", "女方身份证明"),
                   certificate("household_register", "居民户口簿", HOUSEHOLD_REGISTER, "《婚姻登记条例》第五条"),
                   upload("photos", "双方近期半身免冠合影照片", "《婚姻登记条例》第五条", form="paper", originals=3)],
        form_fields=form(*CONTACT, ("spouse_name", "对方姓名", "text"), ("spouse_id_number", "对方身份证号", "id_number")),
        result={"type": "certificate", "certificate_type": MARRIAGE_CERTIFICATE, "name": "结婚证",
                "fields": {"name": "applicant.name", "spouse_name": "form.spouse_name",
                           "spouse_id_number": "form.spouse_id_number", "registered_on": "decision.decided_on"}},
        basis=("《中华人民共和国民法典》第一千零四十九条", "《婚姻登记条例》")),
    "divorce": item(
        "LD-MZJ", "07", 2, "内地居民离婚登记", statutory=30, promised=30, visits=2, fully_online=False,
        channels=("window",), points=("LD-CENTRE",), themes=("civil_affairs",), keywords=("离婚",),
        materials=[identity("applicant_id", "双方身份证明"),
                   certificate("marriage_certificate", "结婚证", MARRIAGE_CERTIFICATE, "《婚姻登记条例》第十一条"),
                   upload("agreement", "离婚协议书", "《婚姻登记条例》第十一条", form="paper", originals=3)],
        steps=[
            {"key": "acceptance", "name": "受理", "kind": "acceptance", "departments": ["LD-MZJ"]},
            {"key": "cooling_off", "name": "离婚冷静期", "kind": "review", "departments": ["LD-MZJ"],
             "limit_days": 30, "excluded_from_limit": True},
            {"key": "decision", "name": "审查登记", "kind": "decision", "departments": ["LD-MZJ"], "limit_days": 0},
            {"key": "delivery", "name": "发证", "kind": "delivery", "departments": ["LD-MZJ"]},
        ],
        basis=("《中华人民共和国民法典》第一千零七十七条",)),
    "subsistence": item(
        "LD-MZJ", "05", 3, "最低生活保障审核确认", statutory=30, promised=20, themes=("poverty_relief",),
        life_events=("困难救助",), keywords=("低保", "困难补助", "生活困难"),
        materials=[identity(), commitment("income_statement", "家庭收入和财产状况申报及承诺")],
        special=[{"name": "入户调查结果公示", "kind": "public_notice", "max_days": 7}],
        basis=("《社会救助暂行办法》第十一条",)),
    "extreme-poverty": item(
        "LD-MZJ", "05", 4, "特困人员认定", statutory=30, promised=20, themes=("poverty_relief",),
        life_events=("困难救助",), keywords=("五保", "特困供养"),
        materials=[identity(), commitment("income_statement", "家庭收入和财产状况申报及承诺")],
        basis=("《社会救助暂行办法》第十五条",)),
    "elderly-allowance": item(
        "LD-MZJ", "05", 5, "高龄老人津贴申领", statutory=20, promised=10, themes=("elderly",),
        # Offered in two towns and so in their villages, except one village without a civil-affairs desk.
        points=("LD-CENTRE", "LD-LC", "LD-SL"), excluded_points=("LD-SL-02",),
        life_events=("养老退休",), keywords=("高龄津贴", "长寿金", "老人补贴"), materials=[identity()],
        basis=("《广东省老年人权益保障条例》",)),
    # 人力资源和社会保障局 --------------------------------------------------------------------------------
    "unemployment-registration": item(
        "LD-RSJ", "20", 1, "失业登记", immediate=True, statutory=1, themes=("employment",),
        life_events=("失业就业",), keywords=("失业", "找工作", "就业失业登记"), materials=[identity()],
        basis=("《就业服务与就业管理规定》第六十三条",)),
    "unemployment-benefit": item(
        "LD-RSJ", "05", 2, "失业保险金申领", statutory=20, promised=5, themes=("employment", "social_security"),
        life_events=("失业就业",), keywords=("失业金", "失业保险"), materials=[identity()],
        basis=("《失业保险条例》第十六条",)),
    "startup-loan": item(
        "LD-RSJ", "05", 3, "创业担保贷款申请", statutory=20, promised=15, themes=("startup", "employment"),
        keywords=("创业贷款", "贴息贷款", "创业扶持"),
        materials=[identity(), certificate("business_licence", "营业执照", BUSINESS_LICENCE,
                                           "《创业担保贷款贴息资金管理办法》第六条"),
                   upload("business_plan", "创业计划书")],
        basis=("《创业担保贷款贴息资金管理办法》",)),
    "pension-enrolment": item(
        "LD-RSJ", "20", 4, "城乡居民基本养老保险参保登记", immediate=True, statutory=1,
        themes=("social_security", "elderly"), life_events=("养老退休",), keywords=("养老保险", "社保", "参保"),
        materials=[identity()], basis=("《国务院关于建立统一的城乡居民基本养老保险制度的意见》",)),
    "social-security-card": item(
        "LD-RSJ", "20", 5, "社会保障卡申领", statutory=10, promised=5, themes=("social_security",),
        # Cards are printed centrally and handed out at the centre and in every town (villages included).
        collection_points=("LD-CENTRE", "LD-LC", "LD-SL", "LD-FC", "LD-SD", "LD-LN", "LD-TT"),
        life_events=(NEWBORN,), keywords=("社保卡", "社会保障卡", "办社保卡"), materials=[identity()],
        basis=("《中华人民共和国社会保险法》第五十八条",)),
    # 住房和城乡建设局 -----------------------------------------------------------------------------------
    "construction-permit": item(
        "LD-ZJJ", "01", 1, "建筑工程施工许可证核发", audience=("legal_person",), statutory=7, promised=3,
        themes=("construction",), life_events=("工程建设",), keywords=("施工许可", "开工", "建房"),
        materials=[company(), upload("land_proof", "用地批准手续"), upload("drawings_review", "施工图审查合格书")],
        intermediary=[{"code": "ZJ-002", "legal_basis": "《建设工程质量管理条例》第十一条"}],
        basis=("《中华人民共和国建筑法》第七条",)),
    "public-rental": item(
        "LD-ZJJ", "20", 2, "公共租赁住房申请", statutory=30, promised=20, themes=("housing",),
        keywords=("公租房", "廉租房", "保障房"),
        materials=[identity(), certificate("household_register", "居民户口簿", HOUSEHOLD_REGISTER,
                                           "《公共租赁住房管理办法》第七条"),
                   commitment("housing_statement", "家庭住房和收入情况承诺")],
        special=[{"name": "审核结果公示", "kind": "public_notice", "max_days": 5}],
        basis=("《公共租赁住房管理办法》",)),
    # 联合审图、联合验收 (reform plan task 13): one review the lead schedules, several departments take part --------
    "joint_drawing_review": item(
        "LD-ZJJ", "06", 101, "施工图联合审查", audience=("legal_person",), statutory=20, promised=15,
        themes=("construction",), life_events=("工程建设",), keywords=("联合审图", "施工图审查", "多图联审"),
        summary="住建牵头，消防、生态环境同步审查施工图设计文件，一次排期、一次出具审查意见；不合格的要点一次性告知，"
                "修改后只复审不合格的要点。",
        materials=[company(), upload("construction_drawings", "施工图设计文件", "《建设工程质量管理条例》第十一条",
                                     file_types=["pdf"])],
        # The project's one form (一表申请): the same fields as every other item of the project's stages.
        form_fields=form(*PROJECT_FORM),
        steps=_joint_steps("drawing_review", "施工图联合审查", ["LD-ZJJ", "LD-XFJ", "LD-STHJJ"], 12),
        basis=("《建设工程质量管理条例》第十一条", "《房屋建筑和市政基础设施工程施工图设计文件审查管理办法》")),
    "joint_completion_acceptance": item(
        "LD-ZJJ", "06", 102, "竣工联合验收", audience=("legal_person",), statutory=20, promised=15,
        themes=("construction",), life_events=("工程建设",), keywords=("联合验收", "竣工验收", "竣工备案"),
        summary="住建牵头，消防、生态环境、卫健等部门一次现场联合验收，牵头部门汇总出具一份验收意见；"
                "不合格的要点一次性告知，整改后只复验不合格的要点。",
        materials=[company(), upload("completion_report", "工程竣工验收报告", "《建设工程质量管理条例》第十六条")],
        # The project's one form (一表申请): the same fields as every other item of the project's stages.
        form_fields=form(*PROJECT_FORM),
        steps=_joint_steps("acceptance", "竣工联合验收（现场）", ["LD-ZJJ", "LD-XFJ", "LD-STHJJ", "LD-WJJ"], 12),
        result={"type": "document", "certificate_type": None, "name": "竣工联合验收意见书"},
        basis=("《建设工程质量管理条例》第十六条", "《国务院办公厅关于全面开展工程建设项目审批制度改革的实施意见》")),
    # 教育局 -------------------------------------------------------------------------------------------
    "school-enrolment": item(
        "LD-JYJ", "20", 1, "义务教育阶段学校招生入学", statutory=20, promised=15, themes=("education",),
        life_events=("子女入学",), keywords=("入学", "上学", "小学报名", "学位"),
        materials=[identity("guardian_id", "监护人身份证明"),
                   certificate("household_register", "居民户口簿", HOUSEHOLD_REGISTER, "《中华人民共和国义务教育法》第十二条")],
        basis=("《中华人民共和国义务教育法》第十二条",)),
    "teacher-certification": item(
        "LD-JYJ", "07", 2, "教师资格认定", statutory=30, promised=20, themes=("education", "employment"),
        keywords=("教师资格证", "教师证"),
        materials=[identity(), upload("exam_certificate", "考试合格证明"), upload("health_check", "体检合格证明")],
        basis=("《教师资格条例》",)),
    # 医疗保障局 ---------------------------------------------------------------------------------------
    "medical-enrolment": item(
        "LD-YBJ", "20", 1, "城乡居民基本医疗保险参保登记", immediate=True, statutory=1, themes=("social_security", "health"),
        life_events=(NEWBORN,), keywords=("医保", "医疗保险", "新生儿医保", "参保"), materials=[identity()],
        basis=("《中华人民共和国社会保险法》第二十五条",)),
    "remote-medical": item(
        "LD-YBJ", "20", 2, "异地就医备案", immediate=True, statutory=1, themes=("health", "social_security"),
        keywords=("异地就医", "外地看病", "医保备案"), materials=[identity()],
        basis=("《基本医疗保险跨省异地就医直接结算经办规程》",)),
    "chronic-disease": item(
        "LD-YBJ", "20", 3, "门诊特定病种待遇认定", statutory=15, promised=10, themes=("health", "social_security"),
        keywords=("慢病", "门特", "特殊病种"), materials=[identity(), upload("diagnosis", "病历及诊断证明")],
        basis=("《广东省基本医疗保险门诊特定病种管理办法》",)),
    # 企业投资项目（工程建设项目）的阶段事项 (issue 17) ------------------------------------------------------------
    "project-filing": item(
        "LD-FGJ", "10", 1, "企业投资项目备案", audience=("legal_person",), statutory=3, promised=2,
        themes=("construction",), life_events=(CONSTRUCTION,), keywords=("项目备案", "投资备案", "立项"),
        materials=[company(), commitment("filing_commitment", "项目信息真实性承诺书", "《企业投资项目核准和备案管理条例》第十三条")],
        form_fields=form(*PROJECT_FORM), basis=("《企业投资项目核准和备案管理条例》第十三条",)),
    "land-planning-permit": item(
        "LD-ZRZYJ", "01", 1, "建设用地规划许可证核发", audience=("legal_person",), statutory=20, promised=7,
        themes=("construction",), life_events=(CONSTRUCTION,), keywords=("用地规划许可", "用地许可", "规划许可"),
        materials=[company(), upload("land_contract", "国有建设用地使用权出让合同", "《中华人民共和国城乡规划法》第三十八条")],
        form_fields=form(*PROJECT_FORM), basis=("《中华人民共和国城乡规划法》第三十八条",)),
    "works-planning-permit": item(
        "LD-ZRZYJ", "01", 2, "建设工程规划许可证核发", audience=("legal_person",), statutory=20, promised=10,
        themes=("construction",), life_events=(CONSTRUCTION,), keywords=("工程规划许可", "规划许可证"),
        materials=[company(), upload("design_scheme", "建设工程设计方案总平面图", "《中华人民共和国城乡规划法》第四十条")],
        form_fields=form(*PROJECT_FORM), basis=("《中华人民共和国城乡规划法》第四十条",)),
    "water-connection": utility("QY-GS", 1, "供水报装", "用水报装、接水", "《城市供水条例》第二十二条"),
    "power-connection": utility("QY-GD", 2, "供电报装", "用电报装、接电", "《供电营业规则》第十六条"),
    "gas-connection": utility("QY-RQ", 3, "燃气报装", "用气报装、通气", "《城镇燃气管理条例》第十九条"),
    "telecom-connection": utility("QY-DX", 4, "通信报装", "宽带、专线报装", "《中华人民共和国电信条例》第十七条"),
}

ITEMS: dict[str, tuple[str, dict[str, Any]]] = _ITEMS
