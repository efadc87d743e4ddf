"""Clock arithmetic in working days, without a server: holidays, 调休 weekends, pauses, the year boundary."""

from __future__ import annotations

import json
import random
from datetime import date, datetime

from services.efficacy.domain.calendar import (
    CHINA,
    YearLoad,
    build_calendar,
    local_day,
    parse_csv,
    validate_year,
)
from services.efficacy.domain.clocks import (
    ACCEPTED,
    APPLICATION_DECIDED,
    CORRECTED,
    TASK_ASSIGNED,
    TASK_DECIDED,
    TASK_REOPENED,
    CardPolicy,
    ClockState,
    Fact,
    add_working_hours,
    build_clocks,
    decide_card,
    fingerprint,
    measure,
)
from shared.workdays import WorkCalendar, YearTable, library_table

LIB = build_calendar([t for y in (2025, 2026) if (t := library_table(y))])


def at(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=CHINA)


def accepted(app: str, when: str, days: int = 5, statutory: int | None = None, unit: str = "working_days",
             case_kind: str = "promised", eid: str | None = None) -> Fact:
    return Fact(eid or f"acc-{app}", ACCEPTED, at(when), {
        "application_id": app, "item_code": "ITEM", "department": "LD-SCJGJ", "accepted_at": at(when).isoformat(),
        "case_kind": case_kind, "promised_limit": {"value": days, "unit": unit},
        "statutory_limit": {"value": statutory, "unit": "working_days"} if statutory else None,
        "applicant": {"kind": "person", "id": "p1"},
    })


def fact(eid: str, type_: str, when: str, **data: object) -> Fact:
    return Fact(eid, type_, at(when), {"application_id": "A", **data})


def test_deadline_skips_the_national_day_holiday_and_counts_the_adjusted_saturday():
    app, _ = build_clocks("A", [accepted("A", "2026-09-28T09:00:00")])
    v = measure(app, LIB, at("2026-09-29T10:00:00"))
    # 09-29, 09-30, (10-01…10-07 off), 10-08, 10-09, 10-10 (调休 Saturday) = 5 working days
    assert v.deadline_on == date(2026, 10, 10)
    assert v.elapsed_workdays == 1
    assert v.remaining_workdays == 4
    assert not v.assumed_years


def test_a_limit_of_one_day_on_the_friday_before_an_adjusted_saturday_ends_on_that_saturday():
    app, _ = build_clocks("A", [accepted("A", "2026-02-13T09:00:00", days=1)])
    assert measure(app, LIB, at("2026-02-13T10:00:00")).deadline_on == date(2026, 2, 14)


def test_a_correction_pause_spanning_a_holiday_moves_the_deadline_by_the_paused_working_days_only():
    facts = [
        accepted("A", "2026-09-21T09:00:00", days=10),
        fact("t1", TASK_ASSIGNED, "2026-09-21T09:05:00", task_id="T1", department="LD-SCJGJ", limit_days=5,
             assigned_at=at("2026-09-21T09:05:00").isoformat()),
        fact("d1", TASK_DECIDED, "2026-09-30T10:00:00", task_id="T1", outcome="request_correction",
             decided_at=at("2026-09-30T10:00:00").isoformat()),
        fact("r1", TASK_REOPENED, "2026-10-09T10:00:00", task_id="T1", reopened_at=at("2026-10-09T10:00:00").isoformat()),
    ]
    app, tasks = build_clocks("A", facts)
    unpaused, _ = build_clocks("A", facts[:1])
    assert measure(unpaused, LIB, at("2026-09-22T00:00:00")).deadline_on == date(2026, 10, 12)
    v = measure(app, LIB, at("2026-10-09T12:00:00"))
    # paused (09-30, 10-09]: the holiday week is no working day; only 10-08 and 10-09 are given back
    assert v.paused_workdays == 2
    assert v.deadline_on == date(2026, 10, 14)
    assert v.remaining_workdays == 4  # 10-10 (调休), 10-12, 10-13, 10-14
    assert app.state == "running" and tasks["T1"].state == "running"
    assert [(p.reason, p.task_id) for p in tasks["T1"].pauses] == [("correction", "T1")]


