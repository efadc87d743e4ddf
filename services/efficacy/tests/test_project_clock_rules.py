"""Unit tests of the project clock (项目审批计时): working days from the first acceptance to completion, the owner's
and intermediaries' time apart, cards at project level, KPIs per stage and department. No I/O."""

from __future__ import annotations

from datetime import datetime

from services.efficacy.domain import project_clock as pc
from services.efficacy.domain.calendar import CHINA
from shared.workdays import WorkCalendar

CAL = WorkCalendar()


def t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=CHINA)


def correction(start: str, end: str | None) -> pc.Interval:
    return pc.Interval(t(start), t(end) if end else None, pc.OWNER_CORRECTION)


# November 2026 has no holidays: 11-02 is a Monday.
PLANNING = pc.StageRun("planning", "立项用地规划许可", 10, t("2026-11-02 09:00"), t("2026-11-12 16:00"), (
    pc.ApplicationRun("A", "ITEM-A", "LD-ZJJ", 5, t("2026-11-02 09:00"), t("2026-11-06 11:00")),
    pc.ApplicationRun("B", "ITEM-B", "LD-XFJ", 8, t("2026-11-02 09:00"), t("2026-11-12 16:00"),
                      (correction("2026-11-04 10:00", "2026-11-09 10:00"),)),
))
PERMIT = pc.StageRun("permit", "施工许可", 3, t("2026-11-13 09:00"), t("2026-11-19 15:00"), (
    pc.ApplicationRun("C", "ITEM-C", "LD-WJJ", 3, t("2026-11-13 09:00"), t("2026-11-19 15:00")),
))


def test_the_project_counts_government_days_from_first_acceptance_to_completion_without_the_owners_correction():
    c = pc.project_clock([PERMIT, PLANNING], completed_at=t("2026-11-19 15:00"), cal=CAL, as_of=t("2026-12-01 09:00"))
    assert c.state == "completed" and c.started_at == t("2026-11-02 09:00")
    assert c.elapsed_days == 13  # (11-02, 11-19]
    assert c.outside_days == 3 and c.outside_by_reason == {pc.OWNER_CORRECTION: 3, pc.INTERMEDIARY: 0}
    assert c.government_days == 10 and c.total_limit_days == 13 and c.remaining_days == 3
    assert c.card is None


def test_each_stage_and_department_counts_its_own_days_against_its_own_limit():
    c = pc.project_clock([PLANNING, PERMIT], completed_at=t("2026-11-19 15:00"), cal=CAL, as_of=t("2026-12-01 09:00"))
    planning, permit = c.stages
    assert (planning.used_days, planning.outside_days, planning.over_limit) == (5, 3, False)
    by_dept = {d.department: d for d in planning.departments}
    assert (by_dept["LD-ZJJ"].used_days, by_dept["LD-ZJJ"].over_limit) == (4, False)
    assert (by_dept["LD-XFJ"].used_days, by_dept["LD-XFJ"].outside_days) == (5, 3)
    assert (permit.used_days, permit.limit_days, permit.over_limit) == (4, 3, True)
    assert permit.departments[0].over_limit and permit.state == "completed"


def test_one_correction_paused_in_two_departments_counts_once_and_intermediaries_apart():
    both = pc.StageRun("s", "阶段", 20, t("2026-11-02 09:00"), None, (
        pc.ApplicationRun("A", "I", "LD-ZJJ", 20, t("2026-11-02 09:00"), None,
                          (correction("2026-11-03 09:00", "2026-11-05 09:00"),)),
        pc.ApplicationRun("B", "I", "LD-XFJ", 20, t("2026-11-02 09:00"), None,
                          (correction("2026-11-04 09:00", "2026-11-06 09:00"),
                           pc.Interval(t("2026-11-09 09:00"), t("2026-11-11 09:00"), pc.INTERMEDIARY))),
    ))
    c = pc.project_clock([both], completed_at=None, cal=CAL, as_of=t("2026-11-13 09:00"))
    assert c.elapsed_days == 9  # (11-02, 11-13]
    assert c.outside_by_reason == {pc.OWNER_CORRECTION: 3, pc.INTERMEDIARY: 2}  # (11-03, 11-06] and (11-09, 11-11]
    assert c.outside_days == 5 and c.government_days == 4 and c.state == "running"


def test_an_open_correction_counts_until_now():
    s = pc.StageRun("s", "阶段", 20, t("2026-11-02 09:00"), None, (
        pc.ApplicationRun("A", "I", "LD-ZJJ", 20, t("2026-11-02 09:00"), None,
                          (correction("2026-11-04 09:00", None),)),))
    c = pc.project_clock([s], completed_at=None, cal=CAL, as_of=t("2026-11-10 09:00"))
    assert (c.elapsed_days, c.outside_days, c.government_days) == (6, 4, 2)


def test_cards_at_project_level_yellow_near_the_total_limit_red_over_it():
    s = pc.StageRun("s", "阶段", 10, t("2026-11-02 09:00"), None, (
        pc.ApplicationRun("A", "I", "LD-ZJJ", 10, t("2026-11-02 09:00"), None),))
    assert pc.project_clock([s], completed_at=None, cal=CAL, as_of=t("2026-11-09 09:00")).card is None  # 5 used
    yellow = pc.project_clock([s], completed_at=None, cal=CAL, as_of=t("2026-11-12 09:00"))  # 8 used, 2 left
    assert (yellow.card, yellow.card_reason, yellow.remaining_days) == ("yellow", "project_near_limit", 2)
    red = pc.project_clock([s], completed_at=None, cal=CAL, as_of=t("2026-11-17 09:00"))  # 11 used
    assert (red.card, red.card_reason) == ("red", "project_limit_exceeded")
    done = pc.project_clock([s], completed_at=t("2026-11-12 09:00"), cal=CAL, as_of=t("2026-11-30 09:00"))
    assert done.card is None and done.government_days == 8


def test_a_project_without_an_accepted_stage_has_not_started():
    c = pc.project_clock([], completed_at=None, cal=CAL, as_of=t("2026-11-10 09:00"))
    assert c.state == "not_started" and c.elapsed_days == 0 and c.card is None
