"""Helpers the datashare routes share: who a principal may read as, and staff checks."""

from __future__ import annotations

from shared.auth import ADMIN, Principal


def own_holder_ids(principal: Principal) -> set[str]:
    """The holders whose data this token may read as itself: its person, its organisation, its principal."""
    ids = {principal.holder_id, principal.organisation}
    if principal.acting_for:
        ids.add(principal.acting_for.holder_id)
    return {i for i in ids if i}


def is_department_actor(principal: Principal) -> bool:
    return principal.kind in ("staff", "department_system") and bool(principal.department)


def acts_for_department(principal: Principal, department: str) -> bool:
    return principal.has(ADMIN) or (is_department_actor(principal) and principal.department == department)
