"""Departments, the service-point tree, life events, the intermediary-service list and the negative list."""

from __future__ import annotations

from typing import Any

CENTRE_ADDRESS = "罗定市罗城街道兴华一路政务服务中心"
OFFICE_HOURS = "周一至周五 上午8:30-12:00，下午14:30-17:30（法定节假日除外）"

DEPARTMENTS: list[dict[str, Any]] = [
    {"code": "LD-ZSJ", "name": "罗定市政务服务数据管理局", "credit_code": "11441781MB0000008X", "phone": "0766-3812345"},
    {"code": "LD-SCJGJ", "name": "罗定市市场监督管理局", "credit_code": "11441781MB0000001A", "phone": "0766-3822315"},
    {"code": "LD-WJJ", "name": "罗定市卫生健康局", "credit_code": "11441781MB0000002D", "phone": "0766-3723120"},
    {"code": "LD-XFJ", "name": "罗定市消防救援大队", "credit_code": "11441781MB0000003G", "phone": "0766-3712119"},
    {"code": "LD-STHJJ", "name": "云浮市生态环境局罗定分局", "credit_code": "11441781MB0000004K", "phone": "0766-3712369"},
    {"code": "LD-GAJ", "name": "罗定市公安局", "credit_code": "11441781MB0000005N", "phone": "0766-3722110"},
    {"code": "LD-MZJ", "name": "罗定市民政局", "credit_code": "11441781MB0000006R", "phone": "0766-3822536"},
    {"code": "LD-RSJ", "name": "罗定市人力资源和社会保障局", "credit_code": "11441781MB0000007W", "phone": "0766-12333"},
    {"code": "LD-ZJJ", "name": "罗定市住房和城乡建设局", "credit_code": "11441781MB0000009Q", "phone": "0766-3726208"},
    {"code": "LD-JYJ", "name": "罗定市教育局", "credit_code": "11441781MB0000010H", "phone": "0766-3823601"},
    {"code": "LD-YBJ", "name": "罗定市医疗保障局", "credit_code": "11441781MB0000011P", "phone": "0766-3888123"},
    {"code": "LD-FGJ", "name": "罗定市发展和改革局", "credit_code": "11441781MB0000012E", "phone": "0766-3822601"},
    {"code": "LD-ZRZYJ", "name": "罗定市自然资源局", "credit_code": "11441781MB0000013H", "phone": "0766-3822701"},
    # Service enterprises (task 17): providers of their own items and guides (水电气报装), not departments of the
    # government. Credit codes computed with python-stdnum's `stdnum.cn.uscc`.
    {"code": "QY-GS", "name": "罗定市供水有限公司", "credit_code": "91441781MA4W10001Q", "phone": "0766-3721234",
     "kind": "service_enterprise"},
    {"code": "QY-GD", "name": "广东电网有限责任公司罗定供电局", "credit_code": "91441781MA4W10002U", "phone": "95598",
     "kind": "service_enterprise"},
    {"code": "QY-RQ", "name": "罗定市燃气有限公司", "credit_code": "91441781MA4W10003Y", "phone": "0766-3768888",
     "kind": "service_enterprise"},
    {"code": "QY-DX", "name": "中国电信股份有限公司罗定分公司", "credit_code": "91441781MA4W100042", "phone": "10000",
     "kind": "service_enterprise"},
]
#: What kind of provider each entry is: a government department, a service enterprise or an intermediary.
PROVIDER_KINDS = ("government_department", "service_enterprise", "intermediary")
for _d in DEPARTMENTS:
    _d.setdefault("kind", "government_department")
    _d.setdefault("address", f"{CENTRE_ADDRESS}（{_d['name']}综合窗口）")
    _d.setdefault("office_hours", OFFICE_HOURS)

