"""The JetStream event bus: one stream captures `yimen.>`; services publish through their outbox relay and
consume through durable pull consumers with explicit ack, bounded redelivery and a dead-letter subject.

Subjects are the event `type` (`yimen.intake.application.accepted`), preceded by the deployment's bus prefix
when one is set (`<prefix>.yimen.…`). On a server with the platform's accounts (`deploy/natsconfig.py`) the
subject is what NATS vouches for: a connection may publish only its own subjects, so a consumer trusts an
event only when its `type` is the subject it arrived on (`Undeliverable` otherwise)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import APIError, BucketNotFoundError, NotFoundError

from shared.events import Event
from shared.settings import STREAM_MAX_AGE_DAYS

log = logging.getLogger("yimen.bus")

DEAD_LETTER_ROOT = "yimen-dlq"
#: A service's rate-limit bucket (shared/ratelimit.py): a key's hits outlive the longest window (an hour),
#: and the whole bucket is bounded so that a flood of keys cannot fill the cluster's disks.
LIMITS_TTL_SECONDS = 2 * 3600.0
LIMITS_MAX_BYTES = 256 * 1024 * 1024


class Undeliverable(Exception):
    """A message that can never be applied, however often it is delivered (an event whose `type` is not the
    subject it arrived on: a forgery or a bug). It is parked in the dead-letter subject at once."""


class AwaitingEarlierEvent(Exception):
    """A message that needs another event applied first. Durable consumers of different subjects are not
    ordered with each other (a decision can overtake its acceptance after a leader election or a replica
    restart), so it is retried later, like an outage, without counting toward the dead-letter bound."""


def _token(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", value)


@dataclass
class BusNames:
    prefix: str = ""

    def subject(self, event_type: str) -> str:
        return f"{self.prefix}.{event_type}" if self.prefix else event_type

    def event_type(self, subject: str) -> str:
        return subject[len(self.prefix) + 1 :] if self.prefix and subject.startswith(self.prefix + ".") else subject

    @property
    def stream(self) -> str:
        return "YIMEN" + (f"_{_token(self.prefix).upper()}" if self.prefix else "")

    @property
    def dead_letter_stream(self) -> str:
        return self.stream + "_DLQ"

    def dead_letter_subject(self, consumer: str, service: str = "") -> str:
        """`yimen-dlq.<service>.<consumer>`: the service's token lets NATS permissions keep each service to
        its own dead letters (else one could park forged letters that an operator's replay would publish).
        Without `service`, the consumer's name up to its first `-` (names are `<service>-<purpose>`)."""
        owner = service or consumer.split("-", 1)[0]
        return self.subject(f"{DEAD_LETTER_ROOT}.{_token(owner)}.{_token(consumer)}")

    def dead_letter_filter(self, consumer: str) -> str:
        """Every service's dead letters of `consumer` (operators name a consumer, not its service)."""
        return self.subject(f"{DEAD_LETTER_ROOT}.*.{_token(consumer)}")

    def durable(self, consumer: str) -> str:
        return _token(consumer)

    def limits_bucket(self, service: str) -> str:
        """The JetStream KV bucket of one service's rate limits (its stream is `KV_<bucket>`)."""
        return f"{self.stream}_LIMITS_{_token(service).upper()}"


class Bus:
    """A connection to NATS with the platform's stream set up."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "",
        name: str = "yimen",
        stream_replicas: int | None = None,
        duplicate_window_seconds: float = 120.0,
        max_age_days: float = STREAM_MAX_AGE_DAYS,
        user: str = "",
        password: str = "",
        service: str = "",
        manage_streams: bool = True,
    ) -> None:
        self.url = url
        self.names = BusNames(prefix)
        self.client_name = name
        #: Credentials of a server with the platform's accounts; empty for an open server (tests, CI).
        self.user, self.password = user, password
        #: Whose dead letters this connection writes (`yimen-dlq.<service>.…`).
        self.service = service
        #: A department system's connection only publishes: it may not create or even look at the streams.
        self.manage_streams = manage_streams
        #: Copies of each stream on a cluster; None (operators' tools, the simulator) leaves an existing stream's
        #: as they are, so that a tool never scales the platform's streams down (and creates with 1).
        self.stream_replicas = stream_replicas
        self.duplicate_window = duplicate_window_seconds
        self.max_age = max_age_days * 86400
        self.nc: NATS | None = None
        self._streams_ready = False
        self._limits_kv: Any = None
        self._limits_kv_nc: NATS | None = None
        self._reported: dict[str, float] = {}
        self._js: Any = None
        self._js_nc: NATS | None = None
        #: Called (no arguments) each time the connection comes back after a loss: a pull request that was
        #: waiting on the server is gone then, and its worker should ask again now rather than at its timeout.
        self.on_reconnect: set[Callable[[], None]] = set()

    async def _reconnected(self) -> None:
        for callback in list(self.on_reconnect):
            callback()

    async def connect(self, *, attempts: int = 0) -> None:
        """Connect and set up the streams, retrying until it works (or `attempts` runs out, about 5 s each);
        once connected, nats-py reconnects by itself."""
        last_error: list[Exception] = []
        loop = asyncio.get_running_loop()

        async def _on_error(exc: Exception) -> None:
            # A refused connection while the server restarts is routine (nats-py retries it); a refused login
            # or a permission violation is a configuration error that an operator must see, once in a while.
            text = str(exc).lower()
            refused = "authorization" in text or "permissions violation" in text or "authentication" in text
            if refused or not last_error:
                last_error[:] = [exc]  # the reason worth reporting: a refusal, not the reset that follows it
            if refused:
                if loop.time() - self._reported.get(text, -1e9) > 30:
                    self._reported[text] = loop.time()
                    log.error("bus: %s as %s: %s", self.url, self.user or "(no credentials)", exc)

        auth: dict[str, Any] = {}
        if self.user:
            # Replies (stream acks, pull batches) come to an inbox only this user may subscribe to, so that no
            # other connection can read what this one fetches.
            auth = {"user": self.user, "password": self.password, "inbox_prefix": f"_INBOX.{_token(self.user)}"}
        tried = 0
        while True:
            tried += 1
            try:
                connecting = nats.connect(
                    # A cluster is named by its servers, comma-separated (`nats://a:4222,nats://b:4222`).
                    [u.strip() for u in self.url.split(",") if u.strip()],
                    name=self.client_name,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    allow_reconnect=True,
                    error_cb=_on_error,
                    reconnected_cb=self._reconnected,
                    **auth,
                )
                # nats-py retries the first connection forever by itself; a bounded caller (an operator's
                # command) is told why it gave up instead.
                self.nc = await (asyncio.wait_for(connecting, 5) if attempts else connecting)
                if self.manage_streams:
                    await self.ensure_streams()
                return
            except Exception as exc:
                if attempts and tried >= attempts:
                    raise ConnectionError(f"cannot connect to {self.url}: {last_error[-1] if last_error else exc!r}"
                                          ) from exc
                log.warning("bus: cannot connect to %s (%r); retrying", self.url, exc)
                if self.nc is not None:
                    with contextlib.suppress(Exception):
                        await self.nc.close()
                    self.nc = None
                await asyncio.sleep(min(0.2 * tried, 2.0))

    @property
    def js(self):  # type: ignore[no-untyped-def]
        """The connection's JetStream context, made once per connection: the batch publish's acks come to a
        subscription the context holds (and a context per call was an object and an event per message)."""
        assert self.nc is not None, "bus not connected"
        if self._js is None or self._js_nc is not self.nc:
            self._js, self._js_nc = self.nc.jetstream(), self.nc
        return self._js

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def ensure_streams(self) -> None:
        """Create or update the event stream and the dead-letter stream; safe to call from every replica."""
        await self._ensure_stream(
            StreamConfig(
                name=self.names.stream,
                subjects=[self.names.subject("yimen.>")],
                storage=StorageType.FILE,
                duplicate_window=self.duplicate_window,
                max_age=self.max_age,
                num_replicas=self.stream_replicas,
            )
        )
        await self._ensure_stream(
            StreamConfig(
                name=self.names.dead_letter_stream,
                subjects=[self.names.subject(f"{DEAD_LETTER_ROOT}.>")],
                storage=StorageType.FILE,
                num_replicas=self.stream_replicas,
            )
        )
        self._streams_ready = True

    @property
    def limits_bucket(self) -> str:
        """The name of this service's rate-limit bucket (a KV bucket is the stream `KV_<name>`)."""
        return self.names.limits_bucket(self.service or self.client_name)

    async def limits_kv(self) -> Any:
        """This service's rate-limit bucket (shared/ratelimit.py), made on first use, replicated like the
        streams so that the limits survive a node's loss."""
        if self._limits_kv is None or self._limits_kv_nc is not self.nc:  # made again on a new connection
            self._limits_kv_nc = self.nc
            bucket = self.limits_bucket
            try:
                self._limits_kv = await self.js.key_value(bucket)
            except BucketNotFoundError:
                self._limits_kv = await self.js.create_key_value(KeyValueConfig(
                    bucket=bucket, history=1, ttl=LIMITS_TTL_SECONDS, max_bytes=LIMITS_MAX_BYTES,
                    storage=StorageType.FILE, replicas=self.stream_replicas or 1))
        return self._limits_kv

    async def _ensure_stream(self, config: StreamConfig) -> None:
        try:
            info = await self.js.stream_info(config.name)
        except NotFoundError:
            if config.num_replicas is None:
                config.num_replicas = 1
            try:
                await self.js.add_stream(config)
            except Exception:  # another replica won the race
                await self.js.stream_info(config.name)
            return
        if config.num_replicas is None:
            config.num_replicas = info.config.num_replicas
        await self.js.update_stream(config)

    async def ready(self) -> bool:
        if not self.connected:
            return False
        if not self.manage_streams:
            return True
        try:
            await asyncio.wait_for(self.js.stream_info(self.names.stream), 2)
            return True
        except Exception:
            return False

    async def publish(self, event: Event) -> bool:
        """Publish and wait for the stream's ack. Returns False when the server dropped it as a duplicate."""
        return await self.publish_raw(self.names.subject(event.type), event.to_json(), event.id)

    async def publish_raw(
        self, subject: str, payload: bytes, msg_id: str, headers: dict[str, str] | None = None
    ) -> bool:
        hdrs = {"Nats-Msg-Id": msg_id, **(headers or {})}
        ack = await self.js.publish(subject, payload, headers=hdrs, timeout=5)
        return not ack.duplicate

    async def publish_batch(self, messages: Sequence[tuple[str, bytes, str]], *, timeout: float = 5.0) -> None:
        """Publish `(subject, payload, msg_id)` messages in their order, then wait for the stream's acks of all
        of them together: one wait for the batch, not a request (a reply subscription, a timer and a task) per
        message. Raises if any is not acknowledged within `timeout`: the caller publishes them all again, and
        the stream drops the ones it had by their `Nats-Msg-Id` (within its duplicate window)."""
        if not messages:
            return
        js = self.js
        acks: list[asyncio.Future[Any]] = []
        try:
            for subject, payload, msg_id in messages:
                # Each publish is written before the next, so the stream stores them in this order.
                acks.append(await js.publish_async(subject, payload,
                                                   headers={"Nats-Msg-Id": msg_id}))
            await asyncio.wait_for(asyncio.gather(*acks), timeout)
        finally:
            for ack in acks:  # an ack that never came would hold its slot of nats-py's pending bound for good
                if not ack.done():
                    ack.cancel()

    async def close(self) -> None:
        # Every publish already waited for its stream ack, so nothing is in flight that drain would save;
        # drain would instead wait out the pull subscriptions' pending fetches.
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), 5)
            self.nc = None

    # ---- dead letters -------------------------------------------------------------------------------------

    async def dead_letter(self, consumer: str, msg: Msg, error: str) -> None:
        hdrs = {
            "Yimen-Original-Subject": msg.subject,
            "Yimen-Error": error[:500].replace("\n", " "),
            "Yimen-Deliveries": str(msg.metadata.num_delivered),
        }
        msg_id = f"dlq-{consumer}-{msg.metadata.sequence.stream}"
        await self.publish_raw(self.names.dead_letter_subject(consumer, self.service), msg.data, msg_id, hdrs)

    async def dead_letters(self, consumer: str) -> list[dict[str, Any]]:
        """What waits in one consumer's dead-letter subject (for operators)."""
        out = []
        for seq, msg in await self._dlq_messages(consumer):
            out.append(
                {
                    "sequence": seq,
                    "subject": (msg.headers or {}).get("Yimen-Original-Subject"),
                    "error": (msg.headers or {}).get("Yimen-Error"),
                    "data": msg.data.decode(errors="replace"),
                }
            )
        return out

    async def replay_dead_letters(self, consumer: str) -> int:
        """Publish each dead letter again on its original subject, then remove it from the dead-letter stream.

        Other consumers of that subject already applied the event and skip it by their inbox; the consumer that
        failed applies it now (after its fix is deployed)."""
        count = 0
        for seq, msg in await self._dlq_messages(consumer):
            hdrs = msg.headers or {}
            subject = hdrs.get("Yimen-Original-Subject")
            if not subject:
                continue
            await self.publish_raw(subject, msg.data, f"replay-{consumer}-{seq}")
            await self.js.delete_msg(self.names.dead_letter_stream, seq)
            count += 1
        return count

    async def _dlq_messages(self, consumer: str) -> list[tuple[int, Msg]]:
        subject = self.names.dead_letter_filter(consumer)
        sub = await self.js.pull_subscribe(
            subject,
            stream=self.names.dead_letter_stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL, inactive_threshold=10
            ),
        )
        out: list[tuple[int, Msg]] = []
        try:
            while True:
                try:
                    msgs = await sub.fetch(100, timeout=0.5)
                except (NatsTimeout, TimeoutError):
                    break
                for m in msgs:
                    out.append((m.metadata.sequence.stream, m))
                    await m.ack()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return out


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether a NATS subject falls under a pattern with `*` (one token) and `>` (the rest) wildcards."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(have) == len(want)


