"""Department webhooks (Standard Webhooks): endpoint checks against SSRF, and the dispatcher that delivers
queued deliveries (signed by `shared.webhooks`, sent to the checked address by `sender.WebhookSender`, retried by
`shared.webhooks.RetryPolicy`) and records every attempt."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import random
import secrets
import socket
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import event
from sqlalchemy.orm import Session

from services.workflow.config import WorkflowConfig
from services.workflow.sender import ConnectFailed, WebhookSender
from services.workflow.store import repository as repo
from shared.db import Database
from shared.errors import ValidationProblem, invalid
from shared.service import ServiceContext
from shared.types import utcnow
from shared.webhooks import CLOUDEVENTS_JSON, RetryPolicy, signed_headers

log = logging.getLogger("yimen.workflow.webhooks")

#: `session.info` key set by a transaction that queued a delivery to an enabled endpoint: its commit wakes the
#: sender.
WEBHOOKS_QUEUED = "workflow_webhooks_queued"

#: `session.info` key: the deliveries a transaction wrote claimed for this process's sender (`Handoff`).
WEBHOOKS_CLAIMED = "workflow_webhooks_claimed"

#: How long a claimed delivery is reserved for the replica sending it.
LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class HandedDelivery:
    """A delivery claimed as it was written, with what sending it needs (the columns `repo.claim_due_deliveries`
    returns)."""

    id: int
    event_id: str
    payload: str
    endpoint_url: str
    endpoint_secret: str
    attempts: int = 0


class Handoff:
    """The deliveries this process's sender is handed by the commits that wrote them.

    Why: a task's webhook took two transactions of the sender besides its own (a claim, then the attempt's record).
    A delivery written with its lease already taken (`claim_at_write`) is this process's from its commit on: the
    commit hands it over, and the sender sends it with the others it holds and records them, without claiming it.
    Should the process die before recording it, its lease runs out and any replica's poll sends it (at least once,
    as a claimed delivery whose holder died)."""

    def __init__(self) -> None:
        self.deliveries: list[HandedDelivery] = []
        #: Whether the next round must claim what is due in the database (a poll, a retry due, a delivery queued
        #: unclaimed, a full claim), not only send what was handed over.
        self.claim = True


#: The running senders' hand-offs, by their service's database.
_handoffs: weakref.WeakKeyDictionary[Database, Handoff] = weakref.WeakKeyDictionary()


def claim_at_write(session: Any) -> datetime | None:
    """The lease to write new deliveries with, claimed for this process's sender (None where no sender runs here
    to be handed them, or inside a savepoint, whose rollback the hand-over would not see: queued unclaimed then)."""
    database = session.info.get("database")
    if database is None or database not in _handoffs or session.in_nested_transaction():
        return None
    return utcnow() + LEASE


def hand_over(session: Any, pending: list[repo.PendingDelivery], payloads: dict[str, str]) -> None:
    """Give the sender deliveries written with `claim_at_write`'s lease once the transaction commits."""
    session.info.setdefault(WEBHOOKS_CLAIMED, []).extend(
        HandedDelivery(p.id, p.event_id, payloads[p.event_id], p.endpoint_url, p.endpoint_secret) for p in pending)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _is_public(address: str) -> bool:
    """Only globally routable addresses: `is_global` also excludes shared address space (100.64.0.0/10, where
    some clouds keep their metadata service) that the private/loopback/link-local checks miss."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (the one place the webhook sender asks DNS)."""
    try:
        # An address is its own answer: no resolver thread for every attempt to an endpoint given by address.
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_endpoint(url: str, *, allow_private: bool) -> list[str]:
    """Refuse URLs a department must not make us call: not http(s), or resolving to a private, loopback or
    link-local address (SSRF into our own network), unless the deployment allows private addresses.

    Returns the addresses checked; a delivery connects to one of them (`sender.WebhookSender.post`), never
    resolving the name again, so a name that answers a public address to the check and a private one to the connection (DNS
    rebinding) cannot slip through."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid("body.url", "http_url", "The webhook URL must be an absolute http(s) URL.")
    try:
        addresses = await resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except OSError as exc:
        if allow_private:
            return []  # registering a name that only resolves later on a private network is allowed there
        raise invalid("body.url", "resolvable", f"The host {parts.hostname} does not resolve.") from exc
    if not allow_private and (not addresses or not all(_is_public(a) for a in addresses)):
        raise invalid("body.url", "public_address",
                      "The webhook URL resolves to a private, loopback or link-local address.")
    return addresses


@dataclass(frozen=True)
class Outcome:
    """One attempt's result, recorded with the others of its round."""

    delivery: Any  # the claimed delivery's columns (`repo.claim_due_deliveries`)
    url: str
    status: int | None
    error: str | None
    duration_ms: int
    at: datetime