_TOWNS = [
    ("LD-LC", "罗城街道", "罗定市罗城街道城中路 8 号", ["LD-LC-01 龙华社区", "LD-LC-02 城东社区", "LD-LC-03 红光社区"]),
    ("LD-SL", "素龙街道", "罗定市素龙街道素龙大道 28 号", ["LD-SL-01 素龙社区", "LD-SL-02 岗咀村"]),
    ("LD-FC", "附城街道", "罗定市附城街道人民路 1 号", ["LD-FC-01 附城社区", "LD-FC-02 大岗村"]),
    ("LD-SD", "双东街道", "罗定市双东街道双东路 3 号", ["LD-SD-01 双东社区", "LD-SD-02 南庄村"]),
    ("LD-LN", "罗镜镇", "罗定市罗镜镇建设路 16 号", ["LD-LN-01 罗镜社区", "LD-LN-02 水摆村"]),
    ("LD-TT", "太平镇", "罗定市太平镇太平大道 5 号", ["LD-TT-01 太平社区"]),
]

SERVICE_POINTS: list[dict[str, Any]] = [
    {
        "code": "LD-CENTRE", "name": "罗定市政务服务中心", "level": "city", "parent_code": None,
        "address": CENTRE_ADDRESS, "phone": "0766-3812345",
        "opening_hours": "周一至周五 8:30-12:00、14:30-17:30；周六上午 9:00-12:00 延时服务",
        "transit": "乘 1 路、3 路、8 路公交车至“市政务服务中心”站下车",
    }
]
for _code, _name, _addr, _villages in _TOWNS:
    SERVICE_POINTS.append({
        "code": _code, "name": f"{_name}党群服务中心（便民服务中心）", "level": "town", "parent_code": "LD-CENTRE",
        "address": _addr, "phone": "0766-3800000", "opening_hours": OFFICE_HOURS,
        "transit": f"乘城乡公交至“{_name}”站下车步行 5 分钟",
    })
    for _v in _villages:
        _vcode, _vname = _v.split(" ")
        SERVICE_POINTS.append({
            "code": _vcode, "name": f"{_name}{_vname}党群服务站", "level": "village", "parent_code": _code,
            "address": f"{_addr}（{_vname}）", "phone": None, "opening_hours": "周一至周五 9:00-12:00、14:30-17:00",
            "transit": None,
        })

LIFE_EVENTS: list[dict[str, Any]] = [
    {"name": "开办餐饮店", "audience": ["natural_person", "legal_person"],
     "description": "开一家饭店、餐馆、小吃店：营业执照、食品经营许可、消防安全检查、环境影响登记等一次办好。"},
    {"name": "开办企业", "audience": ["legal_person"], "description": "设立公司：登记、刻章、申领发票、社保开户。"},
    {"name": "新生儿出生", "audience": ["natural_person"],
     "description": "孩子出生：出生医学证明、户口登记、医保参保、社保卡一次办。"},
    {"name": "结婚登记", "audience": ["natural_person"], "description": "结婚登记及相关户籍、生育服务。"},
    {"name": "失业就业", "audience": ["natural_person"], "description": "失业登记、失业保险金、就业创业证、创业扶持。"},
    {"name": "子女入学", "audience": ["natural_person"], "description": "义务教育阶段入学、转学。"},
    {"name": "困难救助", "audience": ["natural_person"], "description": "最低生活保障、特困供养、临时救助。"},
    {"name": "养老退休", "audience": ["natural_person"], "description": "养老保险待遇、高龄津贴。"},
    {"name": "工程建设", "audience": ["legal_person"], "description": "建设项目环评、施工许可、消防验收。"},
]

INTERMEDIARY_SERVICES: list[dict[str, Any]] = [
    {"code": "ZJ-001", "name": "建设项目环境影响报告书（表）编制", "department": "LD-STHJJ",
     "legal_basis": "《中华人民共和国环境影响评价法》第十九条", "providers": "具备相应能力的技术单位（自愿选择）",
     "fee_basis": "市场调节价", "time_limit": "按合同约定"},
    {"code": "ZJ-002", "name": "建设工程施工图设计文件审查", "department": "LD-ZJJ",
     "legal_basis": "《建设工程质量管理条例》第十一条；《房屋建筑和市政基础设施工程施工图设计文件审查管理办法》",
     "providers": "省住房城乡建设厅认定的审查机构", "fee_basis": "政府购买服务，申请人免费", "time_limit": "15 个工作日"},
    {"code": "ZJ-003", "name": "特种设备定期检验", "department": "LD-SCJGJ",
     "legal_basis": "《中华人民共和国特种设备安全法》第四十条", "providers": "核准的特种设备检验机构",
     "fee_basis": "粤发改价格〔2017〕号收费标准", "time_limit": "按检验规则"},
    {"code": "ZJ-004", "name": "建筑消防设施检测", "department": "LD-XFJ",
     "legal_basis": "《中华人民共和国消防法》第十六条", "providers": "消防技术服务机构",
     "fee_basis": "市场调节价", "time_limit": "按合同约定"},
]

