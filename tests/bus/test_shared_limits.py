"""Rate limits hold across replicas (shared/ratelimit.py): two connections of one service (two replicas)
count into the same JetStream KV bucket on a server with the platform's accounts, so the second replica
refuses what the first already admitted; one service cannot read or reset another's counts; with the bus
out of reach a replica counts on its own instead of refusing everyone."""

from __future__ import annotations

import nats
import pytest

from shared.bus import Bus
from shared.errors import TooManyRequests
from shared.ratelimit import SharedRateLimiter
from tests.bus.conftest import SecuredNats


async def test_two_replicas_share_one_window(secured_nats: SecuredNats) -> None:
    a, b = secured_nats.bus("identity", service="identity"), secured_nats.bus("identity", service="identity")
    await a.connect(attempts=3)
    await b.connect(attempts=3)
    try:
        first, second = SharedRateLimiter(a, "login", 3, 60), SharedRateLimiter(b, "login", 3, 60)
        t = 1_000_000.0
        # Alternating replicas, as a balancer hands a client's requests out: three admitted in all, not six.
        assert await first.retry_after("10.0.0.7", now=t) is None
        assert await second.retry_after("10.0.0.7", now=t + 1) is None
        assert await first.retry_after("10.0.0.7", now=t + 2) is None
        assert await second.retry_after("10.0.0.7", now=t + 3) == pytest.approx(57)
        assert await first.retry_after("10.0.0.7", now=t + 4) == pytest.approx(56)
        assert await second.retry_after("10.0.0.8", now=t + 4) is None, "keys are counted apart"
        assert await first.retry_after("10.0.0.7", now=t + 60.5) is None, "the first hit left the window"
        # Counting failures only (the public status page's wrong codes): wait() counts nothing.
        fails = SharedRateLimiter(a, "codes", 2, 3600), SharedRateLimiter(b, "codes", 2, 3600)
        await fails[0].count("addr", now=t)
        assert await fails[1].wait("addr", now=t + 1) is None
        await fails[1].count("addr", now=t + 1)
        assert await fails[0].wait("addr", now=t + 2) == pytest.approx(3598)
        # The bucket holds hashes, never the address itself (personal data); an operator may look. The keys are
        # read from the server's own count of the bucket's subjects: every write above was acknowledged, so all
        # three are there (nats-py's `keys()` watches the bucket and, on a loaded machine, can take the end of
        # its first scan for an empty bucket and raise NoKeysError).
        ops = secured_nats.bus("ops")
        await ops.connect(attempts=3)
        bucket = a.names.limits_bucket("identity")
        try:
            info = await ops.js.stream_info(f"KV_{bucket}", subjects_filter=f"$KV.{bucket}.>")
        finally:
            await ops.close()
        keys = [subject.removeprefix(f"$KV.{bucket}.") for subject in info.state.subjects or {}]
        assert len(keys) == 3 and not any("10.0.0.7" in k or "addr" in k for k in keys), keys
    finally:
        await a.close()
        await b.close()


