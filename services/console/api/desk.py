"""The window clerk's desk (综合窗口): the point's queue waiting for acceptance with its acceptance clock;
accept (受理), not accept (不予受理) and return for correction (补正) with the one-time notice prefilled; results
waiting for collection at this point (出件); a case looked up by receipt number; walk-in filing (窗口代录) for the
person at the counter, with the receipt slip to print. Every action is the intake API a third-party front end
calls, with the clerk's own token."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from services.console.api.oversight import Csv, csv_response
from services.console.domain.acceptance import acceptance_clock
from services.console.domain.walkin import chinese, field_errors, still_missing, walk_in_body
from services.console.session import PATH
from services.console.upstream import Api, ApiError
from services.console.web import (
    api_for,
    check_form,
    finish,
    is_clerk,
    problem_text,
    redirect,
    render,
    settings_of,
)
from shared.auth import Principal

router = APIRouter(prefix="/desk")
CHINA = ZoneInfo("Asia/Shanghai")
AppId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_CALENDAR_DAYS = 366


class NotAClerk(Exception):
    pass


async def clerk(request: Request) -> tuple[Api, Principal]:
    api = api_for(request)
    me = await api.who()
    if not is_clerk(me):
        raise NotAClerk
    return api, me


def local_day(value: str) -> date:
    return datetime.fromisoformat(value).astimezone(CHINA).date()


async def working_days(api: Api, start: date, end: date) -> set[date]:
    """The working days in [start, end] from efficacy's calendar (holidays and 调休 included)."""
    start = max(start, end - timedelta(days=MAX_CALENDAR_DAYS))
    cal = await api.get("/efficacy/v1/calendar/workdays", **{"from": start.isoformat(), "to": end.isoformat()})
    return {date.fromisoformat(d["date"]) for d in cal["days"] if d["workday"]}


@router.get("", summary="The clerk's desk: the acceptance queue and results waiting for collection")
async def desk(request: Request, receipt: Annotated[str | None, Query(max_length=80, pattern=r"^[0-9A-Za-z]*$")] = None,
               done: Annotated[str | None, Query(pattern=r"^[a-z_]{1,20}$")] = None,
               format: Csv = None) -> Response:
    api, me = await clerk(request)
    today = datetime.now(CHINA).date()
    queue = await api.get_all("/intake/v1/queue", max_pages=5, status="submitted")
    limit = settings_of(request).acceptance_days
    submitted = [local_day(a["submitted_at"] or a["created_at"]) for a in queue]
    workdays = await working_days(api, min(submitted, default=today), today) if queue else set()
    rows = [(a, acceptance_clock(day, today, workdays, limit)) for a, day in zip(queue, submitted, strict=True)]
    rows.sort(key=lambda r: (r[1].remaining_workdays, r[0]["submitted_at"] or ""))
    if format == "csv":
        return csv_response(request, f"desk-queue-{today}",
                            ("receipt_number", "item_code", "item_name", "service_point", "submitted_at",
                             "waited_workdays", "remaining_workdays", "state"),
                            [[a["receipt_number"], a["item_code"], a["item_name"], a["service_point"],
                              a["submitted_at"], c.waited_workdays, c.remaining_workdays, c.state] for a, c in rows])
    collections: list[Any] = []
    if me.service_point:
        collections = await api.get_all(f"/intake/v1/points/{me.service_point}/collections", max_pages=5)
    found = None
    if receipt:
        found = await api.get_all("/intake/v1/queue", max_pages=1, receipt_number=receipt)
    return render(request, "desk.html", rows=rows, collections=collections, receipt=receipt, found=found,
                  limit=limit, done=done)


