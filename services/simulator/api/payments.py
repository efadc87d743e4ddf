"""The payment platform (统一公共支付平台) as the simulator plays it: the applicant pays a payment notice by its
code, and the platform confirms to intake with a signed notification (Standard Webhooks, the shared
`YIMEN_PAYMENT_WEBHOOK_SECRET`). It knows no bills: intake checks the code and the amount."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.simulator.config import SimulatorSettings
from services.simulator.domain.webhooks import sign
from shared.errors import NotFound, Problem
from shared.http_errors import problem_responses

router = APIRouter(tags=["payment platform"])


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"payment_code": "44171234567890123456", "amount": "20.00"}]})

    payment_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{20}$")]
    amount: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}(\.[0-9]{1,2})?$")] = Field(
        description="Yuan, as the payment notice states it.")


class PaymentRead(BaseModel):
    transaction_id: str
    webhook_id: str
    payment_code: str
    amount: str
    paid_at: datetime
    notified: Literal["confirmed", "refused", "failed"]
    intake_status: int | None = Field(description="What intake answered the last notification.")
    intake_answer: dict[str, Any] | None = None


def _payments(request: Request) -> dict[str, PaymentRead]:
    store = getattr(request.app.state, "payments", None)
    if store is None:
        store = request.app.state.payments = {}
    return store


async def _notify(request: Request, payment: PaymentRead) -> PaymentRead:
    """Send (or send again) the signed confirmation under the payment's one `webhook-id`, retrying outages: a
    retry is signed afresh, and intake applies the payment once whatever it receives."""
    settings: SimulatorSettings = request.app.state.settings
    if not settings.payment_secret:
        raise Problem("The payment platform has no signing secret (YIMEN_PAYMENT_WEBHOOK_SECRET).", status=503,
                      slug="payments-not-configured", title="Service unavailable")
    http: httpx.AsyncClient = request.app.state.simulator.http
    body = PaymentBody(payment_code=payment.payment_code, amount=payment.amount, paid_at=payment.paid_at,
                       transaction_id=payment.transaction_id).model_dump_json().encode()
    url = settings.intake_base() + settings.paths.payment_notification
    for attempt in range(5):
        headers = sign(settings.payment_secret, payment.webhook_id, int(time.time()), body)
        try:
            r = await http.post(url, content=body, headers={**headers, "content-type": "application/json"})
        except httpx.HTTPError:
            await asyncio.sleep(0.5 * (attempt + 1))
            continue
        if r.status_code >= 500:
            await asyncio.sleep(0.5 * (attempt + 1))
            continue
        payment.intake_status = r.status_code
        payment.intake_answer = r.json() if r.headers.get("content-type", "").endswith("json") else None
        payment.notified = "confirmed" if r.status_code == 200 else "refused"
        return payment
    payment.notified = "failed"
    return payment


class PaymentBody(BaseModel):
    payment_code: str
    amount: str
    paid_at: datetime
    transaction_id: str


@router.post(
    "/payments", response_model=PaymentRead, status_code=201,
    summary="Pay a payment notice (缴款) by its payment code; the platform confirms to intake at once",
    description="`notified` says what intake answered: `confirmed` (200), `refused` (4xx: an unknown code or "
                "another amount), or `failed` (intake unreachable after retries).",
    responses=problem_responses(422, 503),
)
async def pay(body: PaymentCreate, request: Request) -> PaymentRead:
    payment = PaymentRead(
        transaction_id="PAY-" + uuid.uuid4().hex[:16].upper(), webhook_id="msg_" + uuid.uuid4().hex,
        payment_code=body.payment_code, amount=body.amount, paid_at=datetime.now(UTC), notified="failed",
        intake_status=None)
    _payments(request)[payment.transaction_id] = payment
    return await _notify(request, payment)


@router.post(
    "/payments/{transaction_id}/notify-again", response_model=PaymentRead,
    summary="Send the confirmation again, as a platform retrying does (same webhook-id, signed afresh)",
    responses=problem_responses(404, 503),
)
async def notify_again(transaction_id: Annotated[str, Path(max_length=40)], request: Request) -> PaymentRead:
    payment = _payments(request).get(transaction_id)
    if payment is None:
        raise NotFound(f"No payment {transaction_id}.")
    return await _notify(request, payment)


@router.get("/payments", summary="Payments taken, newest first")
async def list_payments(request: Request) -> list[PaymentRead]:
    return list(reversed(_payments(request).values()))
