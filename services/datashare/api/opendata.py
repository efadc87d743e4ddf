"""Routes of open data (数据开放): a DCAT-AP catalogue and aggregated, non-personal datasets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services.datashare import operations
from services.datashare.domain import opendata
from services.datashare.store import archive, items
from shared.db import SessionDep
from shared.errors import NotFound
from shared.http_errors import problem_responses

router = APIRouter(tags=["open data"])


def _month(at: datetime) -> str:
    return at.astimezone(operations.CITY_TZ).strftime("%Y-%m")


def _limit_days(limit: Any) -> Any:
    return limit.get("value") if isinstance(limit, dict) else None


async def dataset_rows(session: SessionDep, dataset_id: str) -> list[dict[str, Any]]:
    if dataset_id == "published-items":
        return [
            {
                "item_code": i.code, "version": i.version, "name": i.name, "department": i.department,
                "case_kind": i.content.get("case_kind"),
                "promised_limit_days": _limit_days(i.content.get("promised_limit")),
                "statutory_limit_days": _limit_days(i.content.get("statutory_limit")),
                "fully_online": i.content.get("fully_online"),
                "published_on": i.published_at.astimezone(operations.CITY_TZ).date().isoformat(),
            }
            for i in sorted(await items.current_items(session), key=lambda i: i.code)
        ]
    apps = await archive.all_rows(session)
    if dataset_id == "applications-per-item-month":
        acc: dict[tuple[str, str], dict[str, Any]] = {}
        for a in apps:
            if a.accepted_at is None:
                continue
            row = acc.setdefault((_month(a.accepted_at), a.item_code), {
                "month": _month(a.accepted_at), "item_code": a.item_code, "item_name": a.item_name,
                "department": a.department, "accepted": 0, "accepted_online": 0,
            })
            row["accepted"] += 1
            row["accepted_online"] += 1 if a.online else 0
        return [acc[k] for k in sorted(acc)]
    counts: dict[tuple[str, str], dict[str, Any]] = {}
    for a in apps:
        if a.decided_at is None:
            continue
        key = (_month(a.decided_at), a.item_code)
        row = counts.setdefault(key, {"month": key[0], "item_code": a.item_code, "department": a.department,
                                      "decided": 0, "approved": 0, "on_time": 0})
        row["decided"] += 1
        row["approved"] += 1 if a.outcome == "approved" else 0
        if a.accepted_at is not None and opendata.on_time(a.accepted_at, a.decided_at, a.promised_limit, operations.CITY_TZ):
            row["on_time"] += 1
    out = [counts[k] for k in sorted(counts)]
    for row in out:
        row["on_time_rate"] = round(row["on_time"] / row["decided"], 4)
    return out


@router.get(
    "/open/datasets", summary="The open-data catalogue (DCAT-AP, JSON-LD)",
    response_class=JSONResponse, responses={200: {"content": {"application/ld+json": {}}}},
)
async def catalogue(request: Request) -> JSONResponse:
    base = str(request.url).split("/open/datasets")[0]
    body = opendata.catalogue(base, operations.today().isoformat())
    return JSONResponse(body, media_type="application/ld+json")


@router.get(
    "/open/datasets/{dataset_file}", summary="Download a dataset as `<id>.csv` or `<id>.json`",
    responses={**problem_responses(404), 200: {"content": {"text/csv": {}, "application/json": {}}}},
)
async def download(dataset_file: str, session: SessionDep) -> Response:
    dataset_id, _, ext = dataset_file.rpartition(".")
    dataset = opendata.DATASETS.get(dataset_id)
    if dataset is None or ext not in ("csv", "json"):
        raise NotFound("No such dataset; see /open/datasets for the list.", slug="dataset-not-found")
    rows = await dataset_rows(session, dataset_id)
    if ext == "csv":
        return Response(opendata.to_csv(dataset.columns, rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{dataset_file}"'})
    return JSONResponse({"dataset": dataset_id, "columns": list(dataset.columns),
                         "rows": [{c: r.get(c) for c in dataset.columns} for r in rows]})
