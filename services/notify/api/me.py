"""The signed-in person's side: the in-app inbox (站内信), channel preferences and quiet hours, and the live
progress stream (实时进度) of their cases as Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.notify import service
from services.notify.api.models import (
    ChannelStatus,
    NotificationRead,
    PreferencesRead,
    PreferencesUpdate,
    QuietHoursModel,
)
from shared.auth import CurrentPrincipal
from shared.bounds import MAX_ID
from shared.db import Database, SessionDep
from shared.errors import TooManyRequests, invalid
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep
from shared.ratelimit import leases_for

router = APIRouter(prefix="/me", tags=["me"])
log = logging.getLogger("yimen.notify.stream")
#: A live stream's slot is a lease renewed every third of this while the stream lives; a replica that dies
#: mid-stream gives its slots back when they expire.
STREAM_LEASE_SECONDS = 60.0


@router.get("/notifications", response_model=Page[NotificationRead], summary="My in-app inbox",
            description="Newest first, cursor-paginated. `unread=true` lists only unread ones. Each item says how "
                        "the same message went on SMS and push (queued, held in quiet hours, sent, delivered, "
                        "failed with the reason). Staff also see their department's messages; supervisors the "
                        "daily digest; an organisation's agent the organisation's.",
            responses=problem_responses(401, 422))
async def my_notifications(session: SessionDep, principal: CurrentPrincipal, page: PageDep,
                           unread: Annotated[bool | None, Query(description="true: unread only; false: read only")]
                           = None) -> Page[NotificationRead]:
    entries, nxt = await service.inbox(session, principal, unread=unread, cursor=page.cursor, limit=page.limit)
    items = [NotificationRead(id=r.id, kind=r.kind, title=r.title, body=r.body, application_id=r.application_id,
                              created_at=r.created_at, read_at=r.read_at,
                              channels=[ChannelStatus(channel=o.channel, message_id=o.id, status=o.status,
                                                      reason=o.reason) for o in e.others])
             for e in entries for r in (e.message,)]
    return Page[NotificationRead](items=items, next_cursor=nxt)


@router.post("/notifications/{notification_id}/read", status_code=204, summary="Mark one as read",
             description="Idempotent: marking a read message again changes nothing.",
             responses=problem_responses(401, 404))
async def mark_read(notification_id: str, session: SessionDep, principal: CurrentPrincipal) -> None:
    await service.mark_read(session, principal, notification_id)


def _prefs(p: service.Preferences) -> PreferencesRead:
    quiet = (QuietHoursModel(start=p.quiet_start, end=p.quiet_end)
             if p.quiet_start and p.quiet_end and p.quiet_start != p.quiet_end else None)
    return PreferencesRead(channels=p.channels, quiet_hours=quiet, phone=p.phone)  # type: ignore[arg-type]


@router.get("/preferences", response_model=PreferencesRead, summary="My channels and quiet hours",
            responses=problem_responses(401))
async def get_preferences(session: SessionDep, principal: CurrentPrincipal) -> PreferencesRead:
    return _prefs(await service.get_preferences(session, principal.subject))


@router.put("/preferences", response_model=PreferencesRead, summary="Choose channels and quiet hours",
            description="Per kind, which of `sms` and `push` to receive besides the in-app inbox (which always "
                        "receives). `quiet_hours: null` turns quiet hours off; messages held by the old window "
                        "are looked at again at once. `phone` is the number SMS go to (else the contact number on "
                        "each application).",
            responses=problem_responses(401, 422))
async def put_preferences(body: PreferencesUpdate, session: SessionDep, principal: CurrentPrincipal
                          ) -> PreferencesRead:
    quiet = (body.quiet_hours.start, body.quiet_hours.end) if body.quiet_hours else None
    return _prefs(await service.put_preferences(session, principal.subject, channels={k: [str(c) for c in v] for k, v in body.channels.items()},
                                                quiet_hours=quiet, phone=body.phone))


class _Stream(StreamingResponse):
    """Releases the person's stream slot however the response ends (finished, client gone, cancelled)."""

    def __init__(self, body: AsyncIterator[str], release: Callable[[], Awaitable[None]]) -> None:
        super().__init__(body, media_type="text/event-stream", headers={
            "Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no", "Connection": "keep-alive"})
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()