async def deliver_due(ctx: ServiceContext, config: WorkflowConfig, sender: WebhookSender) -> int:
    """Send every due delivery once; returns how many were attempted. A round is two short transactions
    whatever its size: claim the due deliveries (with their departments' endpoints), then, after the
    sends, record every attempt and its outcome."""
    return (await _round(ctx, config, sender))[0]


async def _round(ctx: ServiceContext, config: WorkflowConfig, sender: WebhookSender,
                 retries: Retries | None = None, handed: list[HandedDelivery] | None = None,
                 claim: bool = True, records: Records | None = None) -> tuple[int, bool]:
    """`deliver_due` (when `claim`) and the deliveries `handed` over, also saying whether the claim was full (more
    may be due at once). The attempts are recorded before it returns, or by `records` later."""
    claimed: list[Any] = list(handed or [])
    due: list[Any] = []
    if claim:
        if retries is not None:
            retries.claiming()
        async with ctx.db.transaction() as s:
            due = await repo.claim_due_deliveries(s, utcnow(), LEASE)
            missed = []
            for d in due:
                if not d.endpoint_enabled:  # none registered, or disabled
                    missed.append(d.id)
                else:
                    claimed.append(d)
            await repo.update_deliveries(s, missed, state="missed")
    if not claimed:
        return 0, False
    # Sent concurrently: one slow department must not hold up the others' deliveries.
    outcomes = await asyncio.gather(*(_attempt(config, sender, d, d.endpoint_url, d.endpoint_secret)
                                      for d in claimed))
    if records is not None:
        records.add(outcomes)
    else:
        await _record(ctx, config, outcomes, retries)
    return len(claimed), len(due) >= repo.CLAIM_LIMIT


class Records:
    """Attempts answered but not yet recorded, recorded together: a successful attempt waits up to
    `webhook_record_seconds` for others to share its transaction; a failed one is recorded at once with what
    waits (its retry is scheduled by the record).

    Why: with the hand-over, rounds follow the commits that open stages, a few deliveries each, and a transaction
    per round was most of the sender's cost. Until recorded, a delivery is still under its lease (60 s), so no
    claim sends it again; should the process die first, the lease runs out and it is sent again (at least once, the
    same webhook-id)."""

    def __init__(self, ctx: ServiceContext, config: WorkflowConfig, retries: Retries,
                 retry_scheduled: asyncio.Event) -> None:
        self._ctx, self._config, self._retries = ctx, config, retries
        #: Set once a record scheduled retries: the dispatcher, perhaps asleep until its poll, then waits for them.
        self._retry_scheduled = retry_scheduled
        self._outcomes: list[Outcome] = []
        self._waiting = asyncio.Event()
        self._failed = asyncio.Event()

    def add(self, outcomes: list[Outcome]) -> None:
        self._outcomes.extend(outcomes)
        self._waiting.set()
        if any(o.error is not None for o in outcomes):
            self._failed.set()

    async def run(self) -> None:
        """Record until cancelled (then what waits, as the dispatcher stops)."""
        try:
            while True:
                await self._waiting.wait()
                try:
                    await asyncio.wait_for(self._failed.wait(), self._config.webhook_record_seconds)
                except TimeoutError:
                    pass
                await self.flush()
        finally:
            await self.flush()

    async def flush(self) -> None:
        self._waiting.clear()
        self._failed.clear()
        outcomes, self._outcomes = self._outcomes, []
        try:
            await _record(self._ctx, self._config, outcomes, self._retries)
        except Exception as exc:  # as a round's record that failed: the leases run out, the deliveries go again
            log.warning("recording %d webhook attempts failed: %r", len(outcomes), exc)
        if any(o.error is not None for o in outcomes):
            self._retry_scheduled.set()


