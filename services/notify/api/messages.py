"""Messages and their delivery status, for their recipient and for operators; and the SMS gateway's delivery
receipts (回执), signed per Standard Webhooks with the secret shared with the gateway."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.notify import service
from services.notify.api.models import Channel, MessageRead, ReceiptIn, Status
from shared.auth import ADMIN, CurrentPrincipal, Principal, require_roles
from shared.db import SessionDep
from shared.errors import Unauthorized, invalid
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep
from shared.service import SIGNED

router = APIRouter(tags=["messages"])
Admin = Annotated[Principal, require_roles(ADMIN)]


@router.get("/messages/{message_id}", response_model=MessageRead, summary="One message and its status",
            description="Visible to its recipient (a person, an organisation's agent, the department's staff, the "
                        "supervisors) and to admins. The SMS number is masked.",
            responses=problem_responses(401, 404))
async def get_message(message_id: str, session: SessionDep, principal: CurrentPrincipal) -> MessageRead:
    return MessageRead.of(await service.get_message(session, principal, message_id))


@router.get("/messages", response_model=Page[MessageRead], summary="Messages, for operators",
            description="Admins only: every message, filtered by application, channel or status (e.g. "
                        "`status=failed` to see what the gateway refused and why).",
            responses=problem_responses(401, 403, 422))
async def list_messages(session: SessionDep, _: Admin, page: PageDep,
                        application_id: Annotated[str | None, Query(max_length=64)] = None,
                        channel: Annotated[Channel | None, Query()] = None,
                        status: Annotated[Status | None, Query()] = None) -> Page[MessageRead]:
    rows, nxt = await service.list_messages(session, application_id=application_id,
                                            channel=channel.value if channel else None,
                                            status=status.value if status else None,
                                            cursor=page.cursor, limit=page.limit)
    return Page[MessageRead](items=[MessageRead.of(r) for r in rows], next_cursor=nxt)


@router.post("/sms/receipts", status_code=204, summary="Delivery receipt from the SMS gateway",
             description="Called by the gateway, signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, "
                         "`webhook-signature`) with `YIMEN_NOTIFY_SMS_CALLBACK_SECRET`. Repeats are harmless; a "
                         "receipt never undoes a delivery.",
             responses=problem_responses(401, 404, 422),
             # Public (no bearer token): the Standard Webhooks signature authenticates the gateway. The body is read
             # raw to verify the signature, so its schema and the signature headers are declared here.
             openapi_extra={
                 **SIGNED["openapi_extra"],
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": ReceiptIn.model_json_schema()}}},
                 "parameters": [
                     {"name": name, "in": "header", "required": True, "schema": {"type": "string"},
                      "description": text}
                     for name, text in (("webhook-id", "The receipt's unique id."),
                                        ("webhook-timestamp", "Seconds since the epoch, when signed."),
                                        ("webhook-signature", "`v1,<base64 HMAC-SHA256>` with the shared secret."))
                 ]})
async def receipt(request: Request, session: SessionDep) -> None:
    raw = await request.body()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # a receipt is JSON, hence UTF-8; the signature check would choke on it
        raise invalid("body", "utf8", "The receipt must be UTF-8 encoded JSON.") from exc
    try:
        Webhook(service.current_config().sms_callback_secret).verify(raw, dict(request.headers))
    except WebhookVerificationError as exc:
        raise Unauthorized("The receipt's signature does not verify.", slug="invalid-signature") from exc
    try:
        body = ReceiptIn.model_validate_json(raw)
    except ValueError as exc:
        raise invalid("body", "receipt", "A receipt is {reference, id, status: delivered|failed, reason, at}.") from exc
    await service.record_receipt(session, reference=body.reference, gateway_id=body.id, status=body.status,
                                 reason=body.reason, at=body.at)
