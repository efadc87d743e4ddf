"""Wiring of the efficacy service: its routers, tables, consumers and background jobs."""

from __future__ import annotations

import asyncio
import logging
import math
import time

from fastapi import FastAPI

from services.efficacy.api.routes import router
from services.efficacy.config import EfficacyConfig
from services.efficacy.domain.clocks import round_pause
from services.efficacy.events.handlers import CONSUMERS
from services.efficacy.service import current_config, evaluate_round, set_config
from services.efficacy.service.cards import RoundReport
from services.efficacy.store import calendar as calendar_store
from services.efficacy.store import cases, supervision
from services.efficacy.store.tables import Base, messaging
from shared.jobs import periodic
from shared.service import ServiceContext, ServiceSpec, create_service_app
from shared.settings import ServiceSettings
from shared.types import utcnow
from shared.webhooks import RetryPolicy, send_webhook

log = logging.getLogger("yimen.efficacy")


async def seed_calendar(ctx: ServiceContext) -> None:
    """Seed the calendar table from the library for the years it knows (an admin's load is never overwritten)."""
    async with ctx.db.transaction() as s:
        await calendar_store.seed_from_library(s)
        await calendar_store.holder_for(s).reload(s)


#: `ctx.extras` keys: when the last card round started (monotonic seconds), and the pause after it.
_ROUND_AT, _ROUND_PAUSE = "efficacy_card_round_at", "efficacy_card_round_pause"


async def evaluate_cards(ctx: ServiceContext) -> None:
    """Evaluate the clocks due for cards, committing batch by batch (`evaluate_round`), then choose the pause
    (`round_pause`): the interval while a clock read is still watched today, else until the next local midnight.
    Rounds a case consumer's commits wake (`cases.CLOCKS_WATCHED`) come at most one interval apart, as before."""
    config = current_config()
    since = time.monotonic() - ctx.extras.get(_ROUND_AT, -math.inf)
    if since < config.evaluation_interval_seconds:
        await asyncio.sleep(config.evaluation_interval_seconds - since)
    ctx.extras[_ROUND_AT] = time.monotonic()
    ctx.extras[_ROUND_PAUSE] = config.evaluation_interval_seconds  # if the round fails
    report = RoundReport()
    async for _ in evaluate_round(ctx.db, config, report=report):
        pass
    ctx.extras[_ROUND_PAUSE] = round_pause(utcnow(), again=report.again,
                                           interval=config.evaluation_interval_seconds,
                                           idle=config.evaluation_idle_seconds)


def _card_pause(ctx: ServiceContext) -> float:
    return float(ctx.extras.get(_ROUND_PAUSE, current_config().evaluation_interval_seconds))


#: Background job: the card evaluation (the first one interval after start). With no clock watched today it does
#: nothing until the next local midnight: every 5 s, its empty round was the platform's largest idle cost.
card_evaluator = periodic(evaluate_cards, interval=_card_pause, first_after_pause=True, name="card_evaluator",
                          wake=lambda ctx: ctx.db.commit_signal(cases.CLOCKS_WATCHED))


#: The supervisors' webhook: 2 s, 4 s, 8 s … at most 10 minutes apart (`claim_webhooks` stops after 12).
WEBHOOK_RETRY = RetryPolicy(base_seconds=2, cap_seconds=600, max_attempts=12)


#: `ctx.extras` key: when the soonest retry this process scheduled comes due (monotonic seconds), if any.
_RETRY_AT = "efficacy_webhook_retry_at"

#: How often the webhook sender looks with nothing to send that it knows of: for rows of a replica that stopped
#: (their lease runs out, `supervision.LEASE`) or whose own sender is down.
WEBHOOK_POLL_SECONDS = 60.0


async def deliver_webhooks(ctx: ServiceContext) -> int:
    """Deliver due cards to the supervisors' webhook (`shared.webhooks`: Standard Webhooks, retried with backoff);
    returns how many were attempted. Notes when the soonest retry it scheduled comes due."""
    if ctx.extras.get(_RETRY_AT, math.inf) <= time.monotonic():
        ctx.extras.pop(_RETRY_AT)
    async with ctx.db.transaction() as s:
        rows = await supervision.claim_webhooks(s)
    secret = current_config().supervisor_webhook_secret
    for row in rows:
        result = await send_webhook(ctx.http, row.url, secret=secret, msg_id=row.message_id, body=row.payload,
                                    timeout=5)
        async with ctx.db.transaction() as s:
            await supervision.mark_webhook(s, row.id, ok=result.ok, attempts=row.attempts + 1, error=result.error,
                                           retry=WEBHOOK_RETRY)
        if not result.ok:
            at = time.monotonic() + WEBHOOK_RETRY.delay(row.attempts + 1).total_seconds()
            ctx.extras[_RETRY_AT] = min(at, ctx.extras.get(_RETRY_AT, math.inf))
    return len(rows)


def _webhook_pause(ctx: ServiceContext) -> float:
    return max(0.0, min(WEBHOOK_POLL_SECONDS, ctx.extras.get(_RETRY_AT, math.inf) - time.monotonic()))


#: Background job: the supervisors' webhooks, sent as soon as the commit that queued them (the card round, the data
#: access watch) wakes it, and a retry when it comes due; otherwise it looks every `WEBHOOK_POLL_SECONDS`. (Every
#: 5 s, it was an idle process's second largest cost, for a queue that is empty but for the few cards raised
#: each day.) A round that sent some is followed by the next at once; the first, at start, sends what a
#: stopped process left.
webhook_dispatcher = periodic(deliver_webhooks, interval=_webhook_pause,
                              name="webhook_dispatcher",
                              wake=lambda ctx: ctx.db.commit_signal(supervision.WEBHOOKS_QUEUED), drain=True)


SPEC = ServiceSpec(
    name="efficacy",
    title="Yimen efficacy",
    description="""Working-day calendar, deadline clocks, yellow and red cards (红黄牌) with supervision, KPIs, ratings (好差评), complaints.""",
    metadata=Base.metadata,
    messaging=messaging,
    routers=[router],
    consumers=CONSUMERS,
    on_startup=[seed_calendar],
    background=[card_evaluator, webhook_dispatcher],
)


def create_app(settings: ServiceSettings | None = None, *, config: EfficacyConfig | None = None,
               **kwargs: object) -> FastAPI:
    set_config(config or EfficacyConfig())
    return create_service_app(SPEC, settings, **kwargs)  # type: ignore[arg-type]