async def _attempt(config: WorkflowConfig, sender: WebhookSender, d: Any, url: str, secret: str) -> Outcome:
    status: int | None = None
    error: str | None = None
    started = time.monotonic()
    try:
        # Checked again at each attempt: a name that resolved to a public address at registration may point
        # inside our network now (DNS rebinding); and the connection goes to an address checked here.
        # (None: the name as it resolves when connecting, only where private addresses are allowed and the name
        # did not resolve at the check.)
        addresses: list[str | None] = list(await check_endpoint(url, allow_private=config.webhook_allow_private))
        routes = addresses or [None]
        body = d.payload.encode()
        # webhook-id is the event id: the same on every retry, so the receiver can drop duplicates.
        headers = signed_headers(secret, d.event_id, d.payload, content_type=CLOUDEVENTS_JSON).items()
        for n, address in enumerate(routes, start=1):
            try:
                status = await sender.post(url, address, headers, body, config.webhook_timeout_seconds)
                break
            except ConnectFailed:
                if n == len(routes):  # the next checked address (IPv6 and IPv4 of one name), as a browser would
                    raise
        if status is None or not 200 <= status < 300:
            error = f"HTTP {status}"
    except (OSError, TimeoutError) as exc:  # refused, reset, TLS refused, no answer in time
        error = f"{type(exc).__name__}: {exc or 'no answer within the timeout'}"[:500]
    except ValidationProblem as exc:
        error = f"refused: {exc.detail}"[:500]
    return Outcome(d, url, status, error, int((time.monotonic() - started) * 1000), utcnow())


class Retries:
    """When the retries this process scheduled come due (monotonic seconds), so that the dispatcher sleeps until
    the first of them rather than polling often in case one is due."""

    def __init__(self) -> None:
        self._due: list[float] = []

    def add(self, in_seconds: float) -> None:
        self._due.append(time.monotonic() + max(0.0, in_seconds))

    def claiming(self) -> None:
        """A round is about to claim what is due: the retries due by now are among it, and forgotten."""
        now = time.monotonic()
        self._due = [d for d in self._due if d > now]

    def pause(self, poll: float) -> float:
        """Seconds until the next retry comes due (0 if one came due during the last round), at most `poll`."""
        now = time.monotonic()
        return min([poll, *(max(0.0, d - now) for d in self._due)])


async def _record(ctx: ServiceContext, config: WorkflowConfig, outcomes: list[Outcome],
                  retries: Retries | None = None) -> None:
    if not outcomes:
        return
    policy = RetryPolicy(config.webhook_backoff_seconds, config.webhook_backoff_max_seconds,
                         config.webhook_max_attempts)
    async with ctx.db.transaction() as s:
        # Successes that answered alike are marked in one statement; the claim's lease kept the count ours.
        delivered: dict[int | None, list[int]] = {}
        for o in outcomes:
            attempts = o.delivery.attempts + 1
            if o.error is None:
                delivered.setdefault(o.status, []).append(o.delivery.id)
            elif policy.exhausted(attempts):
                await repo.update_delivery(s, o.delivery.id, state="failed", attempts=attempts, last_status=o.status,
                                           last_error=o.error)
            else:
                retry_at = o.at + policy.delay(attempts)
                await repo.update_delivery(s, o.delivery.id, attempts=attempts, last_status=o.status,
                                           last_error=o.error, next_attempt_at=retry_at)
                if retries is not None:
                    retries.add((retry_at - utcnow()).total_seconds())
        at = max(o.at for o in outcomes)
        groups = list(delivered.items()) or [(None, [])]
        # The attempts go with the first group's mark (a round's answers are mostly all alike: one statement).
        status, ids = groups[0]
        await repo.record_round(s, [dict(delivery_id=o.delivery.id, attempted_at=o.at, url=o.url,
                                         status_code=o.status, error=o.error, duration_ms=o.duration_ms)
                                    for o in outcomes], ids, at=at, status=status)
        for status, ids in groups[1:]:
            await repo.mark_delivered(s, ids, at=at, status=status)


