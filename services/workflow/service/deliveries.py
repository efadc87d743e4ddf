"""Department webhooks (Standard Webhooks) and their deliveries: registering an endpoint, queueing a delivery
with the change it announces, reading the delivery log, replaying what was missed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.domain.access import may_manage_webhook, sees_deliveries
from services.workflow.store import repository as repo
from services.workflow.store.tables import DepartmentWebhook, WebhookAttempt, WebhookDelivery
from services.workflow.webhooks import WEBHOOKS_QUEUED, check_endpoint, new_secret
from shared.errors import Conflict, Forbidden, NotFound
from shared.events import Event
from shared.pagination import PageParams, paginate
from shared.principal import Principal
from shared.types import utcnow


async def queue_webhook(session: AsyncSession, department: str, event: Event, *, task_id: str | None) -> None:
    """Write the delivery with the task (an outbox of deliveries). Without an enabled endpoint it is kept
    as `missed`, so the department can replay it once it registers or re-enables one."""
    await queue_webhooks(session, [(department, event, task_id)])


async def queue_webhooks(session: AsyncSession, deliveries: list[tuple[str, Event, str | None]]) -> None:
    """`queue_webhook` for several (department, event, task id) at once: one read of the endpoints, one insert."""
    if not deliveries:
        return
    rows = delivery_rows(deliveries)
    enabled = await repo.enabled_webhooks(session, {r["department"] for r in rows})
    await repo.add_deliveries(session, [{**r, "state": "pending" if r["department"] in enabled else "missed"}
                                        for r in rows])
    if enabled:
        session.info[WEBHOOKS_QUEUED] = True


def delivery_rows(deliveries: list[tuple[str, Event, str | None]], *,
                  claimed_until: datetime | None = None) -> list[dict[str, Any]]:
    """The delivery rows of (department, event, task id), but their state (which their endpoints decide); due now,
    or claimed until `claimed_until` (`webhooks.claim_at_write`)."""
    now = utcnow()
    return [dict(department=department, event_id=event.id, event_type=event.type, task_id=task_id,
                 payload=event.to_json().decode(), attempts=0, next_attempt_at=claimed_until or now, created_at=now)
            for department, event, task_id in deliveries]


def _check_manager(principal: Principal, department: str) -> None:
    if not may_manage_webhook(principal, department):
        raise Forbidden(f"Only department {department} or an admin manages its webhook.")


async def put_webhook(session: AsyncSession, principal: Principal, department: str, *, url: str, enabled: bool,
                      rotate_secret: bool, allow_private: bool) -> DepartmentWebhook:
    """Register, change, disable or re-enable a department's endpoint; disabling turns waiting deliveries into
    `missed` (replayable)."""
    _check_manager(principal, department)
    await check_endpoint(url, allow_private=allow_private)
    existing = await repo.get_webhook(session, department)
    secret = existing.secret if existing is not None and not rotate_secret else new_secret()
    hook = await repo.save_webhook(session, department=department, url=url, enabled=enabled, secret=secret,
                                   updated_at=utcnow(), updated_by=principal.subject)
    if not enabled:
        await repo.miss_pending(session, department)
    return hook


async def get_webhook(session: AsyncSession, principal: Principal, department: str) -> DepartmentWebhook:
    _check_manager(principal, department)
    hook = await repo.get_webhook(session, department)
    if hook is None:
        raise NotFound(f"Department {department} has no webhook.")
    return hook


@dataclass(frozen=True)
class DeliveryView:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


async def list_deliveries(session: AsyncSession, principal: Principal, department: str, *, state: str | None,
                          page: PageParams) -> tuple[list[DeliveryView], str | None]:
    """Newest first, each with every attempt."""
    if not sees_deliveries(principal, department):
        raise Forbidden(f"Only department {department}, supervisors and admins see its deliveries.")
    rows, cursor = await paginate(
        session, repo.delivery_list_query(department, state), key_columns=[WebhookDelivery.id], params=page,
        key_of=lambda d: [d.id], descending=True,
    )
    attempts = await repo.attempts_of(session, [d.id for d in rows])
    return [DeliveryView(d, attempts[d.id]) for d in rows], cursor


async def replay(session: AsyncSession, principal: Principal, department: str, *, since: datetime | None) -> int:
    """Queue missed and failed deliveries again; returns how many."""
    _check_manager(principal, department)
    hook = await repo.get_webhook(session, department)
    if hook is None or not hook.enabled:
        raise Conflict(f"Department {department} has no enabled webhook to replay to.")
    replayed = await repo.replay_deliveries(session, department, since=since, now=utcnow())
    if replayed:
        session.info[WEBHOOKS_QUEUED] = True
    return replayed
