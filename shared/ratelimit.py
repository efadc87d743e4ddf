"""Request-rate limits (OWASP API4, 限流): a sliding window per key, counted for the whole platform.

The limits guard the expensive and abusable flows: sign-in per client address, submission per applicant,
wrong codes on the public status page, certificate verification. A service runs as several replicas behind
the gateway (or a Kubernetes Service), and a client's next request may land on any of them, so a count kept
in one process would let N replicas admit N times the limit. `SharedRateLimiter` keeps each key's window in
a JetStream key-value bucket of the service's own (`<stream>_LIMITS_<SERVICE>`, on the cluster the platform
already runs), updated with compare-and-set, so every replica sees the same hits.

When the bus does not answer (a restart, a partition), the replica counts in its own memory for that
request and says so in its log: a limit that briefly holds per replica is better than sign-in refused for
the whole city because a counter is out of reach. `RateLimiter` is that in-memory window (and what unit
tests of a rule use).

A limit on failures (`wait` before the work, `count` after a failure: wrong codes on the public status page) is
asked on every request but counted only on failures, so asking must not cost a bus round trip: each replica
keeps a view of the keys that are over the limit, fed by a watch on the limiter's keys in the bucket
(`OverLimitView`), and answers `wait` from it; the bucket is still the one window, changed only by `count`.
A key that another replica puts over the limit is refused here once its update arrives (milliseconds; at
worst two missed heartbeats, `WATCH_HEARTBEAT_SECONDS` each, before the watch is renewed); until the view has
read the bucket whole, or when the connection it watches on is not the bus's current one, `wait` asks the
bucket as before."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
from collections import deque
from typing import Any

from shared.errors import TooManyRequests

log = logging.getLogger("yimen.ratelimit")

#: A compare-and-set that keeps losing (many replicas counting one key at once) is retried this often.
CAS_ATTEMPTS = 12
#: The bus gets this long per operation before the replica falls back to its own count.
KV_TIMEOUT_SECONDS = 2.0
#: The server's heartbeat on an idle watch: two missed ones and nats-py renews the watch (the view's worst lag).
WATCH_HEARTBEAT_SECONDS = 1.0
#: A watch that could not begin is tried again at most this often (meanwhile `wait` asks the bucket).
WATCH_RETRY_SECONDS = 5.0
#: A view holding this many keys forgets those whose window has ended (then again at twice what is left).
PRUNE_AT = 1024


class RateLimiter:
    def __init__(self, limit: int, per_seconds: float = 60.0, *, max_keys: int = 100_000) -> None:
        self.limit, self.per, self.max_keys = limit, per_seconds, max_keys
        self._hits: dict[str, deque[float]] = {}

    def retry_after(self, key: str, *, now: float | None = None) -> float | None:
        """Count one request for `key`; seconds to wait when it is over the limit (the request is not counted)."""
        if self.limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:  # forget the idle ones rather than grow without bound
                for k in [k for k, h in self._hits.items() if not h or h[-1] < now - self.per]:
                    del self._hits[k]
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.per:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(0.0, hits[0] + self.per - now)
        hits.append(now)
        return None

    def wait(self, key: str, *, now: float | None = None) -> float | None:
        """Seconds until `key` may try again (None: now), counting nothing: for limits on failures, where only
        what went wrong is counted (`count`)."""
        if self.limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        while hits and hits[0] <= now - self.per:
            hits.popleft()
        if hits is not None and len(hits) >= self.limit:
            return max(0.0, hits[0] + self.per - now)
        return None

    def count(self, key: str, *, now: float | None = None) -> None:
        """Count one failure for `key` (see `wait`)."""
        if self.limit > 0 and self.wait(key, now=now) is None:
            self.retry_after(key, now=now)

    def check(self, key: str, what: str) -> None:
        """Raise a 429 problem with Retry-After when `key` is over the limit."""
        wait = self.retry_after(key)
        if wait is not None:
            raise too_many(self.limit, self.per, wait, what)


class OverLimitView:
    """The keys of one limiter that are over its limit, and until when (wall-clock seconds), kept up to date by
    a watch on the limiter's keys in the service's bucket: every replica's count arrives here as the bucket's
    update. Only keys over the limit are kept, so the view stays as small as the set of refused clients.

    `current()` says whether it may answer: it has read every key of the limiter that the bucket held when the
    watch began, and the watch is on the bus's present connection, which has not reconnected since (updates
    missed while disconnected would arrive late)."""

    def __init__(self, bus: Any, name: str, limit: int, per_seconds: float) -> None:
        self.bus, self.name, self.limit, self.per = bus, name, limit, per_seconds
        self.until: dict[str, float] = {}
        self._nc: Any = None  # the connection the watch is on, and its reconnect count when it began
        self._reconnects = -1
        self._ready = False
        self._caught_up_at = 0  # the consumer sequence that, once applied, has read the bucket whole
        self._applied = 0  # the consumer sequence last applied
        self._task: asyncio.Task[None] | None = None
        self._sub: Any = None
        self._failed = -1e9  # when a watch last failed to begin (monotonic)
        self._prune_at = PRUNE_AT

    def current(self) -> bool:
        nc = self.bus.nc if self.bus is not None else None
        return (self._ready and nc is not None and nc is self._nc and nc.is_connected
                and nc.stats["reconnects"] == self._reconnects)

    def wait(self, kv_key: str, now: float) -> float | None:
        until = self.until.get(kv_key)
        if until is None:
            return None
        if until <= now:
            # Left the window: forgotten here (a count that puts it over again notes it again).
            del self.until[kv_key]
            return None
        return until - now

    def note(self, kv_key: str, hits: list[float]) -> None:
        """The key's hits as the bucket now holds them (at most `limit`, oldest first)."""
        if len(hits) < self.limit:
            self.until.pop(kv_key, None)
            return
        self.until[kv_key] = hits[-self.limit] + self.per
        if len(self.until) >= self._prune_at:  # keys never asked again would otherwise stay for good
            now = time.time()
            for k in [k for k, t in self.until.items() if t <= now]:
                del self.until[k]
            self._prune_at = max(PRUNE_AT, 2 * len(self.until))

    def start(self) -> None:
        """Begin (or renew) the watch in the background, once the bus is connected."""
        if self.limit <= 0 or self.bus is None or not getattr(self.bus, "connected", False):
            return
        if self._task is not None and not self._task.done():
            return
        nc = self.bus.nc
        if self._sub is not None and nc is self._nc and nc.stats["reconnects"] == self._reconnects:
            return  # watching: not read whole yet
        if time.monotonic() - self._failed < WATCH_RETRY_SECONDS:
            return
        self._task = asyncio.create_task(self._watch(), name=f"ratelimit-view-{self.name}")

    async def _watch(self) -> None:
        from nats.js import api

        nc = self.bus.nc
        self._ready = False
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        self.until.clear()
        self._nc, self._reconnects = nc, nc.stats["reconnects"]
        self._caught_up_at = self._applied = 0
        try:
            await asyncio.wait_for(self.bus.limits_kv(), KV_TIMEOUT_SECONDS)  # the bucket exists
            bucket = self.bus.limits_bucket
            # The latest entry of each of this limiter's keys, then every change: an ordered push consumer
            # that nats-py renews (from the next sequence) when it misses two heartbeats or a message.
            self._sub = await nc.jetstream().subscribe(
                f"$KV.{bucket}.{self.name}.*", stream=f"KV_{bucket}", cb=self._apply, ordered_consumer=True,
                deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT, idle_heartbeat=WATCH_HEARTBEAT_SECONDS,
                inactive_threshold=60.0)
            info = await asyncio.wait_for(self._sub.consumer_info(), KV_TIMEOUT_SECONDS)
            if info.num_pending == 0:
                # What the bucket held has been sent already: read whole once the last of it is applied.
                sent = (info.delivered.consumer_seq or 0) if info.delivered else 0
                if self._applied >= sent:
                    self._ready = True
                else:
                    self._caught_up_at = sent
            # else: read whole with the message after which nothing is pending (`_apply`)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:  # the bucket is asked instead, as before; a later `wait` tries again
            self._failed = time.monotonic()
            if self._sub is not None:
                with contextlib.suppress(Exception):
                    await self._sub.unsubscribe()
                self._sub = None
            log.warning("rate limit %s: cannot watch the shared counts (%r); asking the bucket", self.name, exc)

    async def _apply(self, msg: Any) -> None:
        meta = msg.metadata
        kv_key = msg.subject.split(".", 2)[2]
        op = (msg.headers or {}).get("KV-Operation") or (msg.headers or {}).get("Nats-Marker-Reason")
        if op:
            self.until.pop(kv_key, None)  # deleted, purged or expired: no hits left
        else:
            try:
                hits = sorted(float(h) for h in json.loads(msg.data or b"[]"))
            except ValueError:
                hits = []
            self.note(kv_key, hits[-self.limit:])
        self._applied = meta.sequence.consumer
        if not self._ready and (meta.num_pending == 0 or 0 < self._caught_up_at <= self._applied):
            self._ready = True


