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