def test_an_open_correction_pauses_the_clock_and_keeps_moving_the_deadline():
    facts = [accepted("A", "2026-03-02T09:00:00", days=5),
             fact("d1", TASK_DECIDED, "2026-03-03T10:00:00", task_id="T1", outcome="request_correction",
                  decided_at=at("2026-03-03T10:00:00").isoformat())]
    app, _ = build_clocks("A", facts)
    assert app.state == "paused"
    v1 = measure(app, LIB, at("2026-03-05T10:00:00"))
    v2 = measure(app, LIB, at("2026-03-06T10:00:00"))
    assert v2.deadline_on > v1.deadline_on
    assert v1.elapsed_workdays == v2.elapsed_workdays == 1
    assert decide_card(v2, CardPolicy()) is None  # waiting on the applicant: no card


def test_crossing_into_a_year_without_a_table_counts_its_statutory_holidays_and_says_so():
    app, _ = build_clocks("A", [accepted("A", "2026-12-28T09:00:00", days=5)])
    v = measure(app, LIB, at("2026-12-29T09:00:00"))
    assert v.deadline_on == date(2027, 1, 5)  # New Year's Day is a holiday, as the `holidays` package computes
    assert v.assumed_years == frozenset({2027})
    # The source for uncovered years is pluggable: without one, Monday–Friday.
    weekdays_only = WorkCalendar({t.year: t for y in (2025, 2026) if (t := library_table(y))},
                                   use_library=False, fallback=None)
    assert measure(app, weekdays_only, at("2026-12-29T09:00:00")).deadline_on == date(2027, 1, 4)
    loaded = LIB.with_tables([YearTable(2027, frozenset({date(2027, 1, 1)}), frozenset(), "notice")])
    v2 = measure(app, loaded, at("2026-12-29T09:00:00"))
    assert v2.deadline_on == date(2027, 1, 5)
    assert not v2.assumed_years


def test_clock_state_is_the_same_whatever_the_order_and_duplication_of_events():
    facts = [
        accepted("A", "2026-03-02T09:00:00", days=10),
        fact("t1", TASK_ASSIGNED, "2026-03-02T09:05:00", task_id="T1", department="LD-WJJ", limit_days=5,
             assigned_at=at("2026-03-02T09:05:00").isoformat()),
        fact("d1", TASK_DECIDED, "2026-03-03T10:00:00", task_id="T1", outcome="request_correction",
             decided_at=at("2026-03-03T10:00:00").isoformat()),
        fact("c1", CORRECTED, "2026-03-05T10:00:00", task_id="T1", corrected_at=at("2026-03-05T10:00:00").isoformat()),
        fact("r1", TASK_REOPENED, "2026-03-05T10:01:00", task_id="T1", reopened_at=at("2026-03-05T10:01:00").isoformat()),
        fact("d2", TASK_DECIDED, "2026-03-06T10:00:00", task_id="T1", outcome="approve",
             decided_at=at("2026-03-06T10:00:00").isoformat()),
        fact("x1", APPLICATION_DECIDED, "2026-03-09T10:00:00", outcome="approved",
             decided_at=at("2026-03-09T10:00:00").isoformat()),
    ]
    expected = build_clocks("A", facts)
    rng = random.Random(7)
    for _ in range(20):
        shuffled = facts + rng.sample(facts, 3)
        rng.shuffle(shuffled)
        assert build_clocks("A", shuffled) == expected
    app, tasks = expected
    assert app.state == "stopped" and app.stop_reason == "decided"
    assert tasks["T1"].state == "stopped" and tasks["T1"].stop_reason == "approve"
    assert len(app.pauses) == 1 and app.pauses[0].end == at("2026-03-05T10:00:00")
    # As kept: what a JSON round trip of the dataclass gives, and read back the same clock.
    for clock in (app, *tasks.values()):
        body = clock.to_body()
        assert body == json.loads(json.dumps(clock.to_json(), default=lambda o: o.isoformat()))
        assert ClockState.from_json(body) == clock
    # Facts kept with their fingerprint are told apart by it, as by their payload.
    kept = [Fact(f.event_id + "-kept", f.type, f.at, f.data, fingerprint(f.type, f.data)) for f in facts]
    assert build_clocks("A", facts + kept) == expected


