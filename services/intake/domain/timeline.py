"""Step codes of the timeline (事中告知): a stable machine name for each kind of step, so front ends and
notifications switch on the code while the Chinese wording may change."""

from __future__ import annotations

#: Exact step texts → code.
EXACT: dict[str, str] = {
    "创建申请草稿": "draft_created",
    "复制既往申请创建草稿": "draft_copied",
    "提交申请": "submitted",
    "补正后重新提交": "resubmitted",
    "受理": "accepted",
    "即办件当场办结": "decided_on_the_spot",
    "不予受理": "not_accepted",
    "退回补正（一次性告知）": "returned_for_correction",
    "申请人撤回": "withdrawn",
    "申请人已补正": "corrected",
    "要求补正（一次性告知）": "correction_requested",
    "部门审查通过": "task_approved",
    "部门审查不通过": "task_rejected",
    "审批通过": "approved",
    "审批不予许可": "rejected",
    "电子证照送达": "delivered_electronic",
    "窗口领取": "delivered_pickup",
    "邮寄送达": "delivered_post",
    "已指定经办人": "handler_assigned",
    "告知承诺核查：属实": "commitment_kept",
    "告知承诺核查：承诺不实": "commitment_broken",
}
#: Step texts that carry a variable part after a prefix → code (longest prefix first).
PREFIXES: list[tuple[str, str]] = [
    ("部门审查：", "task_decided"),
    ("审查：", "task_assigned"),
    ("审批：", "decided_other"),
    ("结果已出", "result_ready"),
    ("电子证照已签发", "certificate_issued"),
    ("共享获取", "data_fetched"),
]


def code_for(step: str) -> str:
    """The code of a step text; `other` for a text this version does not know (never an error)."""
    if step in EXACT:
        return EXACT[step]
    for prefix, code in PREFIXES:
        if step.startswith(prefix):
            return code
    return "other"
