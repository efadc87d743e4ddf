"""Who may see what: the rules every use case applies to the caller. Pure: takes a `Principal`."""

from __future__ import annotations

from typing import Any

from shared.errors import Forbidden
from shared.principal import ADMIN, DEPARTMENT_REVIEWER, SUPERVISOR, WINDOW_CLERK, Principal

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


def oversight_scope(p: Principal, *, refusal: str) -> str | None:
    """None = everything (supervisors, admins); else the department whose records a department's staff or system
    sees. Refuses (403, with `refusal`) anyone else."""
    if is_overseer(p):
        return None
    dept = department_of(p)
    if dept is None:
        raise Forbidden(refusal)
    return dept


def narrowed(p: Principal, requested: str | None, *, refusal: str, foreign: str) -> str | None:
    """The department filter a caller may apply: overseers any (None = all), others only their own."""
    scope = oversight_scope(p, refusal=refusal)
    if scope is None:
        return requested
    if requested and requested != scope:
        raise Forbidden(foreign)
    return scope