def _status(msg: Msg) -> str | None:
    """A JetStream status reply's code (`404` no messages, `408` the request expired, `100` a heartbeat …), or
    None for a message."""
    return msg.headers.get("Status") if msg.headers else None


def _pending_after(msg: Msg) -> int:
    """How many messages the consumer held for delivery behind this one when it was delivered."""
    try:
        return int(msg.metadata.num_pending or 0)
    except Exception:  # not a JetStream message (a test's stand-in): no hint
        return 0


#: How long a busy consumer's pull waits for the rest of a batch once the messages at hand are taken.
BUSY_WAIT = 0.05
#: How long past a pull request's expiry its reader waits for the server's word that it ended (its 408).
PULL_GRACE = 0.1
#: How long the first message of a quiet spell waits for the messages the server says are behind it
#: (`PullWorker._followers`): they are in the stream already, so they come in one round trip.
PENDING_WAIT = 0.02
#: How long a consumer that gathers lets the first message of a quiet spell wait for a burst still on its way.
#: Off for now: 20 ms joined the five task events of a case (intake, datashare), but notify then applies an
#: application's `accepted` and `delivered` in one transaction, and lists messages of the same `created_at` in
#: no set order (services/notify/tests/test_stream_and_api.py on PostgreSQL). On once notify orders them.
FOLLOWERS_WAIT = 0.0
#: How long an idle consumer's pull waits on the server before it asks again. The pull hands a message over as
#: it arrives, so this is no latency: it is how often each of the platform's ~40 idle consumers wakes its process
#: and the server (every 5 s was 8 pull requests a second platform-wide at idle). A pull the server dropped is
#: asked again at reconnection, so this is not how long an outage holds events up either.
IDLE_WAIT = 30.0


