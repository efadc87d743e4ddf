"""Delegation (委托代办): a person or an organisation lets another person act for it, for all items or listed
ones, until a moment; the grantor can revoke it at any time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class DelegationState:
    agent_id: str
    valid_until: datetime
    revoked_at: datetime | None

    def unusable_because(self, *, agent_id: str, now: datetime) -> str | None:
        """Why `agent_id` may not act under this delegation now, or None when it may."""
        if self.agent_id != agent_id:
            return "The delegation was granted to someone else."
        if self.revoked_at is not None:
            return "The delegation has been revoked."
        if now >= self.valid_until:
            return "The delegation has expired."
        return None


def normalise_items(items: list[str] | None) -> list[str] | None:
    """None means every item; a list is de-duplicated and sorted so equal grants compare equal."""
    if items is None:
        return None
    return sorted({i.strip() for i in items if i.strip()})
