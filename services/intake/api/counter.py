"""At the counter and after: the receipt slip (受理回执), where the result goes (出件: 异地领取, 邮寄), what waits
at a service point, and fees (收费) with the payment platform's signed confirmations."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response
from standardwebhooks import Webhook, WebhookVerificationError

from services.intake import service
from services.intake.api import deps
from services.intake.api import schemas as s
from services.intake.api.applications import body_problems
from services.intake.api.openapi import responses
from services.intake.config import IntakeConfig
from services.intake.domain import slip
from shared.auth import CurrentPrincipal
from shared.db import Database, SessionDep
from shared.errors import FieldError, Unauthorized, ValidationProblem
from shared.pagination import Page, PageDep

log = logging.getLogger("yimen.intake.counter")
router = APIRouter(tags=["counter"])

PointCode = Annotated[str, Path(pattern=r"^[0-9A-Za-z][0-9A-Za-z_.\-]{0,63}$", description="A service point code.")]


@router.get(
    "/applications/{application_id}/receipt-slip",
    summary="The receipt slip (受理回执) to print: HTML, or PDF with `Accept: application/pdf`",
    description="For any accepted application: receipt number, verification code (to the applicant and window "
                "clerks only), what happens next, and the promised date (承诺办结日期, in working days). 409 before "
                "acceptance.",
    response_class=Response,
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}},
                                 "application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
               **responses(200, 401, 404, 409)},
)
async def receipt_slip(application_id: s.ApplicationId, session: SessionDep, principal: CurrentPrincipal,
                       accept: Annotated[str | None, Header(max_length=500)] = None) -> Response:
    content = await service.counter.receipt_slip(session, principal, application_id)
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if accept and "application/pdf" in accept:
        pdf = slip.render_pdf(content, printed_at=service.counter.printed_at())
        headers["Content-Disposition"] = f'inline; filename="receipt-{content.receipt_number}.pdf"'
        return Response(pdf, media_type="application/pdf", headers=headers)
    return Response(slip.render_html(content), media_type="text/html; charset=utf-8", headers=headers)


@router.put(
    "/applications/{application_id}/delivery", response_model=s.ApplicationRead,
    summary="Change where the result goes, until it is ready (electronic, pick-up at a point, or post)",
    description="`pickup` takes any point the item's guide lists under `collect_at` (异地领取); `post` needs "
                "the address. Once the result is ready (`awaiting_pickup`) or delivered: 409 `delivery-fixed`.",
    responses=responses(200, 401, 403, 404, 409, 422),
)
async def change_delivery(application_id: s.ApplicationId, body: s.Delivery, session: SessionDep,
                          principal: CurrentPrincipal) -> s.ApplicationRead:
    return deps.application_read(await service.change_delivery(
        session, principal, application_id, method=body.method, point=body.service_point, address=body.address))


@router.get(
    "/points/{code}/collections", response_model=Page[s.CollectionRead],
    summary="Results waiting at a service point: to hand to the applicant, or to post (出件)",
    description="For the window clerks of that point (their point comes from their staff record) and "
                "supervisors. A result collected at a point other than where it was handed in (异地领取) is here too.",
    responses=responses(200, 401, 403, 422),
)
async def point_collections(code: PointCode, session: SessionDep, principal: CurrentPrincipal,
                            page: PageDep) -> Page[s.CollectionRead]:
    rows, cursor = await service.counter.collections(session, principal, code, page)
    return Page[s.CollectionRead](items=[s.CollectionRead(
        application_id=a.id, receipt_number=a.receipt_number, item_name=a.item_name, applicant_name=a.applicant_name,
        method=a.delivery_method, service_point=a.delivery_point or a.service_point,
        handed_in_at=a.service_point, result=a.result, ready_at=a.ready_at) for a in rows], next_cursor=cursor)


@router.get(
    "/payments/unpaid", response_model=Page[s.UnpaidRead],
    summary="Unpaid payment notices of the cases a clerk handles (their point's and their department's)",
    responses=responses(200, 401, 403, 422),
)
async def unpaid(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Page[s.UnpaidRead]:
    rows, cursor = await service.counter.unpaid(session, principal, page)
    return Page[s.UnpaidRead](items=[s.UnpaidRead(
        application_id=u.application.id, receipt_number=u.application.receipt_number,
        item_name=u.application.item_name, applicant_name=u.application.applicant_name,
        service_point=u.application.service_point, payment_code=u.notice.payment_code, amount=u.notice.amount,
        due_on=u.notice.due_on, overdue=u.overdue, requested_at=u.notice.requested_at) for u in rows],
        next_cursor=cursor)


def _config(request: Request) -> IntakeConfig:
    return request.app.state.ctx.extras["config"]


@router.post(
    "/payments/notifications", response_model=s.PaymentNotificationAck,
    summary="The payment platform confirms a payment (signed per Standard Webhooks; no bearer token)",
    description="Headers `webhook-id`, `webhook-timestamp`, `webhook-signature` (HMAC-SHA256 with the shared "
                "`whsec_…` secret). A missing or wrong signature, or a timestamp more than 5 minutes off: 401, "
                "nothing applied. A `webhook-id` seen before: 200 `duplicate`, nothing applied again. An unknown "
                "payment code or another amount: 422. The application then goes on to its hand-over.",
    responses=responses(200, 401, 422),
    # The body is read raw (its signature covers the bytes); its schema is documented without an example, since
    # only the payment platform can sign one.
    openapi_extra={"x-yimen-signed": True, "requestBody": {"required": True, "content": {"application/json": {
        "schema": {k: v for k, v in s.PaymentNotificationIn.model_json_schema().items() if k != "examples"}}}}},
)
async def payment_notification(request: Request) -> s.PaymentNotificationAck:
    secret = _config(request).payment_webhook_secret
    if not secret:
        # Nothing can verify a signature, so no notification is authentic (and none is applied).
        raise Unauthorized("No payment platform is configured (YIMEN_PAYMENT_WEBHOOK_SECRET): nothing can be "
                           "verified.", slug="bad-signature")
    raw = await request.body()
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    try:
        Webhook(secret).verify(raw, headers)
    except WebhookVerificationError as exc:
        log.warning("payment notification refused: %s", exc)
        raise Unauthorized(f"The notification's signature does not verify: {exc}.", slug="bad-signature") from exc
    try:
        body = s.PaymentNotificationIn.model_validate_json(raw)
    except ValueError as exc:
        if hasattr(exc, "errors") and exc.errors():
            raise body_problems(exc, "body.") from exc  # type: ignore[arg-type]
        raise ValidationProblem([FieldError(field="body", rule="json", message="The body is not JSON.")]) from exc
    db: Database = request.app.state.db
    async with db.transaction() as session:
        outcome = await service.counter.payment_notified(
            session, webhook_id=headers["webhook-id"], payment_code=body.payment_code, amount=body.amount,
            paid_at=body.paid_at, transaction_id=body.transaction_id)
    return s.PaymentNotificationAck(status=outcome)  # type: ignore[arg-type]
