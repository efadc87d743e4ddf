"""Notify's rules without a server: quiet hours, backoff, the rate bound, templates and SMS length."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notify.domain import messages as msgs
from services.notify.domain.schedule import CHINA, QuietHours, backoff, rate_release


def at(hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(2026, 11, 30, h, m, tzinfo=CHINA)


def test_quiet_hours_across_midnight_hold_until_the_morning():
    qh = QuietHours.of("22:00", "08:00")
    assert qh.release_at(at("21:59")) is None
    assert qh.release_at(at("22:00")) == datetime(2026, 12, 1, 8, 0, tzinfo=CHINA)
    assert qh.release_at(at("03:10")) == datetime(2026, 11, 30, 8, 0, tzinfo=CHINA)
    assert qh.release_at(at("08:00")) is None
    assert qh.release_at(at("07:59").astimezone(UTC)) == datetime(2026, 11, 30, 8, 0, tzinfo=CHINA)


def test_a_window_within_a_day_and_an_empty_window():
    assert QuietHours.of("12:00", "14:00").release_at(at("13:00")) == at("14:00")
    assert QuietHours.of("12:00", "14:00").release_at(at("14:30")) is None
    assert QuietHours.of("00:00", "00:00").release_at(at("03:00")) is None
    with pytest.raises(ValueError):
        QuietHours.of("24:00", "08:00")


def test_backoff_doubles_to_a_cap():
    assert [backoff(n, base=2, cap=60).total_seconds() for n in (1, 2, 3, 5, 6, 30)] == [2, 4, 8, 32, 60, 60]


def test_the_rate_bound_waits_for_the_oldest_of_the_hour():
    now = at("12:00")
    sent = [now - timedelta(minutes=m) for m in (50, 40, 10)]
    assert rate_release(sent, now=now, per_hour=4) is None
    assert rate_release(sent, now=now, per_hour=3) == now - timedelta(minutes=50) + timedelta(hours=1)
    assert rate_release([now - timedelta(minutes=70)] * 5, now=now, per_hour=1) is None


def test_every_default_template_names_only_its_placeholders_and_its_sms_fits_one_message():
    for kind in msgs.KINDS.values():
        msgs.check_template(kind, kind.template())
        rendered = msgs.render_all(kind.template(), msgs.check_personalisation(kind, kind.sample),
                                   signature="【罗定政务】")
        assert "((" not in rendered["sms"].body
        assert msgs.sms_parts(rendered["sms"].body) == 1, (kind.code, len(rendered["sms"].body))
        assert not {"id_number", "holder_id", "phone"} & set(kind.placeholders)


def test_a_template_naming_an_unknown_placeholder_is_refused_with_the_field():
    kind = msgs.KINDS["application_accepted"]
    bad = {**kind.template(), "sms": {"body": "您的证件号((id_number))"}}
    with pytest.raises(msgs.TemplateProblem) as e:
        msgs.check_template(kind, bad)
    assert e.value.field == "body.channels.sms.body" and e.value.rule == "unknown_placeholder"
    with pytest.raises(msgs.TemplateProblem) as e:
        msgs.check_template(kind, {**kind.template(), "push": {"title": "", "body": "x"}})
    assert e.value.field == "body.channels.push.title"


def test_long_sms_are_counted_in_parts_of_67():
    assert msgs.sms_parts("字" * 70) == 1
    assert msgs.sms_parts("字" * 71) == 2
    assert msgs.sms_parts("字" * 134) == 2
    assert msgs.sms_parts("字" * 135) == 3


def test_the_one_time_notice_lists_every_item_numbered():
    assert msgs.notice_text(["请提交平面图。", " ", "请填写联系电话。"]) == "1. 请提交平面图。；2. 请填写联系电话。"
