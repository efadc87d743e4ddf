"""Wiring of the notify service: its routers, tables, the consumer, the senders and the daily jobs."""

from __future__ import annotations

import asyncio
import dataclasses

from fastapi import FastAPI

from services.notify.api.me import StreamHub
from services.notify.api.routes import router
from services.notify.config import NotifyConfig
from services.notify.dispatch import daily_jobs, dispatcher
from services.notify.events.handlers import CONSUMERS
from services.notify.service import FEED, commit_signal, seed_templates, set_config
from services.notify.store.tables import Base, messaging
from shared.service import ServiceContext, ServiceSpec, create_service_app
from shared.settings import ServiceSettings

DESCRIPTION = """What the platform tells people (通知推送): messages from templates on three channels — the in-app
inbox, SMS through the SMS gateway, app push through the front end's webhook — with each person's channel choices
and quiet hours, delivery status for recipients and operators, and the live progress stream (Server-Sent Events)
of a person's cases for front ends.

Messages come from events on the bus (acceptance, the one-time notice, a department's correction request, the
decision, payment, collection, delivery, an invitation to rate; yellow and red cards for departments; expiring
certificates and the supervisors' digest daily). One event makes at most one message per channel and recipient,
however often it is delivered. No message carries an ID number: templates may only name the placeholders of
their kind, and none of them holds one."""


async def _seed(ctx: ServiceContext) -> None:
    async with ctx.db.transaction() as s:
        await seed_templates(s)


def _stream_waker(hub: StreamHub):  # type: ignore[no-untyped-def]
    async def stream_waker(ctx: ServiceContext) -> None:
        """Wake the open live streams after every commit of this replica that wrote feed rows."""
        signal = commit_signal(ctx.db.engine, FEED)
        while True:
            await signal.wait()
            signal.clear()
            hub.poke()
            await asyncio.sleep(0.05)  # a burst of commits wakes the streams once

    return stream_waker


#: The service as every other sees it (its durable consumers name its bus permissions, deploy/natsconfig.py);
#: `create_app` adds the live-stream waker, which needs the app's own stream hub.
SPEC = ServiceSpec(
    name="notify",
    title="Yimen notify",
    description=DESCRIPTION,
    metadata=Base.metadata,
    messaging=messaging,
    routers=[router],
    consumers=CONSUMERS,
    on_startup=[_seed],
    background=[dispatcher, daily_jobs],
    publishes=False,  # notify only consumes: no outbox relay polling an empty outbox
    openapi_tags=[
        {"name": "me", "description": "The signed-in person's inbox, preferences and live stream."},
        {"name": "templates", "description": "Message templates (admins)."},
        {"name": "messages", "description": "Delivery status; the SMS gateway's receipts."},
    ],
)


def create_app(settings: ServiceSettings | None = None, *, config: NotifyConfig | None = None,
               **kwargs: object) -> FastAPI:
    set_config(config or NotifyConfig())
    hub = StreamHub()
    spec = dataclasses.replace(SPEC, background=[*SPEC.background, _stream_waker(hub)])
    app = create_service_app(spec, settings, **kwargs)  # type: ignore[arg-type]
    app.state.stream_hub = hub
    return app
