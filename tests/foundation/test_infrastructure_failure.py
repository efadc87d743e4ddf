"""What counts as the database failing (answered 503 with Retry-After, nothing changed) rather than a bug (500 with
a reference): a pool that has no connection to give, however the error reaches the handler."""

from __future__ import annotations

from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.db import infrastructure_failure


def _raised_from(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise RuntimeError("while submitting") from inner
    except RuntimeError as outer:
        return outer


def test_a_pool_timeout_is_the_database_failing_alone_wrapped_or_from_concurrent_steps():
    timeout = PoolTimeout("QueuePool limit of size 10 overflow 0 reached")
    assert infrastructure_failure(timeout)
    assert infrastructure_failure(_raised_from(timeout))
    assert infrastructure_failure(ExceptionGroup("submit", [ValueError("x"), timeout]))
    assert infrastructure_failure(_raised_from(ExceptionGroup("submit", [_raised_from(timeout)])))


def test_a_bug_is_not_the_database_failing():
    assert not infrastructure_failure(ValueError("bad"))
    assert not infrastructure_failure(ExceptionGroup("submit", [ValueError("x"), KeyError("y")]))
