"""At the counter and after: the receipt slip (受理回执), where the result goes (出件: 异地领取, 邮寄), what waits
at a service point, and fees (收费) with the payment platform's signed confirmations."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook, WebhookVerificationError

from services.intake import cases
from services.intake.api import deps
from services.intake.api import schemas as s
from services.intake.config import IntakeConfig
from services.intake.domain import delivery, fees, slip
from services.intake.store import repository as repo
from services.intake.store.tables import Application, PaymentNotice
from shared.auth import ADMIN, SUPERVISOR, WINDOW_CLERK, CurrentPrincipal, Principal
from shared.db import Database, SessionDep
from shared.errors import Conflict, FieldError, Forbidden, Unauthorized, ValidationProblem
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep, paginate
from shared.types import utcnow

log = logging.getLogger("yimen.intake.counter")
router = APIRouter(tags=["counter"])

PointCode = Annotated[str, Path(pattern=r"^[0-9A-Za-z][0-9A-Za-z_.\-]{0,63}$", description="A service point code.")]


# --- the receipt slip (受理回执) ----------------------------------------------------------------------------------


async def _slip(session: AsyncSession, principal: Principal, app: Application, status_url: str) -> slip.Slip:
    if app.accepted_at is None or not app.receipt_number:
        raise Conflict("The application has not been accepted; a receipt slip is printed at acceptance.",
                       slug="not-accepted", status_now=app.status)
    item = await cases.item_of(session, app)
    p = item.payload
    accepted_on = app.accepted_at.astimezone(cases.CITY_TZ).date()
    immediate = p.get("case_kind") == "immediate"
    promised, promised_text = slip.promised_on(accepted_on, p.get("promised_limit"), cases.CALENDAR, immediate)
    # The clerk prints the slip for the applicant at the counter: both see the code; other staff do not.
    shows_code = deps.is_applicant(principal, app) or principal.has(WINDOW_CLERK)
    granted = app.fee_exemption if app.fee_exemption_state in ("claimed", "granted") else None
    names = await repo.department_names(session, [app.department])
    contacts = [f"{c.get('channel')}: {c.get('value')}" for c in ((p.get("guide") or {}).get("consultation") or [])
                if isinstance(c, dict)]
    by = app.first_responder or {}
    walk = await repo.walk_in(session, app.id) if app.channel == "window" else None
    # The claim code is printed for the person at the counter, as the verification code is.
    claim = walk.claim_code if walk and shows_code else None
    steps = slip.next_steps(p, delivery_method=app.delivery_method,
                            delivery_point_name=delivery.point_name(p, app.delivery_point) or app.delivery_point,
                            status_url=status_url, owes_fee=fees.bill(p, granted).due)
    return slip.Slip(
        receipt_number=app.receipt_number, verification_code=app.verification_code if shows_code else None,
        item_name=app.item_name, item_code=app.item_code, applicant_name=app.applicant_name,
        handed_in_at=delivery.point_name(p, app.service_point) or app.service_point,
        accepted_on=accepted_on, promised_on=promised, promised_text=promised_text,
        next_steps=[*steps, slip.CLAIM_STEP] if claim else steps,
        contacts=contacts,
        accepted_by=" ".join(x for x in (by.get("name"), names.get(app.department) if not by.get("unit") else by.get("unit"))
                             if x) or None,
        filed_by=(walk.clerk_name or walk.clerk_id) if walk else None, claim_code=claim,
        claim_until=walk.claim_expires_at.astimezone(cases.CITY_TZ).date() if claim and walk and walk.claim_expires_at
        else None,
    )


@router.get(
    "/applications/{application_id}/receipt-slip",
    summary="The receipt slip (受理回执) to print: HTML, or PDF with `Accept: application/pdf`",
    description="For any accepted application: receipt number, verification code (to the applicant and window "
                "clerks only), what happens next, and the promised date (承诺办结日期, in working days). 409 before "
                "acceptance.",
    response_class=Response,
    responses={200: {"content": {"text/html": {}, "application/pdf": {}}}, **problem_responses(401, 404, 409)},
)
async def receipt_slip(application_id: s.ApplicationId, request: Request, session: SessionDep,
                       principal: CurrentPrincipal,
                       accept: Annotated[str | None, Header(max_length=500)] = None) -> Response:
    app = await deps.load_visible(session, principal, application_id)
    status_url = f"/intake/v1/status/{app.receipt_number}?code=<验证码>"
    content = await _slip(session, principal, app, status_url)
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if accept and "application/pdf" in accept:
        pdf = slip.render_pdf(content, printed_at=utcnow().astimezone(cases.CITY_TZ))
        headers["Content-Disposition"] = f'inline; filename="receipt-{content.receipt_number}.pdf"'
        return Response(pdf, media_type="application/pdf", headers=headers)
    return Response(slip.render_html(content), media_type="text/html; charset=utf-8", headers=headers)


# --- where the result goes (出件) ----------------------------------------------------------------------------------


@router.put(
    "/applications/{application_id}/delivery", response_model=s.ApplicationRead,
    summary="Change where the result goes, until it is ready (electronic, pick-up at a point, or post)",
    description="`pickup` takes any point the item's guide lists under `collect_at` (异地领取); `post` needs "
                "the address. Once the result is ready (`awaiting_pickup`) or delivered: 409 `delivery-fixed`.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def change_delivery(application_id: s.ApplicationId, body: s.Delivery, session: SessionDep,
                          principal: CurrentPrincipal) -> s.ApplicationRead:
    app = await deps.load_as_applicant(session, principal, application_id, for_update=True, filing_clerk=True)
    item = await cases.item_of(session, app)
    point = (body.service_point or app.service_point) if body.method == "pickup" else None
    await cases.change_delivery(session, app, item, method=body.method, point=point, address=body.address)
    return await deps.application_read(session, app, principal)


def _staff_of_point(principal: Principal, code: str) -> None:
    if principal.kind != "staff":
        raise Forbidden("Only staff see a point's collections.")
    if principal.has(ADMIN, SUPERVISOR):
        return
    if not principal.has(WINDOW_CLERK) or principal.service_point != code:
        raise Forbidden("A window clerk sees the collections of their own point (from the staff record) only.")


@router.get(
    "/points/{code}/collections", response_model=Page[s.CollectionRead],
    summary="Results waiting at a service point: to hand to the applicant, or to post (出件)",
    description="For the window clerks of that point (their point comes from their staff record) and "
                "supervisors. A result collected at a point other than where it was handed in (异地领取) is here too.",
    responses=problem_responses(401, 403, 422),
)
async def point_collections(code: PointCode, session: SessionDep, principal: CurrentPrincipal,
                            page: PageDep) -> Page[s.CollectionRead]:
    _staff_of_point(principal, code)
    rows, cursor = await paginate(
        session, repo.collections_query(code), key_columns=[Application.created_at, Application.id], params=page,
        key_of=deps.created_key, parse_key=deps.parse_created_key,
    )
    return Page[s.CollectionRead](items=[s.CollectionRead(
        application_id=a.id, receipt_number=a.receipt_number, item_name=a.item_name, applicant_name=a.applicant_name,
        method=a.delivery_method, service_point=a.delivery_point or a.service_point,  # type: ignore[arg-type]
        handed_in_at=a.service_point, result=a.result, ready_at=a.ready_at) for a in rows], next_cursor=cursor)


# --- fees (收费) ---------------------------------------------------------------------------------------------------


@router.get(
    "/payments/unpaid", response_model=Page[s.UnpaidRead],
    summary="Unpaid payment notices of the cases a clerk handles (their point's and their department's)",
    responses=problem_responses(401, 403, 422),
)
async def unpaid(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Page[s.UnpaidRead]:
    if principal.kind != "staff" or not principal.has(WINDOW_CLERK, ADMIN, SUPERVISOR):
        raise Forbidden("Only window clerks and supervisors see unpaid cases.")
    everything = principal.has(ADMIN, SUPERVISOR)
    if not everything and not (principal.service_point or principal.department):
        return Page[s.UnpaidRead](items=[])
    stmt = repo.unpaid_query(service_point=None if everything else principal.service_point,
                             department=None if everything else principal.department)
    notices, cursor = await paginate(session, stmt, key_columns=[PaymentNotice.id], params=page,
                                     key_of=lambda r: [r.id], parse_key=deps.parse_id_key)
    apps = await repo.applications_by_id(session, [n.application_id for n in notices])
    today = utcnow().astimezone(cases.CITY_TZ).date()
    return Page[s.UnpaidRead](items=[s.UnpaidRead(
        application_id=n.application_id, receipt_number=apps[n.application_id].receipt_number,
        item_name=apps[n.application_id].item_name, applicant_name=apps[n.application_id].applicant_name,
        service_point=apps[n.application_id].service_point, payment_code=n.payment_code, amount=n.amount,
        due_on=n.due_on, overdue=n.due_on < today, requested_at=n.requested_at) for n in notices], next_cursor=cursor)


def _config(request: Request) -> IntakeConfig:
    return request.app.state.ctx.extras["config"]


@router.post(
    "/payments/notifications", response_model=s.PaymentNotificationAck,
    summary="The payment platform confirms a payment (signed per Standard Webhooks; no bearer token)",
    description="Headers `webhook-id`, `webhook-timestamp`, `webhook-signature` (HMAC-SHA256 with the shared "
                "`whsec_…` secret). A missing or wrong signature, or a timestamp more than 5 minutes off: 401, "
                "nothing applied. A `webhook-id` seen before: 200 `duplicate`, nothing applied again. An unknown "
                "payment code or another amount: 422. The application then goes on to its hand-over.",
    responses=problem_responses(401, 422),
)
async def payment_notification(request: Request) -> Any:
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
        errs = getattr(exc, "errors", lambda: [])()
        raise ValidationProblem([FieldError(field="body." + ".".join(str(p) for p in e["loc"]), rule=str(e["type"]),
                                            message=e["msg"]) for e in errs] or
                                [FieldError(field="body", rule="json", message="The body is not JSON.")]) from exc
    db: Database = request.app.state.db
    async with db.transaction() as session:
        webhook_id = headers["webhook-id"][:100]
        if not await repo.record_payment_notification(session, webhook_id=webhook_id,
                                                      payment_code=body.payment_code, outcome="received"):
            return s.PaymentNotificationAck(status="duplicate")
        try:
            outcome = await cases.confirm_payment(session, payment_code=body.payment_code, amount=body.amount,
                                                  paid_at=body.paid_at, transaction_id=body.transaction_id)
        except cases.PaymentRefused as exc:
            raise ValidationProblem([FieldError(field="body.payment_code" if exc.rule == "unknown_payment_code"
                                                else "body.amount", rule=exc.rule, message=str(exc))]) from exc
        await repo.settle_payment_notification(session, webhook_id, outcome)
    return s.PaymentNotificationAck(status=outcome)  # type: ignore[arg-type]