def test_a_decision_seen_before_the_assignment_still_stops_the_task():
    facts = [fact("d2", TASK_DECIDED, "2026-03-06T10:00:00", task_id="T9", outcome="reject",
                  decided_at=at("2026-03-06T10:00:00").isoformat()),
             fact("t9", TASK_ASSIGNED, "2026-03-02T09:05:00", task_id="T9", department="LD-XFJ", limit_days=3,
                  assigned_at=at("2026-03-02T09:05:00").isoformat())]
    _, tasks = build_clocks("A", list(reversed(facts)))
    assert tasks["T9"].state == "stopped"
    assert tasks["T9"].department == "LD-XFJ"


def test_steps_excluded_from_the_limit_pause_the_application_clock():
    facts = [accepted("A", "2026-03-02T09:00:00", days=5),
             fact("t1", TASK_ASSIGNED, "2026-03-03T09:00:00", task_id="T1", step_key="hearing", limit_days=20,
                  assigned_at=at("2026-03-03T09:00:00").isoformat()),
             fact("d1", TASK_DECIDED, "2026-03-05T09:00:00", task_id="T1", outcome="approve",
                  decided_at=at("2026-03-05T09:00:00").isoformat())]
    app, _ = build_clocks("A", facts, excluded_steps=frozenset({"hearing"}))
    v = measure(app, LIB, at("2026-03-06T09:00:00"))
    assert [p.reason for p in app.pauses] == ["special_procedure"]
    assert v.paused_workdays == 2
    assert v.deadline_on == date(2026, 3, 11)


def test_immediate_items_count_hours_on_working_days_only():
    # Friday 16:00 + 24 working hours: 8 on Friday, then Saturday 10-10 is a 调休 working day
    assert add_working_hours(LIB, at("2026-10-09T16:00:00"), 24) == at("2026-10-10T16:00:00")
    # Wednesday 09-30 16:00 + 10 hours: the holiday week is skipped whole
    assert add_working_hours(LIB, at("2026-09-30T16:00:00"), 10) == at("2026-10-08T02:00:00")
    app, _ = build_clocks("A", [accepted("A", "2026-10-09T16:00:00", days=24, unit="hours", case_kind="immediate")])
    v = measure(app, LIB, at("2026-10-10T15:00:00"))
    assert v.remaining_hours == 1.0
    assert decide_card(v, CardPolicy()).colour == "yellow"


def test_statutory_deadline_is_kept_and_a_second_red_card_marks_its_crossing():
    app, _ = build_clocks("A", [accepted("A", "2026-03-02T09:00:00", days=2, statutory=4)])
    red1 = decide_card(measure(app, LIB, at("2026-03-05T09:00:00")), CardPolicy())
    red2 = decide_card(measure(app, LIB, at("2026-03-09T09:00:00")), CardPolicy())
    assert (red1.colour, red1.reason) == ("red", "promised_limit_exceeded")
    assert (red2.colour, red2.reason) == ("red", "statutory_limit_exceeded")
    assert red1.deadline_key != red2.deadline_key


def test_yellow_when_two_working_days_or_a_fifth_of_the_limit_remain_whichever_comes_first():
    short, _ = build_clocks("A", [accepted("A", "2026-03-02T09:00:00", days=5)])  # deadline 03-09
    assert decide_card(measure(short, LIB, at("2026-03-04T12:00:00")), CardPolicy()) is None
    assert decide_card(measure(short, LIB, at("2026-03-05T12:00:00")), CardPolicy()).colour == "yellow"
    assert decide_card(measure(short, LIB, at("2026-03-09T12:00:00")), CardPolicy()).colour == "yellow"
    assert decide_card(measure(short, LIB, at("2026-03-10T12:00:00")), CardPolicy()).colour == "red"
    long, _ = build_clocks("A", [accepted("A", "2026-03-02T09:00:00", days=20)])  # 20% of 20 = 4 days
    v = measure(long, LIB, at("2026-03-24T12:00:00"))
    assert v.remaining_workdays == 4
    assert decide_card(v, CardPolicy()).colour == "yellow"
    assert decide_card(v, CardPolicy(yellow_fraction=0.1)) is None