def prefilled_notice(app: dict[str, Any], item: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The one-time notice (一次性告知) a return starts from: every material of the item, ticked where nothing
    was given or where the latest notice already names it, with the message the applicant will read."""
    given = {m["material_code"] for m in app.get("materials", [])}
    named = {p["field"].removeprefix("materials."): p for p in app.get("notice", [])
             if p.get("field", "").startswith("materials.")}
    out = []
    for m in (item or {}).get("materials", []) or []:
        code, name = m.get("code"), m.get("name") or m.get("code")
        problem = named.get(code)
        out.append({"code": code, "name": name, "given": code in given,
                    "ticked": problem is not None or (code not in given and m.get("necessity", "required") == "required"),
                    "message": (problem or {}).get("message") or f"请补正“{name}”。"})
    for p in app.get("notice", []):
        if not p.get("field", "").startswith("materials."):
            out.append({"code": p["field"], "name": p["field"], "given": False, "ticked": True,
                        "message": p.get("message") or p["field"]})
    return out


@router.get("/applications/{application_id}", summary="One application at the window, with its actions")
async def application(request: Request, application_id: AppId) -> Response:
    api, _me = await clerk(request)
    app = await api.get(f"/intake/v1/applications/{application_id}")
    try:
        item = await api.get(f"/catalog/v1/items/{app['item_code']}")
    except ApiError:
        item = None
    return render(request, "desk_application.html", app=app, notice=prefilled_notice(app, item), error=None,
                  **labels(item))


def labels(item: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    """The item's names for its form fields and materials, so the clerk reads 申请人姓名, not applicant_name."""
    item = item or {}
    return {"field_names": {f["name"]: f.get("label") or f["name"] for f in item.get("form_fields") or []},
            "material_names": {m["code"]: m.get("name") or m["code"] for m in item.get("materials") or []}}


async def act(request: Request, application_id: str, path: str, body: dict[str, Any] | None, done: str) -> Response:
    api = api_for(request)
    try:
        app = await api.post(f"/intake/v1/applications/{application_id}/{path}", body)
    except ApiError as exc:
        if exc.status not in (403, 404, 409, 422):
            raise
        current = await api.get(f"/intake/v1/applications/{application_id}")
        try:
            item = await api.get(f"/catalog/v1/items/{current['item_code']}")
        except ApiError:
            item = None
        return render(request, "desk_application.html", status_code=exc.status, app=current,
                      notice=prefilled_notice(current, item), error=problem_text(exc), **labels(item))
    return redirect(request, f"{PATH}/desk?done={done}&receipt={app.get('receipt_number') or ''}")


@router.post("/applications/{application_id}/accept", summary="Accept (受理)")
async def accept(request: Request, application_id: AppId) -> Response:
    await clerk(request)
    form = await check_form(request)
    refuse = (form.get("refuse_fee_exemption") or "").strip()
    return await act(request, application_id, "accept", {"refuse_fee_exemption": refuse} if refuse else None,
                     "accepted")


@router.post("/applications/{application_id}/not-accept", summary="Not accept (不予受理), with reasons and legal basis")
async def not_accept(request: Request, application_id: AppId) -> Response:
    await clerk(request)
    form = await check_form(request)
    return await act(request, application_id, "not-accept",
                     {"reasons": form.get("reasons", ""), "legal_basis": form.get("legal_basis", "")}, "not_accepted")


@router.post("/applications/{application_id}/return", summary="Return for correction (补正) with the one-time notice")
async def return_for_correction(request: Request, application_id: AppId) -> Response:
    await clerk(request)
    form = await check_form(request)
    missing = []
    for key, value in form.items():
        if key.startswith("m.") and value == "on":
            code = key[2:]
            message = (form.get(f"msg.{code}") or "").strip() or f"请补正“{code}”。"
            field = code if "." in code else f"materials.{code}"
            missing.append({"field": field[:200], "rule": "correction_required", "message": message[:1000]})
    return await act(request, application_id, "return",
                     {"reasons": form.get("reasons", ""), "missing": missing}, "returned")


@router.post("/applications/{application_id}/deliver", summary="Hand over a result collected at this point (出件)")
async def deliver(request: Request, application_id: AppId) -> Response:
    await clerk(request)
    await check_form(request)
    return await act(request, application_id, "deliver", {"method": "pickup"}, "delivered")


# ---- 窗口代录: filing for the person at the counter ------------------------------------------------------------
async def items_at_point(api: Api, point: str | None) -> list[dict[str, Any]]:
    """The items the clerk's point accepts (catalog's service point), by name."""
    if not point:
        return []
    try:
        codes = set((await api.get(f"/catalog/v1/service-points/{point}")).get("items") or [])
    except ApiError as exc:
        if exc.status != 404:
            raise
        return []
    items = await api.get_all("/catalog/v1/items", max_pages=5)
    return sorted((i for i in items if i.get("code") in codes), key=lambda i: i.get("name") or "")


async def walk_in_page(request: Request, api: Api, me: Principal, *, item_code: str | None,
                       posted: dict[str, str] | None = None, errors: dict[str, list[str]] | None = None,
                       status_code: int = 200) -> Response:
    offered = await items_at_point(api, me.service_point)
    chosen = next((i for i in offered if i["code"] == item_code), offered[0] if offered else None)
    item = await api.get(f"/catalog/v1/items/{chosen['code']}") if chosen else None
    return render(request, "desk_walk_in.html", status_code=status_code, offered=offered, item=item,
                  posted=posted or {}, errors=errors or {}, key=uuid.uuid4().hex, result=None)


ItemCode = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")]


@router.get("/walk-in", summary="窗口代录: the form a clerk files for the person at the counter with")
async def walk_in_form(request: Request, item: ItemCode = None) -> Response:
    api, me = await clerk(request)
    return await walk_in_page(request, api, me, item_code=item)


@router.post("/walk-in", summary="File the walk-in, record the consent, submit and accept (窗口代录)")
async def walk_in(request: Request) -> Response:
    api, me = await clerk(request)
    posted = await check_form(request)
    code = posted.get("item_code") or ""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", code):
        return await walk_in_page(request, api, me, item_code=None, posted=posted, status_code=422,
                                  errors={"item_code": ["请选择事项。"]})
    reference = (posted.get("consent") or "").strip()
    if not reference:
        return await walk_in_page(request, api, me, item_code=code, posted=posted, status_code=422,
                                  errors={"consent": ["请登记申请人在签字板上签名的记录编号。"]})
    try:
        item = await api.get(f"/catalog/v1/items/{code}")
    except ApiError:
        return await walk_in_page(request, api, me, item_code=None, posted=posted, status_code=422,
                                  errors={"item_code": ["本窗口不办理该事项。"]})
    body = walk_in_body(posted, item.get("form_fields") or [], me.service_point)
    key = re.sub(r"[^A-Za-z0-9-]", "", posted.get("key") or "")[:64] or uuid.uuid4().hex
    try:
        filed = await api.post("/intake/v1/walk-ins", body, headers={"Idempotency-Key": f"desk-{key}"})
    except ApiError as exc:
        if exc.status not in (403, 409, 422, 503):
            raise
        errors = field_errors(exc.errors) or {"": [chinese({"message": exc.problem.get("detail"), "rule": ""})]}
        return await walk_in_page(request, api, me, item_code=code, posted=posted, errors=errors,
                                  status_code=exc.status)
    app, person = filed["application"], filed["person"]
    url = f"/intake/v1/applications/{app['id']}"
    result: dict[str, Any] = {"app": app, "person": person, "missing": [], "error": None}
    try:
        current = await api.get(url)
        if current["status"] != "draft":
            # The same form sent again (a refresh, a double click): intake answered it from its Idempotency-Key
            # with the first filing, which has gone on since; show where it is rather than act twice.
            result["app"] = current
        else:
            result["missing"] = still_missing(await api.post(f"{url}/check"))
            if not result["missing"]:
                await api.post(f"{url}/consent", {"kind": "signature_capture", "reference": reference})
                await api.post(f"{url}/submit")
                result["app"] = await api.post(f"{url}/accept")
    except ApiError as exc:
        if exc.status not in (403, 409, 422):
            raise
        result["error"] = [chinese(e) for e in exc.errors] or [chinese({"message": exc.problem.get("detail")})]
        result["app"] = await api.get(url)
    return render(request, "desk_walk_in.html", offered=[], item=item, posted={}, errors={}, key="",
                  result=result, **labels(item))


@router.get("/applications/{application_id}/receipt-slip", summary="The receipt slip to print (受理回执), HTML or PDF")
async def receipt_slip(request: Request, application_id: AppId,
                       format: Annotated[str | None, Query(pattern=r"^(html|pdf)$")] = None) -> Response:
    api, _me = await clerk(request)
    pdf = format == "pdf"
    r = await api.request("GET", f"/intake/v1/applications/{application_id}/receipt-slip", raw=True,
                          accept="application/pdf" if pdf else "text/html")
    response = Response(r.content, media_type="application/pdf" if pdf else "text/html; charset=utf-8")
    if pdf:
        response.headers["Content-Disposition"] = f'inline; filename="receipt-slip-{application_id}.pdf"'
    else:
        # The slip is intake's own printable page with its inline styles; still no script, frame or form.
        response.headers["Content-Security-Policy"] = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                                       "frame-ancestors 'none'; form-action 'none'; base-uri 'none'")
    return finish(request, response)