def _listen(ctx: ServiceContext, handoff: Handoff) -> tuple[asyncio.Event, Callable[[], None]]:
    """An event set after each commit that queued a delivery (`WEBHOOKS_QUEUED`: the next round claims) or handed
    some over (`WEBHOOKS_CLAIMED`), and how to stop listening. Waking on every commit with events would run an
    empty round for each decision, which queues no delivery; where the session class cannot be listened to, that
    is the fallback (and nothing is handed over: deliveries are queued unclaimed)."""
    session_class = getattr(ctx.db.sessionmaker, "kw", {}).get("sync_session_class")
    if session_class is None:
        return ctx.db.commit_signal(), lambda: None
    signal = asyncio.Event()

    def after_commit(session: Session) -> None:
        if session.info.pop(WEBHOOKS_QUEUED, False):
            handoff.claim = True
            signal.set()
        handed = session.info.pop(WEBHOOKS_CLAIMED, None)
        if handed:
            handoff.deliveries.extend(handed)
            signal.set()

    def after_transaction_end(session: Session, transaction: Any) -> None:
        if transaction.parent is None:  # rolled back (a commit took them above): nothing was written
            session.info.pop(WEBHOOKS_CLAIMED, None)

    event.listen(session_class, "after_commit", after_commit)
    event.listen(session_class, "after_transaction_end", after_transaction_end)
    _handoffs[ctx.db] = handoff

    def stop() -> None:
        _handoffs.pop(ctx.db, None)
        event.remove(session_class, "after_commit", after_commit)
        event.remove(session_class, "after_transaction_end", after_transaction_end)

    return signal, stop


async def dispatcher(ctx: ServiceContext) -> None:
    """Background job: deliver queued webhooks until the service stops."""
    config: WorkflowConfig = ctx.extras["config"]
    # One sender for every round: its connections are kept alive per endpoint address, its TLS context made once.
    sender = WebhookSender()
    handoff = Handoff()
    signal, stop_listening = _listen(ctx, handoff)
    retries = Retries()
    records = Records(ctx, config, retries, signal)
    recording = asyncio.create_task(records.run(), name="webhook records")
    try:
        # The deliveries this process writes are handed over by their commits and sent at once, without a claim.
        # The database is asked for what is due (a claim) when a commit queued one unclaimed, when a retry this
        # process scheduled comes due, after a claim that took as many as it may, and at each poll, for what only
        # the database knows: other replicas' deliveries and retries, and claims whose holder died (their lease
        # ran out).
        last_claim = time.monotonic()
        while True:
            signal.clear()
            handed, handoff.deliveries = handoff.deliveries, []
            now = time.monotonic()
            claim = handoff.claim or retries.pause(config.webhook_poll_seconds) == 0 \
                or now - last_claim >= config.webhook_poll_seconds
            if claim:
                handoff.claim, last_claim = False, now
            full = False
            try:
                full = (await _round(ctx, config, sender, retries, handed, claim, records))[1]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # logged, and retried at the next round: a background job must not die
                log.warning("webhook dispatcher failed: %r", exc)
                # What was handed over is the database's again once its lease runs out; a claim then sends it.
                handoff.claim = True
            if full:
                handoff.claim = True
                await asyncio.sleep(0)  # let others run between two busy rounds
                continue
            try:
                pause = retries.pause(config.webhook_poll_seconds) * (1.0 + 0.1 * random.random())
                await asyncio.wait_for(signal.wait(), pause)
            except TimeoutError:
                handoff.claim = True
    finally:
        stop_listening()
        recording.cancel()
        await asyncio.gather(recording, return_exceptions=True)
        await sender.aclose()