NEGATIVE_LIST: list[dict[str, Any]] = [
    {"code": "NL-101", "category": "prohibited", "title": "禁止违规开展金融相关经营活动",
     "description": "非金融机构不得发放贷款、吸收公众存款、开展网络借贷信息中介以外的金融业务。",
     "keywords": ["贷款", "放贷", "小额贷款", "集资", "存款", "金融"], "requirements": [],
     "legal_basis": "《市场准入负面清单（2025年版）》禁止准入类第 4 项"},
    {"code": "NL-102", "category": "prohibited", "title": "禁止在居民住宅楼新建产生油烟污染的餐饮服务项目",
     "description": "居民住宅楼、未配套设立专用烟道的商住综合楼内不得新建、改建、扩建产生油烟、异味、废气的餐饮服务项目。",
     "keywords": ["住宅楼", "居民楼", "油烟"], "requirements": [],
     "legal_basis": "《中华人民共和国大气污染防治法》第八十一条"},
    {"code": "NL-201", "category": "permitted", "title": "未获得许可，不得从事食品生产经营",
     "description": "从事餐饮服务、食品销售须取得食品经营许可；开业前公众聚集场所须通过消防安全检查。",
     "keywords": ["饭店", "餐馆", "餐饮", "餐饮店", "小吃", "奶茶", "食品", "超市", "便利店", "酒楼"],
     "requirements": [
         {"approval": "营业执照", "department": "LD-SCJGJ", "item": "individual-licence"},
         {"approval": "食品经营许可", "department": "LD-SCJGJ", "item": "food-permit"},
         {"approval": "公众聚集场所投入使用、营业前消防安全检查", "department": "LD-XFJ", "item": "fire-check"},
     ],
     "legal_basis": "《中华人民共和国食品安全法》第三十五条"},
    {"code": "NL-202", "category": "permitted", "title": "未获得许可，不得经营住宿、美容美发等公共场所",
     "description": "宾馆、酒店、美容美发、游泳场所等公共场所须取得公共场所卫生许可。",
     "keywords": ["宾馆", "酒店", "旅馆", "民宿", "美容", "美发", "理发", "游泳"],
     "requirements": [
         {"approval": "营业执照", "department": "LD-SCJGJ", "item": "individual-licence"},
         {"approval": "公共场所卫生许可", "department": "LD-WJJ", "item": "hygiene-permit"},
     ],
     "legal_basis": "《公共场所卫生管理条例》第八条"},
    {"code": "NL-203", "category": "permitted", "title": "未获得许可，不得设立医疗机构或从事诊疗活动",
     "description": "开办诊所实行备案管理，其他医疗机构须取得设置审批和执业登记。",
     "keywords": ["诊所", "医院", "门诊", "医疗"],
     "requirements": [{"approval": "诊所备案", "department": "LD-WJJ", "item": "clinic-filing"}],
     "legal_basis": "《医疗机构管理条例》第九条"},
    {"code": "NL-204", "category": "permitted", "title": "未获得许可，不得从事建筑活动",
     "description": "建筑工程开工前须取得施工许可。",
     "keywords": ["建筑", "施工", "工地", "盖楼"],
     "requirements": [{"approval": "建筑工程施工许可", "department": "LD-ZJJ", "item": "construction-permit"}],
     "legal_basis": "《中华人民共和国建筑法》第七条"},
]
