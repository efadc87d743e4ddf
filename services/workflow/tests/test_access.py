"""Who may read and act on workflow's tasks, cases and webhooks (domain/access.py): pure rules, no server."""

from __future__ import annotations

import pytest

from services.workflow.domain.access import (
    claim,
    inbox_department,
    may_decide,
    may_manage_webhook,
    may_reassign,
    sees_case,
    sees_deliveries,
    sees_task,
)
from shared.errors import Forbidden
from shared.principal import Principal


def who(kind: str = "staff", roles: tuple[str, ...] = (), department: str | None = None, **claims: object) -> Principal:
    return Principal(subject="s-1", kind=kind, roles=frozenset(roles), department=department, name="张三",
                     claims=dict(claims))


REVIEWER = who(roles=("department_reviewer",), department="LD-SCJGJ", phone="0766-3822315", unit="许可科")
SYSTEM = who(kind="department_system", department="LD-SCJGJ")
CLERK = who(roles=("window_clerk",), department="LD-SCJGJ")
DEPT_SUPERVISOR = who(roles=("supervisor",), department="LD-SCJGJ")
ADMIN = who(roles=("admin",))
CITIZEN = who(kind="person")


def test_a_department_reads_its_own_inbox_and_supervisors_any():
    assert inbox_department(REVIEWER, None) == "LD-SCJGJ"
    assert inbox_department(SYSTEM, "LD-SCJGJ") == "LD-SCJGJ"
    assert inbox_department(DEPT_SUPERVISOR, None) is None  # every department
    assert inbox_department(ADMIN, "LD-WJJ") == "LD-WJJ"


def test_another_departments_inbox_or_a_citizens_is_refused():
    with pytest.raises(Forbidden):
        inbox_department(REVIEWER, "LD-WJJ")
    with pytest.raises(Forbidden):
        inbox_department(CITIZEN, None)


def test_a_task_is_seen_by_its_department_and_overseers_only():
    assert sees_task(CLERK, "LD-SCJGJ") and sees_task(ADMIN, "LD-WJJ")
    assert not sees_task(REVIEWER, "LD-WJJ") and not sees_task(CITIZEN, "LD-SCJGJ")


def test_reviewers_and_systems_decide_clerks_do_not():
    assert may_decide(REVIEWER) and may_decide(SYSTEM)
    assert not may_decide(CLERK) and not may_decide(ADMIN)


def test_reassignment_stays_in_the_tasks_department():
    assert may_reassign(REVIEWER, "LD-SCJGJ") and may_reassign(SYSTEM, "LD-SCJGJ")
    assert may_reassign(DEPT_SUPERVISOR, "LD-SCJGJ")  # the department's own supervisor
    assert not may_reassign(DEPT_SUPERVISOR, "LD-WJJ")
    assert not may_reassign(CLERK, "LD-SCJGJ") and not may_reassign(ADMIN, "LD-SCJGJ")


def test_a_webhook_is_managed_by_its_department_or_an_admin_and_its_deliveries_seen_by_supervisors_too():
    assert may_manage_webhook(SYSTEM, "LD-SCJGJ") and may_manage_webhook(ADMIN, "LD-SCJGJ")
    assert not may_manage_webhook(DEPT_SUPERVISOR, "LD-SCJGJ") and not may_manage_webhook(REVIEWER, "LD-WJJ")
    assert sees_deliveries(DEPT_SUPERVISOR, "LD-WJJ") and not sees_deliveries(CLERK, "LD-SCJGJ")


def test_a_case_is_seen_by_its_applicant_an_involved_department_and_overseers():
    applicant = {"kind": "person", "id": "p-9", "holder_id": "h-9"}
    assert sees_case(Principal(subject="p-9", kind="person", roles=frozenset()), applicant, [])
    assert sees_case(Principal(subject="x", kind="person", roles=frozenset(), holder_id="h-9"), applicant, [])
    assert sees_case(CLERK, applicant, ["LD-SCJGJ"]) and not sees_case(CLERK, applicant, ["LD-WJJ"])
    assert sees_case(ADMIN, applicant, []) and not sees_case(CITIZEN, applicant, ["LD-SCJGJ"])
    assert not sees_case(CITIZEN, None, [])


def test_contact_claims_are_cut_to_what_an_event_carries():
    assert claim(REVIEWER, "phone") == "0766-3822315"
    assert claim(REVIEWER, "missing") is None
    assert claim(who(unit="科" * 300), "unit") == "科" * 100
