"""The senders: SMS through the gateway's HTTP API and app push through the front end's webhook, with quiet
hours, the per-person rate bound, retries with backoff and a give-up age; and the daily jobs' clock.

A message is claimed (its next attempt pushed `claim_seconds` ahead) in one short transaction, sent with no
transaction open, and its outcome recorded in another. A crash between the two only means the claim
expires and the message is tried again; the gateway gets our message id as `reference` to drop a repeat."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from services.notify.domain.schedule import daily_due, local_day, rate_release
from services.notify.service import (
    DISPATCH,
    commit_signal,
    current_config,
    default_quiet_hours,
    quiet_hours_of,
    run_daily,
)
from services.notify.store import repo
from shared.jobs import periodic
from shared.service import ServiceContext
from shared.types import utcnow
from shared.webhooks import RetryPolicy, post_signed

log = logging.getLogger("yimen.notify.dispatch")


@dataclass
class Outcome:
    ok: bool
    permanent: bool = False
    gateway_id: str | None = None
    reason: str | None = None


async def dispatch_once(ctx: ServiceContext, now: datetime | None = None, *, limit: int = 50) -> int:
    """Claim what is due, send it, record the outcome; the number of messages handed to a channel."""
    return (await _dispatch(ctx, now, limit=limit))[0]


#: `ctx.extras` key: when the soonest message this process knows of comes due (None: none within the poll).
_NEXT = "notify_dispatch_next"


async def _dispatch(ctx: ServiceContext, now: datetime | None = None, *, limit: int = 50) -> tuple[int, bool]:
    """`dispatch_once`, and whether the round found a full batch (more may be due at once). Notes in
    `ctx.extras` when the soonest message it saw or deferred comes due, for the pause before the next round."""
    cfg = current_config()
    now = now or utcnow()
    claimed = []
    taken: dict[tuple[str, str], int] = {}
    async with ctx.db.transaction() as s:
        # What comes due within the poll too: its time says when to look next, in the same read.
        rows = await repo.due_messages(s, now + timedelta(seconds=cfg.dispatch_poll_seconds), limit=limit)
        due = [r for r in rows if r.next_attempt_at <= now]
        upcoming = [r.next_attempt_at for r in rows if r.next_attempt_at > now]
        ctx.extras[_NEXT] = min(upcoming, default=None)
        if not due:
            return 0, False
        give_up = now - timedelta(hours=cfg.give_up_after_hours)
        live = [r for r in due if r.created_at >= give_up]
        # The round's quiet hours and recent sends in one read each, not one per message.
        quiet = await quiet_hours_of(s, [r.recipient_id for r in live
                                         if not r.urgent and r.recipient_kind == "person"])
        sent_before = await repo.sent_times(s, [(r.recipient_kind, r.recipient_id) for r in live],
                                            repo.hour_ago(now))
        for row in due:
            if row.created_at < give_up:
                await repo.set_message(s, row.id, status="failed", next_attempt_at=None,
                                       reason=f"gave_up: not sent within {cfg.give_up_after_hours:g} h "
                                              f"(last: {row.reason or 'none'})"[:300])
                continue
            if not row.urgent:
                hours = quiet.get(row.recipient_id) if row.recipient_kind == "person" else None
                release = (hours or default_quiet_hours()).release_at(now)
                if release is not None:
                    await repo.set_message(s, row.id, status="held", next_attempt_at=release,
                                           reason="quiet_hours: 免打扰时段，到点发送")
                    _comes_due(ctx, release)
                    continue
            who = (row.recipient_kind, row.recipient_id)
            # What this batch already took for the same recipient counts as sent now.
            sent = sent_before[who] + [now] * taken.get(who, 0)
            if (later := rate_release(sent, now=now, per_hour=cfg.per_person_per_hour)) is not None:
                await repo.set_message(s, row.id, status="queued", next_attempt_at=later,
                                       reason="rate_bound: 每小时条数已达上限，稍后发送")
                _comes_due(ctx, later)
                continue
            claimed.append(row)
            taken[who] = taken.get(who, 0) + 1
        await repo.claim(s, [r.id for r in claimed], now + timedelta(seconds=cfg.claim_seconds))
    full = len(due) >= limit
    if not claimed:
        return 0, full
    outcomes = await asyncio.gather(*(_send(ctx.http, row) for row in claimed))
    async with ctx.db.transaction() as s:
        for row, out in zip(claimed, outcomes, strict=True):
            attempts = row.attempts + 1
            if out.ok:
                if row.channel == "push":
                    await repo.set_message(s, row.id, status="delivered", attempts=attempts, sent_at=utcnow(),
                                           delivered_at=utcnow(), next_attempt_at=None, reason=None)
                else:
                    await repo.record_sms_sent(s, row.id, attempts=attempts, gateway_id=out.gateway_id,
                                               at=utcnow())
            elif out.permanent:
                await repo.set_message(s, row.id, status="failed", attempts=attempts, next_attempt_at=None,
                                       reason=out.reason)
            else:
                wait = RetryPolicy(cfg.retry_base_seconds, cfg.retry_cap_seconds).delay(attempts)
                await repo.set_message(s, row.id, status="queued", attempts=attempts, reason=out.reason,
                                       next_attempt_at=utcnow() + wait)
                _comes_due(ctx, utcnow() + wait)
    for row, out in zip(claimed, outcomes, strict=True):
        if not out.ok:
            log.warning("notify: %s message %s not sent (%s)", row.channel, row.id, out.reason)
    return sum(o.ok for o in outcomes), full


def _comes_due(ctx: ServiceContext, at: datetime) -> None:
    known = ctx.extras.get(_NEXT)
    ctx.extras[_NEXT] = at if known is None else min(known, at)


def _pause(ctx: ServiceContext) -> float:
    """Until the soonest message known comes due, at most `dispatch_poll_seconds`."""
    cap = current_config().dispatch_poll_seconds
    soonest = ctx.extras.get(_NEXT)
    return cap if soonest is None else min(cap, max(0.0, (soonest - utcnow()).total_seconds()))


async def _dispatch_round(ctx: ServiceContext) -> bool:
    # Another round at once only after a full batch: a message committed meanwhile sets the wake signal
    # anyway, so a round that took everything due is not followed by one that finds nothing.
    return (await _dispatch(ctx))[1]


async def _send(http: httpx.AsyncClient, row) -> Outcome:  # type: ignore[no-untyped-def]
    try:
        if row.channel == "sms":
            return await _send_sms(http, row)
        return await _send_push(http, row)
    except httpx.HTTPError as exc:
        return Outcome(False, reason=f"unreachable: {type(exc).__name__}")


def _judge(r: httpx.Response, what: str) -> Outcome | None:
    if r.is_success:
        return None
    # 408 and 429 and every 5xx are the gateway's trouble, not the message's: try again later.
    permanent = 400 <= r.status_code < 500 and r.status_code not in (408, 409, 425, 429)
    return Outcome(False, permanent=permanent, reason=f"{what}: HTTP {r.status_code}")


async def _send_sms(http: httpx.AsyncClient, row) -> Outcome:  # type: ignore[no-untyped-def]
    cfg = current_config()
    if not cfg.sms_gateway_url:
        return Outcome(False, permanent=True, reason="no_gateway: no SMS gateway configured")
    r = await http.post(cfg.sms_gateway_url, timeout=10,
                        headers={"Authorization": f"Bearer {cfg.sms_gateway_key}", "Idempotency-Key": row.id},
                        json={"to": row.destination, "content": row.body, "reference": row.id,
                              "callback_url": cfg.sms_callback_url})
    if (bad := _judge(r, "gateway")) is not None:
        return bad
    try:
        gateway_id = str(r.json().get("id") or "") or None
    except ValueError:
        gateway_id = None
    return Outcome(True, gateway_id=gateway_id)


async def _send_push(http: httpx.AsyncClient, row) -> Outcome:  # type: ignore[no-untyped-def]
    cfg = current_config()
    if not cfg.push_webhook_url:
        return Outcome(False, permanent=True, reason="no_webhook: no push webhook registered")
    payload = json.dumps({"type": "notification", "message_id": row.id, "kind": row.kind,
                          "recipient": {"kind": row.recipient_kind, "id": row.recipient_id},
                          "application_id": row.application_id, "title": row.title, "body": row.body,
                          "created_at": row.created_at.isoformat()}, ensure_ascii=False)
    r = await post_signed(http, cfg.push_webhook_url, secret=cfg.push_webhook_secret, msg_id=row.id, body=payload)
    return _judge(r, "push webhook") or Outcome(True)


#: Send due messages; a commit of this process that queued SMS or push messages wakes it at once, a message it
#: knows comes due later (a retry, a rate-bound or quiet-hours release) is waited for, and otherwise it looks
#: every `dispatch_poll_seconds` (for what another replica committed); a full batch is followed by the next.
dispatcher = periodic(_dispatch_round, interval=_pause,
                      wake=lambda ctx: commit_signal(ctx.db.engine, DISPATCH), drain=True, name="dispatcher")


async def daily_round(ctx: ServiceContext) -> None:
    """Expiry reminders and the supervisors' digest, once per local day after `daily_at`."""
    now = utcnow()
    if daily_due(now, current_config().daily_at):
        async with ctx.db.transaction() as s:
            done = await run_daily(s, local_day(now))
        if any(done.values()):
            log.info("notify daily jobs: %s", done)


#: The daily jobs' clock: looks every `daily_check_seconds` whether today's have run.
daily_jobs = periodic(daily_round, interval=lambda ctx: current_config().daily_check_seconds, name="daily_jobs")
