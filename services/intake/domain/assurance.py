"""Identity assurance at submission (实名核验): an item declares the level an applicant needs to submit
(`min_assurance_level` in the published version, default 2); the applicant's token carries theirs (`level`).

1 self-registered (browse, consult, draft), 2 matched against the population registry, 3 ID card checked in
person at a window."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_REQUIRED = 2

HOW_TO_RISE = {
    2: "请在“我的账户”完成实名核验（姓名与身份证号码须与人口库一致），或携带居民身份证到任一政务服务窗口现场核验。",
    3: "请携带居民身份证到任一政务服务窗口，由工作人员现场核验身份（三级实名）后再提交。",
}


def required_level(item_payload: Mapping[str, Any]) -> int:
    """Versions published before the field existed need level 2, as the default does."""
    value = item_payload.get("min_assurance_level", DEFAULT_REQUIRED)
    return value if isinstance(value, int) and 1 <= value <= 3 else DEFAULT_REQUIRED


@dataclass(frozen=True)
class TooLow:
    required: int
    current: int

    @property
    def message(self) -> str:
        return (f"此事项需要{self.required}级实名核验的账户才能提交，你的账户为{self.current}级。{HOW_TO_RISE[self.required]}"
                f" This item needs identity assurance level {self.required} to submit; your account is level "
                f"{self.current}.")


def shortfall(item_payload: Mapping[str, Any], level: int) -> TooLow | None:
    required = required_level(item_payload)
    return TooLow(required, level) if level < required else None
