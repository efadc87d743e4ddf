"""Open data (数据开放): the catalogue and the aggregated, non-personal datasets, computed from the published items
and the archive."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.domain import opendata
from services.datashare.service.common import CITY_TZ, today
from services.datashare.store import archive, items
from shared.errors import NotFound


def catalogue(base: str) -> dict[str, Any]:
    """The DCAT-AP catalogue (JSON-LD) with download URLs under `base`."""
    return opendata.catalogue(base, today().isoformat())


def dataset_of(dataset_file: str) -> tuple[str, str, opendata.Dataset]:
    """`<id>.csv` or `<id>.json`: the id, the format and the dataset, or 404."""
    dataset_id, _, ext = dataset_file.rpartition(".")
    dataset = opendata.DATASETS.get(dataset_id)
    if dataset is None or ext not in ("csv", "json"):
        raise NotFound("No such dataset; see /open/datasets for the list.", slug="dataset-not-found")
    return dataset_id, ext, dataset


def _month(at: datetime) -> str:
    return at.astimezone(CITY_TZ).strftime("%Y-%m")


def _limit_days(limit: Any) -> Any:
    return limit.get("value") if isinstance(limit, dict) else None


async def dataset_rows(session: AsyncSession, dataset_id: str) -> list[dict[str, Any]]:
    if dataset_id == "published-items":
        return [
            {
                "item_code": i.code, "version": i.version, "name": i.name, "department": i.department,
                "case_kind": i.content.get("case_kind"),
                "promised_limit_days": _limit_days(i.content.get("promised_limit")),
                "statutory_limit_days": _limit_days(i.content.get("statutory_limit")),
                "fully_online": i.content.get("fully_online"),
                "published_on": i.published_at.astimezone(CITY_TZ).date().isoformat(),
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
        if a.accepted_at is not None and opendata.on_time(a.accepted_at, a.decided_at, a.promised_limit, CITY_TZ):
            row["on_time"] += 1
    out = [counts[k] for k in sorted(counts)]
    for row in out:
        row["on_time_rate"] = round(row["on_time"] / row["decided"], 4)
    return out




def csv_of(dataset: opendata.Dataset, rows: list[dict[str, Any]]) -> str:
    return opendata.to_csv(dataset.columns, rows)