class StreamHub:
    """Wakes every open stream after a commit that wrote feed rows (in this replica); streams also poll, so
    steps written by another replica arrive within `stream_poll_seconds`."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()

    def poke(self) -> None:
        ev, self.changed = self.changed, asyncio.Event()
        ev.set()

    async def wait(self, timeout: float) -> None:
        ev = self.changed
        try:
            await asyncio.wait_for(ev.wait(), max(0.0, timeout))
        except TimeoutError:
            pass


def hub_of(request: Request) -> StreamHub:
    hub = getattr(request.app.state, "stream_hub", None)
    if hub is None:
        hub = request.app.state.stream_hub = StreamHub()
    return hub


@router.get(
    "/stream", summary="Live progress of my cases (Server-Sent Events)",
    response_class=StreamingResponse,
    description="`text/event-stream` of the steps of the signed-in person's (or organisation's) applications as "
                "they happen: `submitted`, `accepted`, `returned`, `task_assigned`, `task_request_correction`, "
                "`task_approve`, `decided`, `payment_due`, `ready_for_collection`, `delivered`, … Each event's "
                "`id` is a position: reconnect with `Last-Event-ID` (header, or `last_event_id`) to receive what "
                "was missed; without it the stream starts at the present, `0` replays from the start. A comment "
                "line (`: heartbeat`) comes every 15 s; a connection ends after 30 minutes or when the token "
                "expires (event `bye`), and a client reconnects with a fresh token. At most 3 streams per person "
                "(429 beyond). Authorised by the bearer token, so browsers read it with `fetch` (see the README).",
    responses={200: {"content": {"text/event-stream": {"example": 'id: 42\nevent: accepted\ndata: {"application_id'
                                                                  '": "…", "step": "accepted", "title": "已受理"}\n\n'}}},
               **problem_responses(401, 422, 429)})
async def stream(request: Request, principal: CurrentPrincipal,
                 last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
                 last_event_id: Annotated[int | None, Query(ge=0, le=MAX_ID,
                                                            description="Same as the Last-Event-ID header.")] = None) -> StreamingResponse:
    cfg = service.current_config()
    after: int | None = last_event_id
    if last_event_id_header is not None:
        if not last_event_id_header.strip().isdigit() or int(last_event_id_header.strip()) > MAX_ID:
            raise invalid("header.Last-Event-ID", "integer", "Last-Event-ID is the id of an event this stream sent.")
        after = int(last_event_id_header.strip())
    db: Database = request.app.state.db
    persons, organisations = service.audiences_of(principal)
    if after is None:
        async with db.transaction() as s:
            after = await service.feed_head(s)
    hub = hub_of(request)
    # Counted across every replica of notify (shared/ratelimit.py): a person's streams may land on any of them.
    leases = leases_for(request.app.state, "streams", cfg.stream_max_per_person, ttl_seconds=STREAM_LEASE_SECONDS)
    lease = await leases.acquire(principal.subject)
    if lease is None:
        raise TooManyRequests(f"At most {cfg.stream_max_per_person} live streams per person; close one first.")

    async def release() -> None:
        await leases.release(principal.subject, lease)

    async def renew() -> None:
        await leases.renew(principal.subject, lease)

    exp = principal.claims.get("exp")
    lifetime = cfg.stream_max_seconds
    if isinstance(exp, int | float):
        lifetime = max(1.0, min(lifetime, exp - time.time()))
    return _Stream(_events(db, hub, persons, organisations, after, lifetime, renew), release)


async def _events(db: Database, hub: StreamHub, persons: list[str], organisations: list[str], after: int,
                  lifetime: float, renew: Callable[[], Awaitable[None]]) -> AsyncIterator[str]:
    cfg = service.current_config()
    loop = asyncio.get_running_loop()
    end = loop.time() + lifetime
    beat = loop.time() + cfg.stream_heartbeat_seconds
    renew_at = loop.time() + STREAM_LEASE_SECONDS / 3
    yield "retry: 3000\n\n"
    while True:
        try:
            async with db.transaction() as s:
                rows = await service.feed_after(s, persons, organisations, after)
        except Exception as exc:  # the database went away: end cleanly; the client resumes from `after`
            log.warning("notify stream: %r; closing it", exc)
            yield f"event: bye\ndata: {json.dumps({'reconnect_with_last_event_id': after})}\n\n"
            return
        for r in rows:
            after = r.seq
            yield f"id: {r.seq}\nevent: {r.step}\ndata: {json.dumps(_plain(r.data), ensure_ascii=False)}\n\n"
        if len(rows) == 100:
            continue
        now = loop.time()
        if now >= end:
            yield f"event: bye\ndata: {json.dumps({'reconnect_with_last_event_id': after})}\n\n"
            return
        if now >= beat:
            yield ": heartbeat\n\n"
            beat = now + cfg.stream_heartbeat_seconds
        if now >= renew_at:
            await renew()
            renew_at = now + STREAM_LEASE_SECONDS / 3
        await hub.wait(min(cfg.stream_poll_seconds, beat - now, end - now))


def _plain(data: Any) -> Any:
    return data if isinstance(data, dict) else json.loads(data)
