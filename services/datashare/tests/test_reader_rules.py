"""Who a token may read as, who acts for a department, and the assurance level a holder's data needs: rules the
routes used to hold, now in the domain (pure: no server, no database)."""

from __future__ import annotations

from services.datashare.domain.purpose import (
    acts_for_department,
    holder_level_problem,
    is_department_actor,
    own_holder_ids,
)
from shared.principal import ActingFor, Principal


def person(level: int = 2, **kw: object) -> Principal:
    return Principal(subject="p", kind="person", roles=frozenset({"citizen"}), assurance_level=level, **kw)  # type: ignore[arg-type]


def test_a_token_reads_as_its_person_its_organisation_and_its_principal():
    agent = person(holder_id="445381199601011234", organisation="92445381MA4W00000P",
                   acting_for=ActingFor(subject="q", kind="person", holder_id="445381199702022223", assurance_level=2))
    assert own_holder_ids(agent) == {"445381199601011234", "92445381MA4W00000P", "445381199702022223"}
    assert own_holder_ids(Principal(subject="s", kind="staff", roles=frozenset({"admin"}))) == set()


def test_only_staff_and_systems_of_the_department_or_an_admin_act_for_it():
    reviewer = Principal(subject="r", kind="staff", roles=frozenset({"department_reviewer"}), department="LD-SCJGJ")
    system = Principal(subject="c", kind="department_system", roles=frozenset({"department_system"}),
                       department="LD-SCJGJ")
    admin = Principal(subject="a", kind="staff", roles=frozenset({"admin"}))
    assert acts_for_department(reviewer, "LD-SCJGJ") and acts_for_department(system, "LD-SCJGJ")
    assert not acts_for_department(reviewer, "LD-WJJ")
    assert acts_for_department(admin, "LD-WJJ")
    assert not acts_for_department(person(department="LD-SCJGJ"), "LD-SCJGJ")
    assert not is_department_actor(Principal(subject="s", kind="staff", roles=frozenset({"supervisor"})))


def test_a_holders_data_needs_the_minimum_level_and_under_a_delegation_the_lower_one_counts():
    assert holder_level_problem(person(2), 2) is None
    assert "level is 1" in (holder_level_problem(person(1), 2) or "")
    weak_principal = person(3, acting_for=ActingFor(subject="q", kind="person", assurance_level=1))
    assert "level is 1" in (holder_level_problem(weak_principal, 2) or "")
    staff = Principal(subject="s", kind="staff", roles=frozenset({"window_clerk"}))
    assert holder_level_problem(staff, 3) is None
