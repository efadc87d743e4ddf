"""The life of an item version: draft → in_review → published → withdrawn, and superseded when a newer version
is published. A published version's content never changes; only its status moves on."""

from __future__ import annotations

from typing import Any, Literal

from shared.errors import PreconditionFailed, PreconditionRequired

Status = Literal["draft", "in_review", "published", "superseded", "withdrawn"]
Action = Literal["submit", "return", "publish", "withdraw", "supersede"]
#: What the change log records: the lifecycle's actions plus creating, editing and starting a version.
ChangeAction = Literal["create", "update", "new_version", "submit", "return", "publish", "withdraw", "supersede"]

_TRANSITIONS: dict[tuple[str, str], Status] = {
    ("draft", "submit"): "in_review",
    ("in_review", "return"): "draft",
    ("in_review", "publish"): "published",
    ("published", "withdraw"): "withdrawn",
    ("published", "supersede"): "superseded",
}
#: Statuses whose content an editor may still change.
EDITABLE: frozenset[str] = frozenset({"draft"})
#: Statuses a version is in while it is being prepared (at most one per item).
OPEN: frozenset[str] = frozenset({"draft", "in_review"})
#: Statuses the public may read.
PUBLIC: frozenset[str] = frozenset({"published", "superseded", "withdrawn"})


class IllegalTransition(Exception):
    def __init__(self, status: str, action: str) -> None:
        super().__init__(f"A version in status {status!r} cannot be {action!r}ed.")
        self.status, self.action = status, action


def next_status(status: str, action: str) -> Status:
    try:
        return _TRANSITIONS[(status, action)]
    except KeyError:
        raise IllegalTransition(status, action) from None


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """The top-level fields that differ (for the change log: who changed what and when)."""
    if before is None:
        return sorted(after)
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def etag(code: str, version: int, revision: int) -> str:
    return f'"{code}.v{version}.r{revision}"'


def check_if_match(current: str, if_match: str | None) -> None:
    """A draft changes only against the tag its editor last read (optimistic locking): none is 428, a stale
    one 412. `*` and weak forms of the current tag match."""
    if not if_match:
        raise PreconditionRequired("修改草稿需要 If-Match 请求头（取自上次读取时的 ETag）。")
    candidates = {c.strip().removeprefix("W/") for c in if_match.split(",")}
    if "*" not in candidates and current not in candidates:
        raise PreconditionFailed("草稿已被他人修改；请重新读取后再提交。", current_etag=current)
