"""Due dates and the working-day calendar: a year without an official table is counted with its computed
statutory holidays; when efficacy loads the year's notice, open tasks' due dates are counted again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.workflow.domain.process import due_at, recounted_due_at
from services.workflow.tests.helpers import case, define_item, parallel_step, publish, start_case, tasks_of
from shared.events import new_event
from shared.testing import eventually
from shared.workdays import WorkCalendar, YearTable

ACCEPTED = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # a Monday morning in Luoding
NOTICE_2027 = YearTable(2027, frozenset({datetime(2027, 1, 4).date(), datetime(2027, 1, 5).date()}), frozenset(), "test")


def test_a_due_date_counted_on_the_estimate_moves_with_the_official_table():
    estimate = WorkCalendar()
    due = due_at(ACCEPTED, 25, estimate)  # 23 working days left in December, then 2027-01-04 and -05
    assert due == datetime(2027, 1, 5, 15, 59, 59, tzinfo=UTC)  # New Year's Day counted as a holiday
    official = estimate.with_tables([NOTICE_2027])
    assert recounted_due_at(due, ACCEPTED, estimate, official) == datetime(2027, 1, 6, 15, 59, 59, tzinfo=UTC)
    assert recounted_due_at(due, ACCEPTED, estimate, estimate) == due


async def test_loading_a_years_notice_counts_open_tasks_due_dates_again(client, tokens):
    code = "CAL-" + uuid.uuid4().hex[:6]
    await define_item(client, tokens, code, 1, [parallel_step(["LD-ZJJ", "LD-JYJ"], limit_days=25)])
    c = await start_case(client, tokens, code, accepted_at=ACCEPTED)
    assert {t["due_at"] for t in tasks_of(c).values()} == {"2027-01-05T15:59:59Z"}
    await publish(client, new_event("yimen.efficacy.calendar.loaded", source="/yimen/efficacy", subject="2027", data={
        "year": 2027, "holidays": ["2027-01-04", "2027-01-05"], "workdays": [], "source": "国务院办公厅通知（示例）",
        "loaded_at": datetime.now(UTC).isoformat()}))

    async def moved():
        got = await case(client, tokens, c["application_id"])
        return {t["due_at"] for t in tasks_of(got).values()} == {"2027-01-06T15:59:59Z"}

    await eventually(moved)
