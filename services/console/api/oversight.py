"""The supervisors' console (实时电子监察): the league table, the reform's figures against the plan, the
supervision queue (督办), one case in full, and ratings (好差评). Supervisors see the city; a department's
staff see their own department (the APIs enforce it; the pages only choose what to ask)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from services.console.domain import charts
from services.console.domain.kpis import series, series_csv_rows
from services.console.domain.league import LEAGUE_COLUMNS, league, league_csv_rows
from services.console.domain.periods import last_days, last_months
from services.console.domain.tables import to_csv
from services.console.session import PATH
from services.console.upstream import Api, ApiError
from services.console.web import (
    api_for,
    check_form,
    finish,
    is_clerk,
    is_overseer,
    may_supervise,
    problem_text,
    redirect,
    render,
    settings_of,
)
from shared.auth import Principal

router = APIRouter()
CHINA = ZoneInfo("Asia/Shanghai")
Code = Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_.-]*$")]
ItemCode = Annotated[str | None, Query(max_length=80, pattern=r"^[A-Za-z0-9_.-]*$")]
Csv = Annotated[str | None, Query(pattern="^csv$", description="`csv` downloads what the view shows.")]


class NotForYou(Exception):
    pass


async def overseer(request: Request) -> tuple[Api, Principal, str | None]:
    """The API client, the principal, and the department the pages are limited to (None: the city)."""
    api = api_for(request)
    me = await api.who()
    if not may_supervise(me):
        raise NotForYou
    return api, me, None if is_overseer(me) else me.department


def csv_response(request: Request, name: str, header: tuple[str, ...] | list[str], rows: list[list[Any]]) -> Response:
    return finish(request, Response(to_csv(header, rows), media_type="text/csv; charset=utf-8",
                                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'}))


async def department_names(api: Api) -> dict[str, str]:
    try:
        return {d["code"]: d["name"] for d in await api.get("/catalog/v1/departments")}
    except ApiError:
        return {}


def today() -> date:
    return datetime.now(CHINA).date()


@router.get("/", summary="The league table and the reform's figures")
async def home(request: Request, format: Csv = None) -> Response:
    try:
        api, me, scope = await overseer(request)
    except NotForYou:
        me = api_for(request).principal
        if me and is_clerk(me):
            return redirect(request, f"{PATH}/desk")
        raise
    dashboard, forecast, names = await asyncio.gather(
        api.get("/efficacy/v1/dashboard"), api.get("/efficacy/v1/cards", colour="red"), department_names(api))
    rows = league(dashboard, forecast["items"], names)
    if format == "csv":
        return csv_response(request, f"league-{today()}", LEAGUE_COLUMNS, league_csv_rows(rows))
    cfg = settings_of(request)
    days, months = last_days(today(), cfg.chart_days), last_months(today(), cfg.chart_months)
    day_series, month_series = await kpi_series(api, days, scope), await kpi_series(api, months, scope)
    bars = charts.bar_chart("各部门未销红牌数", [r.name for r in rows[:8]], [r.open_red_cards for r in rows[:8]])
    return render(request, "home.html", rows=rows, totals=dashboard["totals"], scope=scope, names=names,
                  generated_at=dashboard["generated_at"], bars=bars,
                  figures=[(d, m, charts.share_chart(f"{d.name}（按日）", d.labels, d.values, d.target),
                            charts.share_chart(f"{m.name}（按月）", m.labels, m.values, m.target))
                           for d, m in zip(day_series, month_series, strict=True)])


async def kpi_series(api: Api, periods: list[Any], scope: str | None) -> list[Any]:
    # A few at a time: the charts must not crowd out the clerks' requests to efficacy.
    gate = asyncio.Semaphore(4)

    async def one(p: Any) -> Any:
        async with gate:
            return await api.get("/efficacy/v1/kpis", **{"from": p.start.isoformat(), "to": p.end.isoformat(),
                                                       "department": scope})
    return series(periods, await asyncio.gather(*(one(p) for p in periods)))


@router.get("/kpis.csv", summary="The reform's figures per day and per month, as CSV")
async def kpis_csv(request: Request) -> Response:
    api, _me, scope = await overseer(request)
    cfg = settings_of(request)
    rows: list[list[Any]] = []
    for periods in (last_days(today(), cfg.chart_days), last_months(today(), cfg.chart_months)):
        rows += series_csv_rows(await kpi_series(api, periods, scope), periods)
    return csv_response(request, f"kpis-{today()}", ("key", "name", "from", "to", "value", "target"), rows)


@router.get("/supervision", summary="The supervision queue (督办) with filters")
async def supervision(request: Request, state: Annotated[str | None, Query(pattern="^(open|answered|cleared)?$")] = "open",
                      kind: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]*$")] = None,
                      department: Code = None, cursor: Annotated[str | None, Query(max_length=500)] = None,
                      format: Csv = None) -> Response:
    api, _me, scope = await overseer(request)
    params = {"state": state, "kind": kind, "department": scope or department}
    if format == "csv":
        items = await api.get_all("/efficacy/v1/supervision", **params)
        return csv_response(request, f"supervision-{today()}",
                            ("id", "kind", "is_case", "department", "application_id", "state", "opened_at", "detail",
                             "answer", "answered_at"),
                            [[i["id"], i["kind"], i["is_case"], i["department"], i["application_id"], i["state"],
                              i["opened_at"], i["detail"], i["answer"], i["answered_at"]] for i in items])
    page, names = await asyncio.gather(api.get("/efficacy/v1/supervision", limit=50, cursor=cursor, **params),
                                       department_names(api))
    return render(request, "supervision.html", page=page, filters=params, names=names, scope=scope)


@router.post("/supervision/{item_id}/answer", summary="Answer a supervision item (the department concerned)")
async def answer(request: Request, item_id: Annotated[int, Path(ge=1)]) -> Response:
    await overseer(request)
    form = await check_form(request)
    api = api_for(request)
    try:
        await api.post(f"/efficacy/v1/supervision/{item_id}/answer", {"answer": form.get("answer", "")})
    except ApiError as exc:
        if exc.status not in (403, 404, 409, 422):
            raise
        return render(request, "error.html", status_code=exc.status, error=exc, message=problem_text(exc))
    back = form.get("back") or ""
    return redirect(request, back if back.startswith(f"{PATH}/") else f"{PATH}/supervision")


@router.get("/cases/{application_id}", summary="One case: timeline, clocks with pauses, who holds it, cards, ratings")
async def case(request: Request, application_id: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
               format: Csv = None) -> Response:
    api, _me, _scope = await overseer(request)

    async def optional(path: str, **params: Any) -> Any:
        try:
            return await api.get(path, **params)
        except ApiError as exc:
            if exc.status in (403, 404):
                return None
            raise

    app, wf, clocks, cards, ratings, queue, complaints, names = await asyncio.gather(
        api.get(f"/intake/v1/applications/{application_id}"),
        optional(f"/workflow/v1/cases/{application_id}"),
        optional(f"/efficacy/v1/clocks/{application_id}"),
        optional("/efficacy/v1/cards/raised", application_id=application_id),
        optional("/efficacy/v1/ratings", application_id=application_id),
        optional("/efficacy/v1/supervision", limit=200, application_id=application_id),
        optional("/efficacy/v1/complaints", about_kind="case", about_ref=application_id),
        department_names(api))
    holders = sorted({t["department"] for st in (wf or {}).get("stages", []) for t in st["tasks"]
                      if t["state"] in ("open", "awaiting_correction")})
    items = (queue or {}).get("items", [])
    if format == "csv":
        rows: list[list[Any]] = [["timeline", t["at"], t["step"], t.get("unit"), t.get("note")] for t in app["timeline"]]
        for c in [*([clocks["application"]] if clocks and clocks.get("application") else []),
                  *((clocks or {}).get("tasks") or [])]:
            rows.append(["clock", c.get("started_at"), c.get("step_key") or "application", c.get("department"),
                         f"{c.get('state')}; used {c.get('elapsed_workdays')}; left {c.get('remaining_workdays')}; "
                         f"deadline {c.get('deadline_on')}"])
        rows += [["card", c["raised_at"], c["colour"], c.get("department"), c["reason"]] for c in cards or []]
        rows += [["supervision", i["opened_at"], i["kind"], i.get("department"), i["state"]] for i in items]
        return csv_response(request, f"case-{app.get('receipt_number') or application_id}",
                            ("kind", "at", "what", "unit", "detail"), rows)
    return render(request, "case.html", app=app, case=wf, clocks=clocks, cards=cards or [], holders=holders,
                  ratings=(ratings or {}).get("items", []), items=items, names=names,
                  complaints=(complaints or {}).get("items", []))


@router.get("/ratings", summary="Ratings (好差评) by department and item, and the rectification of bad ones")
async def ratings(request: Request, department: Code = None, item: ItemCode = None,
                  rectification: Annotated[str | None, Query(pattern="^(open|called_back|closed)?$")] = None,
                  format: Csv = None) -> Response:
    api, _me, scope = await overseer(request)
    dept = scope or department
    bad = await api.get_all("/efficacy/v1/ratings", max_pages=5, department=dept, item=item, bad_only="true",
                            rectification=rectification)
    if format == "csv":
        return csv_response(request, f"bad-ratings-{today()}",
                            ("rating_id", "application_id", "department", "level", "score", "tags", "created_at",
                             "rectification_state", "rectification_due_on", "callback_at", "rerated_level"),
                            [[r["rating_id"], r["application_id"], r["department"], r["level_name"], r["score"],
                              " ".join(r["tags"]), r["created_at"], r["rectification_state"],
                              r["rectification_due_on"], r["callback_at"], r["rerated_level"]] for r in bad])
    by_dept, by_item, names = await asyncio.gather(
        api.get("/efficacy/v1/ratings/departments"), api.get("/efficacy/v1/ratings/items", department=dept),
        department_names(api))
    if scope:
        by_dept = [d for d in by_dept if d["department"] == scope]
    return render(request, "ratings.html", by_dept=by_dept, by_item=by_item, bad=bad, names=names, scope=scope,
                  filters={"department": dept, "item": item, "rectification": rectification})


@router.get("/stuck", summary="Where people get stuck, per item (卡点分析)")
async def stuck(request: Request, days: Annotated[int, Query(ge=1, le=366)] = 30, item: ItemCode = None,
                format: Csv = None) -> Response:
    api, _me, scope = await overseer(request)
    end = today()
    start = end - timedelta(days=days - 1)
    period = {"from": start.isoformat(), "to": end.isoformat()}
    report, drafts, misses, names = await asyncio.gather(
        api.get("/efficacy/v1/insights/stuck", **period, department=scope, item=item),
        api.get("/intake/v1/insights/abandoned-drafts", idle_days=7, department=scope, item=item),
        api.get("/catalog/v1/search/misses", **period, limit=50),
        department_names(api))
    if format == "csv":
        rows: list[list[Any]] = []
        for i in report["items"]:
            rows += [["correction", i["item_code"], c["material"], c["times"], ""] for c in i["corrections"]]
            rows += [["step", i["item_code"], s["step_key"], s["tasks"], s["average_share"]] for s in i["steps"]]
        for d in drafts["items"]:
            rows += [["abandoned_draft", d["item_code"], s["at"], s["drafts"], ""] for s in d["stopped_at"]]
        rows += [["search_miss", "", m["terms"], m["searches"], ""] for m in misses]
        return csv_response(request, f"stuck-{start}-{end}", ("kind", "item_code", "what", "count", "average_share"),
                            rows)
    return render(request, "stuck.html", report=report, drafts=drafts, misses=misses, names=names, days=days,
                  start=start, end=end, item=item)