async def test_failures_are_refused_from_each_replicas_view_without_asking_the_bus(secured_nats: SecuredNats) -> None:
    """`wait` (asked on every public status request) answers from the replica's view of the keys over the limit,
    which the bucket's updates keep current: a key put over the limit by one replica is refused by the other
    within a bounded lag, and asking costs no bus operation; counting still goes to the shared bucket."""
    import asyncio
    import time

    a, b = secured_nats.bus("intake", service="intake"), secured_nats.bus("intake", service="intake")
    await a.connect(attempts=3)
    await b.connect(attempts=3)
    try:
        # A key over the limit before the views begin is read from the bucket when they do.
        first, second = SharedRateLimiter(a, "wrong_codes", 3, 3600), SharedRateLimiter(b, "wrong_codes", 3, 3600)
        for _ in range(3):
            await first.count("10.0.0.1")
        assert await first.wait("10.0.0.9") is None and await second.wait("10.0.0.9") is None
        await _until(lambda: first.view.current() and second.view.current(), "the views read the bucket")
        assert (await second.wait("10.0.0.1") or 0) > 3590

        asked = {"a": 0, "b": 0}
        for bus, name in ((a, "a"), (b, "b")):
            original = bus.limits_kv

            async def counted(original=original, name=name):  # type: ignore[no-untyped-def]
                asked[name] += 1
                return await original()

            bus.limits_kv = counted  # type: ignore[method-assign]
        for _ in range(50):
            assert await second.wait("10.0.0.2") is None
        assert asked == {"a": 0, "b": 0}, "asking costs no bus operation"

        # Alternating replicas: two wrong codes on one, the third on the other, each counted in the bucket.
        await first.count("10.0.0.2")
        await first.count("10.0.0.2")
        assert await first.wait("10.0.0.2") is None
        await second.count("10.0.0.2")
        assert asked == {"a": 2, "b": 1}
        assert (await second.wait("10.0.0.2") or 0) > 3590, "the counting replica refuses at once"
        started = time.monotonic()
        await _until(lambda: first.view.until.get(first._key("10.0.0.2")) is not None, "the other replica refuses")
        assert time.monotonic() - started < 2.0
        assert (await first.wait("10.0.0.2") or 0) > 3590
        # The window still ends when the oldest failure is an hour old.
        assert await first.wait("10.0.0.2", now=time.time() + 3601) is None
        # A further count over the limit changes nothing and is refused.
        assert await second.retry_after("10.0.0.2") is not None
        assert asked["b"] == 2

        # Reconnected: updates may have been missed meanwhile, so the bucket is asked until the view is read again.
        assert a.nc is not None
        await a.nc.close()
        assert not first.view.current()
        await a.connect(attempts=3)
        assert (await first.wait("10.0.0.2") or 0) > 3590
        await _until(first.view.current, "the view is read again on the new connection")  # begun by that wait
        assert (await first.wait("10.0.0.2") or 0) > 3590 and await first.wait("10.0.0.3") is None
        await asyncio.sleep(0)
    finally:
        await a.close()
        await b.close()


async def _until(check, what: str, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.01)


async def test_concurrent_replicas_never_admit_more_than_the_limit(secured_nats: SecuredNats) -> None:
    import asyncio

    buses = [secured_nats.bus("intake", service="intake") for _ in range(3)]
    for bus in buses:
        await bus.connect(attempts=3)
    try:
        limiters = [SharedRateLimiter(bus, "submit", 5, 60) for bus in buses]
        # 15 requests at once across three replicas: compare-and-set admits exactly five.
        results = await asyncio.gather(*(limiters[i % 3].retry_after("applicant-1") for i in range(15)))
        assert sum(r is None for r in results) == 5
        with pytest.raises(TooManyRequests) as err:
            await limiters[1].check("applicant-1", "submissions")
        assert err.value.status == 429 and int(err.value.headers["Retry-After"]) >= 1
    finally:
        for bus in buses:
            await bus.close()


async def test_a_service_cannot_touch_another_services_limits(secured_nats: SecuredNats) -> None:
    identity = secured_nats.bus("identity", service="identity")
    await identity.connect(attempts=3)
    try:
        await SharedRateLimiter(identity, "login", 1, 60).retry_after("someone")
        bucket = identity.names.limits_bucket("identity")
    finally:
        await identity.close()
    nc = await nats.connect(secured_nats.url, user="catalog", password=secured_nats.bundle.passwords["catalog"],
                            inbox_prefix="_INBOX.catalog", allow_reconnect=False, connect_timeout=2,
                            error_cb=_quiet)
    try:
        js = nc.jetstream(timeout=1)
        with pytest.raises(nats.errors.TimeoutError):
            await js.key_value(bucket)  # not even its existence
        with pytest.raises(nats.errors.TimeoutError):
            await js.purge_stream(f"KV_{bucket}")
    finally:
        await nc.close()


async def test_with_the_bus_out_of_reach_a_replica_counts_on_its_own() -> None:
    bus = Bus("nats://127.0.0.1:1", service="identity")  # never connected
    limiter = SharedRateLimiter(bus, "login", 2, 60)
    assert await limiter.retry_after("k") is None and await limiter.retry_after("k") is None
    assert await limiter.retry_after("k") is not None
    assert await SharedRateLimiter(bus, "off", 0, 60).retry_after("k") is None, "0 turns the limit off"


async def _quiet(_exc: Exception) -> None:
    pass
