"""Who may use the staff desks (a point's collections, unpaid cases, commitments, insights) and who books
appointments: pure rules over the caller's token claims, raising shared problems."""

from __future__ import annotations

from shared.errors import Forbidden, invalid
from shared.principal import ADMIN, DEPARTMENT_REVIEWER, SUPERVISOR, WINDOW_CLERK, Principal


def staff_of_point(principal: Principal, code: str) -> None:
    """A point's collections: its own window clerks (their point from the staff record), supervisors, admins."""
    if principal.kind != "staff":
        raise Forbidden("Only staff see a point's collections.")
    if principal.has(ADMIN, SUPERVISOR):
        return
    if not principal.has(WINDOW_CLERK) or principal.service_point != code:
        raise Forbidden("A window clerk sees the collections of their own point (from the staff record) only.")


def sees_everything(principal: Principal) -> bool:
    return principal.has(ADMIN, SUPERVISOR)


def clerk_or_supervisor(principal: Principal, what: str) -> None:
    if principal.kind != "staff" or not principal.has(WINDOW_CLERK, ADMIN, SUPERVISOR):
        raise Forbidden(what)


def department_of(principal: Principal) -> str:
    """The department whose commitments (告知承诺) the caller verifies."""
    if principal.kind != "staff" or not principal.department or not principal.has(
        DEPARTMENT_REVIEWER, WINDOW_CLERK, SUPERVISOR, ADMIN
    ):
        raise Forbidden("Only a department's staff verify its commitments.")
    return principal.department


def visit_point(principal: Principal, claimed: str | None) -> str:
    """A visit is recorded at the clerk's own point, from the staff record their token carries, never what the
    client claims."""
    if not principal.has(WINDOW_CLERK):
        raise Forbidden("Only a window clerk records visits.")
    point = principal.service_point
    if not point:
        raise Forbidden("Your staff record names no service point.")
    if claimed and claimed != point:
        raise invalid("service_point", "not_your_point", f"You work at {point}; a visit is recorded there.")
    return point


def walk_in_point(principal: Principal) -> str:
    """A walk-in (窗口代录) is filed by a window clerk at their own point."""
    if principal.kind != "staff" or not principal.has(WINDOW_CLERK):
        raise Forbidden("Only a window clerk files for a person at the counter.")
    if not principal.service_point:
        raise Forbidden("Your staff record names no service point; a walk-in is filed at the clerk's own point.")
    return principal.service_point


def appointment_holder(principal: Principal) -> str:
    """Appointments are booked by applicants, for whom they act (delegation, organisation) or themselves."""
    if principal.kind != "person":
        raise Forbidden("Appointments are booked by applicants.")
    if principal.acting_for:
        return principal.acting_for.subject
    return principal.organisation or principal.subject


def may_answer(principal: Principal, department: str) -> None:
    if principal.department != department or not principal.has(WINDOW_CLERK, DEPARTMENT_REVIEWER, ADMIN, SUPERVISOR):
        raise Forbidden("Only the owning department answers.")


def insights_department(principal: Principal, department: str | None) -> str | None:
    """Supervisors see the city; a department's staff see their own department only."""
    if principal.kind != "staff":
        raise Forbidden("For supervisors and departments' staff.")
    if principal.has(SUPERVISOR, ADMIN):
        return department
    if not (principal.has(DEPARTMENT_REVIEWER, WINDOW_CLERK) and principal.department):
        raise Forbidden("For supervisors and departments' staff.")
    if department and department != principal.department:
        raise Forbidden("A department's staff see their own department only.")
    return principal.department