class PullWorker:
    """Runs one durable pull consumer: fetch, hand each message to `handle`, ack; on failure nak with backoff,
    and after `max_deliver` deliveries move the message to the dead-letter subject.

    Replicas of a service bind the same durable, so JetStream hands each message to one of them."""

    def __init__(
        self,
        bus: Bus,
        consumer: str,
        subject: str,
        handle: Callable[[Msg], Awaitable[None]],
        *,
        max_deliver: int = 5,
        ack_wait: float = 30.0,
        batch: int = 20,
        on_result: Callable[[str], None] | None = None,
        is_transient: Callable[[BaseException], bool] | None = None,
        handle_batch: Callable[[list[Msg]], Awaitable[None]] | None = None,
        idle_wait: float = IDLE_WAIT,
        gather: float = 0.0,
        only: Collection[str] | None = None,
    ) -> None:
        self.bus = bus
        #: When set, a busy consumer collects what arrives within this many seconds of asking into one batch
        #: (returning early only with a full batch), instead of taking what is there: for a consumer whose events
        #: may wait that long and come in bursts, fewer and larger batches.
        self.gather = gather
        #: The event types under `subject` that the handler needs (None: all). The server then delivers only
        #: those (a filter of several subjects, nats-server 2.10+), so that an event nobody here applies costs
        #: no delivery, no parse and no ack; an older server delivers all of `subject` and the handler skips.
        self.only = None if only is None else frozenset(only)
        #: How long an idle consumer's pull waits on the server for a message. The message is handed over the
        #: moment it arrives, so this costs no latency; it only sets how often an idle consumer asks again. A
        #: pull the server lost (it restarted, the connection moved) is asked again as soon as the connection
        #: is back (`Bus.on_reconnect`), so a long wait here never holds events up after an outage either.
        self.idle_wait = idle_wait
        #: Applies several messages at once (one transaction); any failure falls back to `handle` one by one.
        self.handle_batch = handle_batch
        #: Failures that are not the message's fault (the database restarting): retried without counting
        #: toward the dead-letter bound, so an outage never parks good events.
        self.is_transient = is_transient or (lambda exc: isinstance(exc, OSError))
        self.consumer = consumer
        self.subject = subject
        self.handle = handle
        self.max_deliver = max_deliver
        self.ack_wait = ack_wait
        self.batch = batch
        self.on_result = on_result or (lambda _r: None)
        self._stop = asyncio.Event()
        self._fetch: asyncio.Future[list[Msg]] | None = None
        self._again = False  # the pending pull was cancelled to be asked again (reconnected), not to stop
        #: Deliveries that failed here for a reason outside the message (transient, or waiting for an earlier
        #: event), by stream sequence: JetStream's delivery count includes them, the bound must not. Kept in
        #: memory (another replica, or this one restarted, counts them as the message's own: the bound then
        #: comes sooner, never later), dropped when the message is acked or parked.
        self._transient: dict[int, int] = {}

    def _pull_again(self) -> None:
        if self._fetch is not None and not self._fetch.done():
            self._again = True
            self._fetch.cancel()

    def filters(self) -> list[str]:
        """The subjects the durable consumer is filtered by: its `subject`, or each needed type under it when
        the server takes several (a type outside `subject` stays out, as the handler would skip it)."""
        names = self.bus.names
        if self.only is not None and self.bus.nc is not None:
            version = self.bus.nc.connected_server_version
            if (version.major, version.minor) >= (2, 10):
                pattern = names.subject(self.subject)
                subjects = sorted(s for s in map(names.subject, self.only) if subject_matches(pattern, s))
                if subjects:
                    return subjects
        return [names.subject(self.subject)]

    async def _subscribe(self):  # type: ignore[no-untyped-def]
        durable = self.bus.names.durable(self.consumer)
        filters = self.filters()
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            # An existing durable takes the new filter (a create of the same name updates it): what it skips
            # from now on is what its handler would have acknowledged unapplied.
            filter_subject=filters[0] if len(filters) == 1 else None,
            filter_subjects=filters if len(filters) > 1 else None,
            ack_wait=self.ack_wait,
            # The bound is enforced here, not by the server, so that a message is never silently dropped:
            # it is either applied or parked in the dead-letter subject.
            max_deliver=-1,
            max_ack_pending=1000,
        )
        try:
            await self.bus.js.add_consumer(self.bus.names.stream, config=config)
        except Exception:
            # Exists already (another replica, an earlier run): keep it, its position is what matters.
            await self.bus.js.consumer_info(self.bus.names.stream, durable)
        return await self.bus.js.pull_subscribe_bind(durable, stream=self.bus.names.stream)

    async def run(self) -> None:
        self.bus.on_reconnect.add(self._pull_again)
        try:
            await self._run()
        finally:
            self.bus.on_reconnect.discard(self._pull_again)

    async def _run(self) -> None:
        sub = None
        want = self.batch  # a worker that starts may find a backlog: take it in batches
        gathering = False  # with `gather`: after a message, what follows within `gather` seconds is one batch
        while not self._stop.is_set():
            try:
                if sub is None:
                    sub = await self._subscribe()
                    if self._stop.is_set():  # stopped while subscribing
                        return
                # nats-py's fetch of a batch, once a message has come on a waiting pull, waits for the rest of
                # the batch until its timeout: an idle consumer therefore waits for one message (handed over as
                # it arrives, however long the wait), and a busy one asks for what its last message said was
                # still pending, which comes at once. A task of its own, so that `stop()` ends a long idle pull
                # at once rather than after it.
                self._fetch = asyncio.ensure_future(
                    self._gather(sub) if gathering else
                    sub.fetch(want, timeout=BUSY_WAIT) if want > 1 else sub.fetch(1, timeout=self.idle_wait))
                try:
                    msgs = await self._fetch
                except (NatsTimeout, TimeoutError):
                    want, gathering = 1, False
                    continue
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and not task.cancelling():
                        if self._stop.is_set():
                            return  # the pull was cancelled by stop(), not this worker by its owner
                        if self._again:  # by a reconnect: the server has forgotten it, ask again
                            self._again = False
                            want, gathering = 1, False
                            continue
                    raise
                finally:
                    self._fetch = None
                if not msgs:  # a batch pull can end with only a status reply (nothing left, or another replica's)
                    want, gathering = 1, False
                    continue
                if len(msgs) == 1 and not gathering and self.handle_batch is not None:
                    msgs += await self._followers(sub, msgs[0])
                gathering = self.gather > 0
                # The server counts what waits behind the last message: nothing (the common case of an event
                # travelling alone) goes straight back to the idle pull, without a probe that would cost two
                # pull requests, their status replies and a timeout; a backlog is taken in batches.
                want = max(1, min(self.batch, _pending_after(msgs[-1])))
                if self.handle_batch is not None and len(msgs) > 1 and await self._batch(msgs):
                    continue
                for msg in msgs:
                    await self._one(msg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection trouble: back off, resubscribe
                log.warning("consumer %s: %r; retrying", self.consumer, exc)
                sub = None
                await asyncio.sleep(0.5)

    async def _followers(self, sub, first: Msg) -> list[Msg]:  # type: ignore[no-untyped-def]
        """What joins the first message of a quiet spell in its transaction. Events written by one transaction
        (a case's five department tasks) reach the stream together, but the idle pull hands over only the first:
        applied alone, it cost a transaction of its own before the rest came as a batch. The messages the server
        said wait behind it are taken at once (they are there: one round trip); a consumer that `gather`s may
        also wait up to `FOLLOWERS_WAIT` for a burst still on its way. Nothing on failure: the first goes alone."""
        pending = _pending_after(first)
        waits = self.gather > 0 and FOLLOWERS_WAIT > 0
        window = min(self.gather, FOLLOWERS_WAIT) if waits else (PENDING_WAIT if pending else 0.0)
        if window <= 0:
            return []
        want = self.batch - 1 if waits else min(self.batch - 1, pending)
        try:
            return await self._within(sub, want, window)
        except asyncio.CancelledError:
            raise
        except Exception:  # the connection failed: the first goes alone, the loop resubscribes after it
            return []

    async def _gather(self, sub) -> list[Msg]:  # type: ignore[no-untyped-def]
        """What arrives within `gather` seconds (a full batch sooner); a timeout when nothing does."""
        msgs = await self._within(sub, self.batch, self.gather)
        if not msgs:
            raise NatsTimeout
        return msgs

    @staticmethod
    async def _within(sub, want: int, seconds: float) -> list[Msg]:  # type: ignore[no-untyped-def]
        """Up to `want` messages, those there now and those arriving within `seconds`, in one pull request that the
        server holds open for the window: it hands each message over as it comes and ends the request when `want`
        have come or the window is over (a 408 status). nats-py's `fetch` asks with `no_wait`, which the server
        ends as soon as what is there is handed over: a window over a burst arriving in parts cost a pull request
        and its status reply per part (bench, 10 clients: 3.5 of each per case in every consumer that gathers).
        What is queued is taken off the subscription's queue directly: `next_msg` made two tasks, a timer and a
        uuid for each message."""
        inner = sub._sub
        queue: asyncio.Queue[Msg] = inner._pending_queue
        msgs: list[Msg] = []
        # Queued already: messages an earlier request delivered after its caller had stopped waiting (kept), and
        # the status replies that ended earlier requests (dropped).
        while len(msgs) < want and not queue.empty():
            msg = queue.get_nowait()
            inner._pending_size -= len(msg.data)  # nats-py's count of what the subscription holds (its bound)
            if _status(msg) is None:
                msgs.append(msg)
        if len(msgs) >= want or seconds <= 0:
            return msgs
        request = {"batch": want - len(msgs), "expires": int(seconds * 1_000_000_000)}
        await sub._nc.publish(sub._nms, json.dumps(request).encode(), sub._deliver)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds + PULL_GRACE
        while len(msgs) < want:
            if queue.empty():
                if (left := deadline - loop.time()) <= 0:
                    break
                try:
                    msg = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    break
            else:
                msg = queue.get_nowait()
            inner._pending_size -= len(msg.data)
            status = _status(msg)
            if status is None:
                msgs.append(msg)
            elif status in ("404", "408", "409"):
                # The end of the request (or of an earlier one, come late: this one then ends early, as a fetch
                # did; what it still delivers waits in the queue for the next).
                break
            elif status != "100":  # not a heartbeat: an error the request cannot go on from
                raise APIError.from_msg(msg)
        return msgs

    async def _batch(self, msgs: list[Msg]) -> bool:
        """The whole batch at once; False (nothing applied, nothing acknowledged) when any of it failed."""
        assert self.handle_batch is not None
        try:
            await self.handle_batch(msgs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("consumer %s: batch of %d failed (%r); one by one", self.consumer, len(msgs), exc)
            return False
        for msg in msgs:
            await msg.ack()
            if self._transient:
                self._transient.pop(msg.metadata.sequence.stream, None)
            self.on_result("ok")
        return True

    def _not_its_failure(self, seq: int) -> None:
        """A delivery of the message at `seq` failed for a reason outside it: not counted toward the bound."""
        if len(self._transient) >= 10_000 and seq not in self._transient:
            del self._transient[next(iter(self._transient))]
        self._transient[seq] = self._transient.get(seq, 0) + 1

    async def _one(self, msg: Msg) -> None:
        try:
            await self.handle(msg)
        except asyncio.CancelledError:
            raise
        except Undeliverable as exc:
            log.error("consumer %s: dead-lettering at once: %s", self.consumer, exc)
            await self.bus.dead_letter(self.consumer, msg, f"undeliverable: {exc}")
            await msg.term()
            self.on_result("dead_letter")
            return
        except Exception as exc:
            deliveries = msg.metadata.num_delivered
            seq = msg.metadata.sequence.stream
            if isinstance(exc, AwaitingEarlierEvent):
                log.info("consumer %s: %s; again later", self.consumer, exc)
                self._not_its_failure(seq)
                await msg.nak(delay=min(0.25 * 2 ** min(deliveries, 6), 10.0))
                self.on_result("waiting")
                return
            if self.is_transient(exc):
                log.warning("consumer %s: dependency unavailable (%r); retrying", self.consumer, exc)
                self._not_its_failure(seq)
                await msg.nak(delay=min(0.25 * 2 ** min(deliveries, 6), 10.0))
                self.on_result("unavailable")
                return
            failures = deliveries - self._transient.get(seq, 0)
            if failures >= self.max_deliver:
                log.error("consumer %s: dead-lettering after %d deliveries (%d failed): %r", self.consumer,
                          deliveries, failures, exc)
                await self.bus.dead_letter(self.consumer, msg, repr(exc))
                await msg.term()
                self._transient.pop(seq, None)
                self.on_result("dead_letter")
            else:
                log.warning("consumer %s: delivery %d failed: %r", self.consumer, deliveries, exc)
                await msg.nak(delay=min(0.2 * 2**failures, 30.0))
                self.on_result("retry")
            return
        await msg.ack()
        if self._transient:
            self._transient.pop(msg.metadata.sequence.stream, None)
        self.on_result("ok")

    def stop(self) -> None:
        self._stop.set()
        if self._fetch is not None:
            self._fetch.cancel()
