"""The demo project type (issue 17): 企业投资项目（工程建设项目）, four stages in order, each item with its provider's own
limit within the stage's total (明确部门办理时限), 水电气报装 of the service enterprises in the construction stage."""

from __future__ import annotations

from typing import Any

from services.catalog.demo.items import ITEMS


def _stage(key: str, name: str, order: int, total: int, items: list[tuple[str, int]]) -> dict[str, Any]:
    return {"key": key, "name": name, "order": order, "total_limit_days": total,
            "items": [{"item_code": ITEMS[slug][0], "department": ITEMS[slug][1]["department"], "limit_days": days}
                      for slug, days in items]}


ENTERPRISE_INVESTMENT = "enterprise_investment"

PROJECT_TYPES: dict[str, dict[str, Any]] = {
    ENTERPRISE_INVESTMENT: {
        "name": "企业投资项目（工程建设项目）",
        "description": "一般社会投资工业类项目：立项用地规划许可、工程建设许可、施工许可、竣工验收四个阶段，"
                       "政务服务中心统一受理、统一分派，各部门并联审批、各自明确办理时限。",
        "stages": [
            _stage("approval_land", "立项用地规划许可", 1, 10, [("project-filing", 2), ("land-planning-permit", 7)]),
            _stage("construction_permit", "工程建设许可", 2, 15,
                   [("works-planning-permit", 10), ("joint_drawing_review", 10)]),
            _stage("construction", "施工许可", 3, 10,
                   [("construction-permit", 3), ("water-connection", 5), ("power-connection", 5),
                    ("gas-connection", 5), ("telecom-connection", 5)]),
            _stage("completion", "竣工验收", 4, 12, [("joint_completion_acceptance", 12)]),
        ],
    },
}
