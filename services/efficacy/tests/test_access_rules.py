"""Who sees what in efficacy (domain/access.py, domain/complaints.py): pure rules, no server."""

from __future__ import annotations

import pytest

from services.efficacy.domain.access import narrowed, oversight_scope
from services.efficacy.domain.complaints import may_see, secret_hash, secret_matches
from shared.errors import Forbidden
from shared.principal import Principal


def who(kind: str = "staff", roles: tuple[str, ...] = (), department: str | None = None,
        subject: str = "s-1") -> Principal:
    return Principal(subject=subject, kind=kind, roles=frozenset(roles), department=department)


SUPERVISOR = who(roles=("supervisor",))
REVIEWER = who(roles=("department_reviewer",), department="LD-SCJGJ")
CITIZEN = who(kind="person", subject="p-1")


def test_supervisors_see_every_department_and_staff_their_own():
    assert oversight_scope(SUPERVISOR, refusal="no") is None
    assert oversight_scope(REVIEWER, refusal="no") == "LD-SCJGJ"
    with pytest.raises(Forbidden, match="for staff"):
        oversight_scope(CITIZEN, refusal="for staff")


def test_a_department_filter_is_narrowed_to_ones_own_department():
    assert narrowed(SUPERVISOR, "LD-WJJ", refusal="r", foreign="f") == "LD-WJJ"
    assert narrowed(REVIEWER, None, refusal="r", foreign="f") == "LD-SCJGJ"
    with pytest.raises(Forbidden, match="own only"):
        narrowed(REVIEWER, "LD-WJJ", refusal="r", foreign="own only")


def test_an_anonymous_complaint_is_read_with_its_secret_and_only_the_hash_is_kept():
    stored = secret_hash("s3cret")
    assert stored != "s3cret" and secret_matches("s3cret", stored) and not secret_matches("guess", stored)
    assert not secret_matches(None, stored)
    args = dict(complainant=None, department="LD-SCJGJ", stored_hash=stored)
    assert may_see(None, secret="s3cret", **args)
    assert not may_see(None, secret=None, **args)
    assert may_see(REVIEWER, secret=None, **args) and may_see(SUPERVISOR, secret=None, **args)
    assert not may_see(CITIZEN, secret=None, **args)


def test_a_signed_in_complainant_reads_their_own_complaint():
    stored = secret_hash("x")
    assert may_see(CITIZEN, complainant="p-1", department="LD-WJJ", stored_hash=stored, secret=None)
    assert not may_see(who(kind="person", subject="p-2"), complainant="p-1", department="LD-WJJ",
                       stored_hash=stored, secret=None)
