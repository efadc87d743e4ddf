"""Project types (企业投资项目 / 工程建设项目) and their stages: each stage a set of items of several providers, the
stage's total limit, and each provider's own limit within it (明确部门办理时限). Pure: the save-time rules."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import FieldError

KEY = r"^[a-z][a-z0-9_]{1,63}$"


class StageItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_code: str = Field(min_length=1, max_length=40, description="The item's implementation code.")
    department: str = Field(min_length=1, max_length=32, description="The provider handling it (the item's).")
    limit_days: int = Field(ge=0, le=365, description="This provider's own limit in the stage (working days).")


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY)
    name: str = Field(min_length=1, max_length=100)
    order: int = Field(ge=1, le=50)
    total_limit_days: int = Field(ge=1, le=365, description="The stage's total limit (working days).")
    items: list[StageItem] = Field(min_length=1, max_length=30)


class ProjectTypeContent(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "企业投资项目（工程建设项目）", "description": "一般社会投资工业类项目",
        "stages": [{"key": "approval_land", "name": "立项用地规划许可", "order": 1, "total_limit_days": 15,
                    "items": [{"item_code": "11441781MB0000012E4100000010000", "department": "LD-FGJ",
                               "limit_days": 3}]}]}]})

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    stages: list[Stage] = Field(min_length=1, max_length=20)


def check_project_type(content: ProjectTypeContent, items: Mapping[str, str],
                       departments: frozenset[str]) -> list[FieldError]:
    """Every broken rule at once. `items` maps each known item code to its department.

    - stage keys and orders are unique; an item appears in one stage only;
    - each item exists, and the department named is the item's own (and a known provider);
    - each department's limit is within the stage's total limit."""
    errors: list[FieldError] = []

    def err(path: str, rule: str, message: str) -> None:
        errors.append(FieldError(field=f"body.{path}", rule=rule, message=message))

    seen_keys: set[str] = set()
    seen_orders: set[int] = set()
    seen_items: dict[str, str] = {}
    for i, stage in enumerate(content.stages):
        at = f"stages[{i}]"
        if stage.key in seen_keys:
            err(f"{at}.key", "unique_stage_key", f"阶段标识 {stage.key} 重复。")
        if stage.order in seen_orders:
            err(f"{at}.order", "unique_stage_order", f"阶段顺序 {stage.order} 重复。")
        seen_keys.add(stage.key)
        seen_orders.add(stage.order)
        for j, it in enumerate(stage.items):
            path = f"{at}.items[{j}]"
            if it.item_code in seen_items:
                err(f"{path}.item_code", "item_in_one_stage",
                    f"事项 {it.item_code} 已列入阶段 {seen_items[it.item_code]}。")
            seen_items.setdefault(it.item_code, stage.key)
            owner = items.get(it.item_code)
            if owner is None:
                err(f"{path}.item_code", "unknown_item", f"事项 {it.item_code} 不在事项目录中。")
            elif owner != it.department:
                err(f"{path}.department", "item_department",
                    f"事项 {it.item_code} 由 {owner} 办理，不是 {it.department}。")
            if it.department not in departments:
                err(f"{path}.department", "unknown_department", f"部门 {it.department} 不在部门目录中。")
            if it.limit_days > stage.total_limit_days:
                err(f"{path}.limit_days", "department_limit_within_stage",
                    f"部门办理时限 {it.limit_days} 个工作日超过阶段“{stage.name}”总时限 "
                    f"{stage.total_limit_days} 个工作日。")
    return errors
