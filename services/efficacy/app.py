"""Wiring of the efficacy service: its routers, tables, consumers and background jobs."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import httpx
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook

from services.efficacy.api.routes import router
from services.efficacy.config import EfficacyConfig
from services.efficacy.events.handlers import CONSUMERS
from services.efficacy.service import current_config, evaluate, set_config
from services.efficacy.store import calendar as calendar_store
from services.efficacy.store import supervision
from services.efficacy.store.tables import Base, messaging
from shared.service import ServiceContext, ServiceSpec, create_service_app
from shared.settings import ServiceSettings
from shared.types import utcnow

log = logging.getLogger("yimen.efficacy")


async def seed_calendar(ctx: ServiceContext) -> None:
    """Seed the calendar table from the library for the years it knows (an admin's load is never overwritten)."""
    async with ctx.db.transaction() as s:
        await calendar_store.seed_from_library(s)
        await calendar_store.holder_for(s).reload(s)


async def card_evaluator(ctx: ServiceContext) -> None:
    """Evaluate every running clock for cards, every `evaluation_interval_seconds`."""
    while True:
        await asyncio.sleep(current_config().evaluation_interval_seconds)
        try:
            async with ctx.db.transaction() as s:
                cal = await calendar_store.holder_for(s).reload(s)  # another replica may have loaded a year
                await evaluate(s, cal, utcnow(), current_config())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("card evaluation failed: %r; retrying", exc)


async def webhook_dispatcher(ctx: ServiceContext) -> None:
    """Deliver cards to the supervisors' webhook, signed per Standard Webhooks, retried with backoff."""
    while True:
        await asyncio.sleep(0.5)
        try:
            async with ctx.db.transaction() as s:
                rows = await supervision.claim_webhooks(s)
            for row in rows:
                ok, err = await _deliver(ctx.http, row.url, row.message_id, row.payload)
                async with ctx.db.transaction() as s:
                    await supervision.mark_webhook(s, row.id, ok=ok, attempts=row.attempts + 1, error=err)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("webhook dispatch failed: %r", exc)


async def _deliver(http: httpx.AsyncClient, url: str, message_id: str, payload: str) -> tuple[bool, str | None]:
    now = datetime.now().astimezone()
    signature = Webhook(current_config().supervisor_webhook_secret).sign(message_id, now, payload)
    headers = {"webhook-id": message_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": signature, "content-type": "application/json"}
    try:
        r = await http.post(url, content=payload.encode(), headers=headers, timeout=5)
    except httpx.HTTPError as exc:
        return False, repr(exc)
    return (r.is_success, None if r.is_success else f"HTTP {r.status_code}")


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
