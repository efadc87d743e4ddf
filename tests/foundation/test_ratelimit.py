"""The sliding-window limiter admits `limit` requests per window per key and says how long to wait."""

from __future__ import annotations

import pytest

from shared.errors import TooManyRequests
from shared.ratelimit import RateLimiter


def test_admits_the_limit_then_says_how_long_to_wait_and_recovers_after_the_window():
    rl = RateLimiter(3, 60)
    assert [rl.retry_after("a", now=t) for t in (0, 1, 2)] == [None, None, None]
    assert rl.retry_after("a", now=10) == pytest.approx(50)
    assert rl.retry_after("b", now=10) is None, "keys are counted apart"
    assert rl.retry_after("a", now=60.5) is None, "the first hit left the window"


def test_check_raises_a_429_problem_with_retry_after():
    rl = RateLimiter(1, 60)
    rl.check("k", "submissions")
    with pytest.raises(TooManyRequests) as err:
        rl.check("k", "submissions")
    assert err.value.status == 429 and int(err.value.headers["Retry-After"]) >= 1


def test_zero_turns_the_limit_off():
    rl = RateLimiter(0)
    assert all(rl.retry_after("k") is None for _ in range(1000))
