"""Rules of the workflow domain, without a server or a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.workflow.domain.process import (
    OnReject,
    Outcome,
    TaskDecision,
    check_decision,
    due_at,
    next_retry_delay,
    resumed_due_at,
    runnable_steps,
    stage_outcome,
)
from shared.workdays import WorkCalendar, YearTable

CAL = WorkCalendar()


def test_only_review_parallel_and_decision_steps_run_and_skipped_ones_are_flattened():
    steps = runnable_steps(
        [
            {"key": "a", "kind": "acceptance"},
            {"key": "pre", "kind": "review", "departments": ["X"], "skip": True},
            {"key": "p", "kind": "parallel", "departments": ["A", "B", "A"], "lead_department": "B",
             "limit_days": 5, "on_reject": "lead_arbitrates", "deemed_approval_on_timeout": True},
            {"key": "d", "kind": "decision"},
            {"key": "z", "kind": "delivery"},
        ],
        item_department="OWN",
    )
    assert [s.key for s in steps] == ["p", "d"]
    assert steps[0].departments == ("A", "B") and steps[0].lead_department == "B"
    assert steps[0].on_reject is OnReject.LEAD_ARBITRATES and steps[0].deemed_approval_on_timeout
    assert steps[1].departments == ("OWN",) and steps[1].on_reject is OnReject.REJECT_CASE


def test_a_lead_department_outside_the_stage_falls_back_to_the_first():
    (step,) = runnable_steps([{"kind": "parallel", "departments": ["A", "B"], "lead_department": "Q"}],
                             item_department="OWN")
    assert step.lead_department == "A" and step.key == "step-1"


def test_due_date_is_the_end_of_the_working_day_in_shanghai():
    # Friday 2026-03-06 10:00 Shanghai + 1 working day = Monday 2026-03-09, 23:59:59 Shanghai.
    start = datetime(2026, 3, 6, 2, 0, tzinfo=UTC)
    assert due_at(start, 1, CAL) == datetime(2026, 3, 9, 15, 59, 59, tzinfo=UTC)


def test_due_date_counts_the_local_day_not_the_utc_day():
    # 2026-03-05 20:00 UTC is already Friday 04:00 in Shanghai.
    assert due_at(datetime(2026, 3, 5, 20, 0, tzinfo=UTC), 0, CAL) == datetime(2026, 3, 6, 15, 59, 59, tzinfo=UTC)


def test_due_date_skips_statutory_holidays_and_counts_adjusted_working_weekends():
    # National Day 2026: 10-01..10-07 off; Saturday 10-10 is a working day (调休).
    start = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)
    assert due_at(start, 1, CAL).date() == date(2026, 10, 8)
    assert due_at(start, 3, CAL).astimezone(UTC).date() == date(2026, 10, 10)


def test_due_date_across_a_year_without_a_holiday_table_does_not_fail():
    cal = WorkCalendar(use_library=False).with_tables([YearTable(2026, frozenset(), frozenset(), "test")])
    assert due_at(datetime(2030, 1, 4, 2, 0, tzinfo=UTC), 1, cal).date() == date(2030, 1, 7)


def test_the_clock_resumes_with_the_working_days_left_when_it_paused():
    due = due_at(datetime(2026, 3, 2, 2, 0, tzinfo=UTC), 5, CAL)  # Monday + 5 = Monday 03-09
    paused = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)  # Wednesday: 3 working days left
    resumed = datetime(2026, 3, 16, 2, 0, tzinfo=UTC)  # Monday a week later
    assert resumed_due_at(due, paused, resumed, CAL).date() == date(2026, 3, 19)


def test_a_rejection_needs_reasons_and_legal_basis():
    breaks = check_decision(Outcome.REJECT, ["  "], None, [])
    assert {(b.field, b.rule) for b in breaks} == {("reasons", "required_for_reject"),
                                                  ("legal_basis", "required_for_reject")}
    assert check_decision(Outcome.REJECT, ["no"], "法", []) == []
    assert check_decision(Outcome.APPROVE, [], None, []) == []


def test_a_correction_request_lists_what_is_missing():
    assert check_decision(Outcome.REQUEST_CORRECTION, [], None, [])[0].rule == "required_for_correction"
    assert check_decision(Outcome.REQUEST_CORRECTION, [], None, [object()]) == []


def test_any_rejection_rejects_under_reject_case():
    d = [TaskDecision("A", Outcome.APPROVE), TaskDecision("B", Outcome.REJECT)]
    assert stage_outcome(OnReject.REJECT_CASE, "A", d) == "rejected"
    assert stage_outcome(OnReject.REJECT_CASE, "A", d[:1]) == "approved"


def test_the_lead_department_decides_under_lead_arbitrates():
    d = [TaskDecision("A", Outcome.APPROVE), TaskDecision("B", Outcome.REJECT)]
    assert stage_outcome(OnReject.LEAD_ARBITRATES, "A", d) == "approved"
    assert stage_outcome(OnReject.LEAD_ARBITRATES, "B", d) == "rejected"


def test_webhook_retries_back_off_exponentially_up_to_a_cap():
    assert [next_retry_delay(n, 2, 30) for n in (1, 2, 3, 4, 5)] == [
        timedelta(seconds=s) for s in (2, 4, 8, 16, 30)
    ]
