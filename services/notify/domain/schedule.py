"""When a message may go out: quiet hours (免打扰时段), retry backoff, the per-person rate bound, the
daily jobs' clock, and promised dates. Pure functions of their inputs; the dispatcher supplies `now`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: str) -> time:
    m = _HHMM.match(value)
    if not m:
        raise ValueError("A time of day is written HH:MM (00:00–23:59).")
    return time(int(m.group(1)), int(m.group(2)))


@dataclass(frozen=True)
class QuietHours:
    """A window of local time; `start > end` crosses midnight (22:00–08:00). Equal bounds mean no window."""

    start: time
    end: time

    @classmethod
    def of(cls, start: str, end: str) -> QuietHours:
        return cls(parse_hhmm(start), parse_hhmm(end))

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def release_at(self, now: datetime) -> datetime | None:
        """When a message held at `now` may go (the window's end), or None when `now` is outside it."""
        local = now.astimezone(CHINA)
        if not self.contains(local.time().replace(second=0, microsecond=0)):
            return None
        end = datetime.combine(local.date(), self.end, tzinfo=CHINA)
        if end <= local:
            end += timedelta(days=1)
        return end


def backoff(attempts: int, *, base: float, cap: float) -> timedelta:
    """The pause after the `attempts`-th failure: doubling from `base`, at most `cap` (so a gateway back
    after an hour is tried again within a minute)."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, min(attempts - 1, 20))))


def rate_release(sent_at: list[datetime], *, now: datetime, per_hour: int) -> datetime | None:
    """None when another message may go now; else when the oldest of the last hour's leaves the window."""
    if per_hour <= 0:
        return None
    recent = sorted(t for t in sent_at if t > now - timedelta(hours=1))
    if len(recent) < per_hour:
        return None
    return recent[len(recent) - per_hour] + timedelta(hours=1)


def local_day(now: datetime) -> date:
    return now.astimezone(CHINA).date()


def daily_due(now: datetime, at: str) -> bool:
    """Whether today's jobs may run (the local time is past `at`)."""
    return now.astimezone(CHINA).time() >= parse_hhmm(at)


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def chinese_moment(when: datetime) -> str:
    local = when.astimezone(CHINA)
    return f"{local.month}月{local.day}日 {local:%H:%M}"