def test_a_year_load_rejects_weekday_adjusted_days_and_dates_outside_the_year():
    load = YearLoad(frozenset({date(2027, 1, 1), date(2026, 12, 31)}),
                    frozenset({date(2027, 2, 7), date(2027, 2, 8)}))
    rules = {(e.field, e.rule) for e in validate_year(2027, load)}
    assert rules == {("body.holidays", "within_year"), ("body.workdays", "weekend")}


def test_csv_lines_parse_and_bad_lines_name_their_line():
    load, errors = parse_csv("date,kind\n2027-01-01,holiday\n2027-02-07,班\n2027-13-01,holiday\n2027-03-01,maybe\n")
    assert load.holidays == {date(2027, 1, 1)} and load.workdays == {date(2027, 2, 7)}
    assert [(e.field, e.rule) for e in errors] == [("body.line4", "date"), ("body.line5", "kind")]


def test_the_calendar_counts_like_the_library_day_by_day():
    from datetime import timedelta

    import chinese_calendar

    tables = [t for y in range(2024, 2027) if (t := library_table(y))]
    cal = build_calendar(tables)
    rng = random.Random(11)
    for _ in range(1000):
        a = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 900))
        b = a + timedelta(days=rng.randrange(0, 150))
        counted = sum(chinese_calendar.is_workday(a + timedelta(days=i)) for i in range(1, (b - a).days + 1))
        assert cal.workdays_between(a, b).value == counted, (a, b)
        assert cal.workdays_between(b, a).value == -counted, (a, b)
        n = rng.randrange(1, 60)
        end = cal.add_workdays(a, n).value
        assert chinese_calendar.is_workday(end)
        assert sum(chinese_calendar.is_workday(a + timedelta(days=i)) for i in range(1, (end - a).days + 1)) == n


def test_no_card_can_be_due_before_the_day_the_evaluator_starts_watching():
    from datetime import timedelta

    from services.efficacy.domain.clocks import watch_day
    rng = random.Random(5)
    for _ in range(200):
        start = at("2026-01-05T09:00:00") + timedelta(days=rng.randrange(0, 330), hours=rng.randrange(0, 10))
        facts = [accepted("A", start.isoformat()[:19], days=rng.choice([1, 3, 5, 10, 20, 60]))]
        if rng.random() < 0.5:
            s = start + timedelta(days=rng.randrange(0, 5))
            facts += [fact("d", TASK_DECIDED, s.isoformat()[:19], task_id="T", outcome="request_correction",
                           decided_at=s.isoformat()),
                      fact("r", TASK_REOPENED, (s + timedelta(days=6)).isoformat()[:19], task_id="T",
                           reopened_at=(s + timedelta(days=6)).isoformat())]
        app, _ = build_clocks("A", facts)
        watch = watch_day(app, LIB, CardPolicy())
        assert watch is not None
        d = watch - timedelta(days=1)
        while d > watch - timedelta(days=40):
            assert decide_card(measure(app, LIB, datetime.combine(d, datetime.min.time(), CHINA)), CardPolicy()) is None
            d -= timedelta(days=1)
        due = next(d for d in (watch + timedelta(days=i) for i in range(200))
                   if decide_card(measure(app, LIB, datetime.combine(d, datetime.min.time(), CHINA)), CardPolicy()))
        assert due - watch <= timedelta(days=30)  # and watching does not start needlessly early


def test_a_year_without_an_official_table_uses_the_computed_statutory_holidays_still_flagged_as_assumed():
    cal = WorkCalendar()  # chinesecalendar 1.11 knows no 2027
    assert not cal.known(2027) and not cal.is_workday(date(2027, 1, 1))
    end = cal.add_workdays(date(2026, 12, 20), 20)
    assert end.value == date(2027, 1, 18) and end.assumed_years == frozenset({2027})
    assert build_calendar([]).add_workdays(date(2026, 12, 20), 20).value == date(2027, 1, 18)
    # The official table, once loaded, wins over the estimate.
    official = cal.with_tables([YearTable(2027, frozenset(), frozenset(), "notice")])
    assert official.is_workday(date(2027, 1, 1)) and not official.add_workdays(date(2027, 1, 4), 3).assumed


