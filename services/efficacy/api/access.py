"""Who may see what: shared by the routes."""

from __future__ import annotations

from typing import Any

from shared.auth import ADMIN, DEPARTMENT_REVIEWER, SUPERVISOR, WINDOW_CLERK, Principal

OVERSIGHT = (SUPERVISOR, ADMIN)


def is_overseer(p: Principal) -> bool:
    return p.has(*OVERSIGHT)


def department_of(p: Principal) -> str | None:
    """The department a department's staff or system acts for (None for others)."""
    if (p.is_staff and p.has(DEPARTMENT_REVIEWER, WINDOW_CLERK)) or p.is_department_system:
        return p.department
    return None


def is_applicant(p: Principal, applicant: dict[str, Any] | None) -> bool:
    """The token's subject, organisation, or the principal it acts for is the application's applicant."""
    if not applicant:
        return False
    theirs = {str(v) for v in (applicant.get("id"), applicant.get("holder_id")) if v}
    mine = set(p.applicant_ids)
    if p.holder_id:
        mine.add(p.holder_id)
    if p.acting_for and p.acting_for.holder_id:
        mine.add(p.acting_for.holder_id)
    if applicant.get("agent_id") and p.subject == str(applicant["agent_id"]):
        return True
    return bool(theirs & mine)