def too_many(limit: int, per: float, wait: float, what: str) -> TooManyRequests:
    seconds = max(1, math.ceil(wait))
    return TooManyRequests(f"Too many {what}: at most {limit} in {per:.0f} s. Retry in {seconds} s.",
                           detail_zh=f"操作过于频繁：{per:.0f} 秒内最多 {limit} 次，请 {seconds} 秒后重试。",
                           headers={"Retry-After": str(seconds)}, retry_after=seconds)


class SharedRateLimiter:
    """The same sliding window as `RateLimiter`, with each key's hits (wall-clock seconds, at most `limit` of
    them) in a JetStream KV entry that every replica of the service updates by compare-and-set.

    `bus` is the service's `shared.bus.Bus`; `name` keeps the service's limiters apart inside its bucket.
    Keys are hashed: client addresses and applicant ids are personal data and stay out of the bucket."""

    def __init__(self, bus: Any, name: str, limit: int, per_seconds: float = 60.0) -> None:
        self.bus, self.name = bus, name
        self.limit, self.per = limit, per_seconds
        self.local = RateLimiter(limit, per_seconds)
        self.view = OverLimitView(bus, name, limit, per_seconds)
        self._warned = 0.0

    def _key(self, key: str) -> str:
        return f"{self.name}.{hashlib.sha256(key.encode()).hexdigest()[:40]}"

    def _fallback(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned > 30:
            self._warned = now
            log.warning("rate limit %s: the shared count is out of reach (%r); counting in this replica", self.name,
                        exc)

    async def _shared(self, key: str, *, add: bool, now: float | None) -> float | None:
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        kv = await self.bus.limits_kv()
        k = self._key(key)
        for _ in range(CAS_ATTEMPTS):
            stamp = time.time() if now is None else now
            try:
                entry = await kv.get(k)
                hits = [float(h) for h in json.loads(entry.value or b"[]")]
                revision: int | None = entry.revision
            except KeyNotFoundError:
                hits, revision = [], None
            hits = sorted(h for h in hits if h > stamp - self.per)
            if len(hits) >= self.limit:
                self.view.note(k, hits)
                return max(0.0, hits[0] + self.per - stamp)
            if not add:
                return None
            kept = [*hits, stamp][-self.limit:]
            try:
                if revision is None:
                    await kv.create(k, json.dumps(kept).encode())
                else:
                    await kv.update(k, json.dumps(kept).encode(), last=revision)
                # This replica refuses the key from now on, without waiting for its own update to come back.
                self.view.note(k, kept)
                return None
            except KeyWrongLastSequenceError:
                continue  # another replica counted the same key first: read again
        raise RuntimeError(f"rate limit {self.name}: {CAS_ATTEMPTS} compare-and-set attempts lost")

    async def _run(self, key: str, *, add: bool, now: float | None) -> float | None:
        if self.limit <= 0:
            return None
        if self.bus is None or not getattr(self.bus, "connected", False):
            self._fallback(ConnectionError("bus not connected"))
            return self.local.retry_after(key) if add else self.local.wait(key)
        try:
            return await asyncio.wait_for(self._shared(key, add=add, now=now), KV_TIMEOUT_SECONDS)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            self._fallback(exc)
            return self.local.retry_after(key) if add else self.local.wait(key)

    async def retry_after(self, key: str, *, now: float | None = None) -> float | None:
        """Count one request for `key`; seconds to wait when it is over the limit (the request is not counted)."""
        return await self._run(key, add=True, now=now)

    async def wait(self, key: str, *, now: float | None = None) -> float | None:
        """Seconds until `key` may try again (None: now), counting nothing (limits on failures): from the view
        of the keys over the limit when it is current, else from the bucket."""
        if self.limit <= 0:
            return None
        if self.view.current():
            return self.view.wait(self._key(key), time.time() if now is None else now)
        self.view.start()
        return await self._run(key, add=False, now=now)

    async def count(self, key: str, *, now: float | None = None) -> None:
        """Count one failure for `key` (see `wait`)."""
        await self._run(key, add=True, now=now)

    async def check(self, key: str, what: str) -> None:
        """Raise a 429 problem with Retry-After when `key` is over the limit."""
        wait = await self.retry_after(key)
        if wait is not None:
            raise too_many(self.limit, self.per, wait, what)


def limiter_for(app_state: object, name: str, per_minute: int, *, per_seconds: float = 60.0) -> SharedRateLimiter:
    """The app's limiter called `name`, made on first use (one per running app, so tests stay apart), counting
    across every replica through the app's bus (`app_state.bus`); `per_minute` requests per minute, or per
    `per_seconds` when given. A limit that changes (a setting reloaded) makes a fresh limiter."""
    limiters: dict[str, SharedRateLimiter] = app_state.__dict__.setdefault("_rate_limiters", {})
    current = limiters.get(name)
    if current is None or (current.limit, current.per) != (per_minute, per_seconds):
        current = limiters[name] = SharedRateLimiter(getattr(app_state, "bus", None), name, per_minute, per_seconds)
    return current


class SharedLeases:
    """At most `limit` things open at once per key across every replica (并发上限: live streams per person):
    each open thing holds a lease (an id and an expiry, in the service's KV bucket beside its rate limits),
    renewed while it lives and given back when it ends. A replica that dies without giving its leases back
    loses them when they expire (`ttl_seconds`), so a slot is never lost for good.

    With the bus out of reach the replica counts its own leases (and says so), like `SharedRateLimiter`."""

    def __init__(self, bus: Any, name: str, limit: int, ttl_seconds: float = 60.0) -> None:
        self.bus, self.name, self.limit, self.ttl = bus, name, limit, ttl_seconds
        self.local: dict[str, set[str]] = {}
        self._warned = 0.0

    def _key(self, key: str) -> str:
        return f"{self.name}.{hashlib.sha256(key.encode()).hexdigest()[:40]}"

    async def _change(self, key: str, change: Any) -> Any:
        """Apply `change(live_leases: dict[id, expiry], now) -> result` by compare-and-set; returns the result."""
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        kv = await self.bus.limits_kv()
        k = self._key(key)
        for _ in range(CAS_ATTEMPTS):
            now = time.time()
            try:
                entry = await kv.get(k)
                leases = {str(i): float(t) for i, t in json.loads(entry.value or b"{}").items()}
                revision: int | None = entry.revision
            except KeyNotFoundError:
                leases, revision = {}, None
            live = {i: t for i, t in leases.items() if t > now}
            result = change(live, now)
            try:
                if revision is None:
                    await kv.create(k, json.dumps(live).encode())
                else:
                    await kv.update(k, json.dumps(live).encode(), last=revision)
                return result
            except KeyWrongLastSequenceError:
                continue
        raise RuntimeError(f"leases {self.name}: {CAS_ATTEMPTS} compare-and-set attempts lost")

    async def _shared(self, key: str, change: Any, fallback: Any) -> Any:
        if self.bus is not None and getattr(self.bus, "connected", False):
            try:
                return await asyncio.wait_for(self._change(key, change), KV_TIMEOUT_SECONDS)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as exc:
                reason: BaseException = exc
        else:
            reason = ConnectionError("bus not connected")
        now = time.monotonic()
        if now - self._warned > 30:
            self._warned = now
            log.warning("leases %s: the shared count is out of reach (%r); counting in this replica", self.name,
                        reason)
        return fallback()

    async def acquire(self, key: str) -> str | None:
        """A new lease for `key`, or None when `limit` live leases are held already."""
        import secrets

        lease = secrets.token_hex(8)

        def take(live: dict[str, float], now: float) -> str | None:
            if len(live) >= self.limit:
                return None
            live[lease] = now + self.ttl
            return lease

        def local() -> str | None:
            held = self.local.setdefault(key, set())
            if len(held) >= self.limit:
                return None
            held.add(lease)
            return lease

        return await self._shared(key, take, local)

    async def renew(self, key: str, lease: str) -> None:
        def extend(live: dict[str, float], now: float) -> None:
            live[lease] = now + self.ttl

        await self._shared(key, extend, lambda: None)

    async def release(self, key: str, lease: str) -> None:
        def drop(live: dict[str, float], _now: float) -> None:
            live.pop(lease, None)

        def local() -> None:
            held = self.local.get(key, set())
            held.discard(lease)
            if not held:
                self.local.pop(key, None)

        local()  # whichever count took it
        await self._shared(key, drop, lambda: None)


def leases_for(app_state: object, name: str, limit: int, *, ttl_seconds: float = 60.0) -> SharedLeases:
    """The app's lease counter called `name` (see `SharedLeases`), made on first use."""
    leases: dict[str, SharedLeases] = app_state.__dict__.setdefault("_leases", {})
    current = leases.get(name)
    if current is None or (current.limit, current.ttl) != (limit, ttl_seconds):
        current = leases[name] = SharedLeases(getattr(app_state, "bus", None), name, limit, ttl_seconds)
    return current