def submitted_fact(app: str, when: str, channel: str = "online", eid: str | None = None) -> Fact:
    return Fact(eid or f"sub-{app}-{when}", "yimen.intake.application.submitted", at(when), {
        "application_id": app, "item_code": "ITEM", "department": "LD-SCJGJ", "channel": channel,
        "submitted_at": at(when).isoformat()})


def test_an_online_submission_not_accepted_within_a_working_day_gets_yellow_then_red_on_the_acceptance_step():
    _, tasks = build_clocks("A", [submitted_fact("A", "2026-03-02T09:00:00")])  # a Monday
    clock = tasks["acceptance"]
    assert (clock.kind, clock.limit_value, clock.step_key, clock.department) == ("acceptance", 1, "acceptance", "LD-SCJGJ")
    policy = CardPolicy()
    assert decide_card(measure(clock, LIB, at("2026-03-02T15:00:00")), policy) is None
    yellow = decide_card(measure(clock, LIB, at("2026-03-03T10:00:00")), policy)
    assert yellow is not None and (yellow.colour, yellow.reason) == ("yellow", "acceptance_near_deadline")
    red = decide_card(measure(clock, LIB, at("2026-03-04T10:00:00")), policy)
    assert red is not None and (red.colour, red.reason) == ("red", "acceptance_limit_exceeded")
    # Accepted in time: the clock stops and carries no card.
    _, tasks = build_clocks("A", [submitted_fact("A", "2026-03-02T09:00:00"), accepted("A", "2026-03-03T09:00:00")])
    assert tasks["acceptance"].stop_reason == "accepted"
    assert decide_card(measure(tasks["acceptance"], LIB, at("2026-03-04T10:00:00")), policy) is None


def test_the_acceptance_limit_is_the_items_own_where_set_and_a_window_submission_without_one_has_no_clock():
    _, tasks = build_clocks("A", [submitted_fact("A", "2026-03-02T09:00:00")], acceptance_days=3)
    assert measure(tasks["acceptance"], LIB, at("2026-03-02T10:00:00")).deadline_on == date(2026, 3, 5)
    _, tasks = build_clocks("A", [submitted_fact("A", "2026-03-02T09:00:00", channel="window")])
    assert "acceptance" not in tasks
    # Returned for correction and handed in again: the wait starts again from the new submission.
    facts = [submitted_fact("A", "2026-03-02T09:00:00"),
             fact("ret", "yimen.intake.application.returned", "2026-03-02T11:00:00",
                  returned_at=at("2026-03-02T11:00:00").isoformat()),
             submitted_fact("A", "2026-03-09T09:00:00")]
    clock = build_clocks("A", facts)[1]["acceptance"]
    assert clock.state == "running" and local_day(clock.started_at) == date(2026, 3, 9)


def test_a_clock_is_read_again_no_later_than_the_day_its_card_changes():
    """The card round reads a clock again on `next_watch_day` only: between an evaluation and that day its card
    (none, yellow, red, a second red) never changes, for clocks counted in hours as in working days; a clock
    with no limit can carry none and is settled."""
    from datetime import timedelta

    from services.efficacy.domain.clocks import SETTLED, next_watch_day

    policy = CardPolicy()
    clocks = [build_clocks("H", [accepted("H", "2026-10-09T16:00:00", days=24, unit="hours",
                                          case_kind="immediate", statutory=72)])[0],
              build_clocks("W", [accepted("W", "2026-03-02T09:00:00", days=5, statutory=8)])[0]]
    for c in clocks:
        start = c.started_at
        assert start is not None
        times = [start + timedelta(hours=h) for h in range(0, 24 * 20, 2)]
        for i, t in enumerate(times):
            view = measure(c, LIB, t)
            card = decide_card(view, policy)
            watch = next_watch_day(view, LIB, policy, local_day(t))
            assert watch is not None and watch >= local_day(t), (c.clock_id, t)
            for later in times[i + 1:]:
                if local_day(later) >= watch:
                    break
                assert decide_card(measure(c, LIB, later), policy) == card, (c.clock_id, t, later, watch)
    unlimited, _ = build_clocks("U", [accepted("U", "2026-03-02T09:00:00", days=None)])
    assert next_watch_day(measure(unlimited, LIB, at("2026-03-03T09:00:00")), LIB, policy, date(2026, 3, 3)) \
        == SETTLED
