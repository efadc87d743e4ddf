"""Who may see and act on workflow's tasks, cases and department webhooks. Pure: takes a `Principal`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shared.errors import Forbidden
from shared.principal import ADMIN, DEPARTMENT_REVIEWER, SUPERVISOR, Principal


def sees_all(p: Principal) -> bool:
    """Supervisors and admins see every department's tasks and cases."""
    return p.has(SUPERVISOR, ADMIN)


def acts_for_department(p: Principal, department: str) -> bool:
    """A reviewer of the department or the department's own system."""
    return p.department == department and (p.is_department_system or p.has(DEPARTMENT_REVIEWER))


def inbox_department(p: Principal, requested: str | None) -> str | None:
    """The department whose inbox the caller reads (None: every department, for supervisors and admins).
    Refuses (403) a caller who may not read the one requested."""
    if sees_all(p):
        return requested
    if p.department and (p.is_department_system or p.is_staff):
        if requested and requested != p.department:
            raise Forbidden("You see your own department's tasks only.")
        return p.department
    raise Forbidden("A department's inbox is for its staff and its system.")


def sees_task(p: Principal, department: str) -> bool:
    return sees_all(p) or p.department == department


def may_decide(p: Principal) -> bool:
    """A reviewer of a department, or a department's system (the task's own department is checked on the task)."""
    return bool(p.department) and (p.is_department_system or p.has(DEPARTMENT_REVIEWER))


def may_reassign(p: Principal, department: str) -> bool:
    """The task's own department: its reviewers, its system, or its supervisor."""
    return acts_for_department(p, department) or (p.department == department and p.has(SUPERVISOR))


def may_manage_webhook(p: Principal, department: str) -> bool:
    return p.has(ADMIN) or acts_for_department(p, department)


def sees_deliveries(p: Principal, department: str) -> bool:
    return sees_all(p) or acts_for_department(p, department)


def sees_case(p: Principal, applicant: Mapping[str, Any] | None, task_departments: Iterable[str]) -> bool:
    """The applicant (or the agent of the applying organisation), staff of an involved department, supervisors
    and admins."""
    applicant = applicant or {}
    applicant_ids = {str(v) for v in (applicant.get("id"), applicant.get("agent_id")) if v}
    own = bool(p.applicant_ids & applicant_ids) or (
        p.holder_id is not None and p.holder_id == applicant.get("holder_id")
    )
    involved = p.department is not None and (p.is_staff or p.is_department_system) and (
        p.department in set(task_departments)
    )
    return own or involved or sees_all(p)


def claim(p: Principal, name: str) -> str | None:
    """A contact claim from the token (`phone`, `unit`), cut to what the event carries."""
    value = p.claims.get(name)
    return str(value)[:100] if value else None
