"""Wiring of the efficacy service: its routers, tables, consumers and background jobs."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from services.efficacy.api.routes import router
from services.efficacy.config import EfficacyConfig
from services.efficacy.events.handlers import CONSUMERS
from services.efficacy.service import current_config, evaluate_round, set_config
from services.efficacy.store import calendar as calendar_store
from services.efficacy.store import supervision
from services.efficacy.store.tables import Base, messaging
from shared.jobs import periodic
from shared.service import ServiceContext, ServiceSpec, create_service_app
from shared.settings import ServiceSettings
from shared.webhooks import RetryPolicy, send_webhook

log = logging.getLogger("yimen.efficacy")


async def seed_calendar(ctx: ServiceContext) -> None:
    """Seed the calendar table from the library for the years it knows (an admin's load is never overwritten)."""
    async with ctx.db.transaction() as s:
        await calendar_store.seed_from_library(s)
        await calendar_store.holder_for(s).reload(s)


async def evaluate_cards(ctx: ServiceContext) -> None:
    """Evaluate every running clock for cards, committing batch by batch (`evaluate_round`)."""
    async for _ in evaluate_round(ctx.db, current_config()):
        pass


#: Background job: the card evaluation, every `evaluation_interval_seconds` (the first after one interval).
card_evaluator = periodic(evaluate_cards, interval=lambda ctx: current_config().evaluation_interval_seconds,
                          first_after_pause=True, name="card_evaluator")


#: The supervisors' webhook: 2 s, 4 s, 8 s … at most 10 minutes apart (`claim_webhooks` stops after 12).
WEBHOOK_RETRY = RetryPolicy(base_seconds=2, cap_seconds=600, max_attempts=12)


async def deliver_webhooks(ctx: ServiceContext) -> int:
    """Deliver due cards to the supervisors' webhook (`shared.webhooks`: Standard Webhooks, retried with backoff);
    returns how many were attempted."""
    async with ctx.db.transaction() as s:
        rows = await supervision.claim_webhooks(s)
    secret = current_config().supervisor_webhook_secret
    for row in rows:
        result = await send_webhook(ctx.http, row.url, secret=secret, msg_id=row.message_id, body=row.payload,
                                    timeout=5)
        async with ctx.db.transaction() as s:
            await supervision.mark_webhook(s, row.id, ok=result.ok, attempts=row.attempts + 1, error=result.error,
                                           retry=WEBHOOK_RETRY)
    return len(rows)


#: Background job: the supervisors' webhooks, sent as soon as the commit that queued them (the card round, the data
#: access watch) wakes it; otherwise it looks every 5 s, for retries come due and other replicas' rows. (Every
#: 0.5 s it was two transactions a second for a queue that is empty but for the few cards raised each day.) A
#: round that sent some is followed by the next at once.
webhook_dispatcher = periodic(deliver_webhooks, interval=5.0, first_after_pause=True, name="webhook_dispatcher",
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
