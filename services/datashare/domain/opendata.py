"""Open data (数据开放): the DCAT-AP catalogue and the aggregated, non-personal datasets behind it."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from shared.workdays import WorkCalendar

_calendar = WorkCalendar()


@dataclass(frozen=True)
class Dataset:
    id: str
    title: str
    description: str
    columns: tuple[str, ...]
    keywords: tuple[str, ...]


DATASETS: dict[str, Dataset] = {
    d.id: d
    for d in [
        Dataset("published-items", "已发布政务服务事项 Published public-service items",
                "Every item currently published in the city's catalogue: code, version, name, department, "
                "case kind, promised and statutory limits, whether it can be done fully online.",
                ("item_code", "version", "name", "department", "case_kind", "promised_limit_days",
                 "statutory_limit_days", "fully_online", "published_on"),
                ("事项", "办事指南", "items")),
        Dataset("applications-per-item-month", "受理办件数（按事项、月份） Applications accepted per item and month",
                "How many applications were accepted per item and calendar month (Asia/Shanghai), and how many "
                "of them online.",
                ("month", "item_code", "item_name", "department", "accepted", "accepted_online"),
                ("办件", "受理", "applications")),
        Dataset("decisions-on-time", "按时办结率（按事项、月份） Decisions on time per item and month",
                "Applications decided per item and month of decision, how many within the promised limit "
                "(working days), and the on-time rate.",
                ("month", "item_code", "department", "decided", "approved", "on_time", "on_time_rate"),
                ("办结", "时限", "efficiency")),
    ]
}


def catalogue(base_url: str, issued: str) -> dict[str, Any]:
    """A DCAT-AP catalogue in JSON-LD."""
    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
        },
        "@id": f"{base_url}/open/datasets",
        "@type": "dcat:Catalog",
        "dct:title": {"@language": "zh", "@value": "罗定市政务数据开放目录"},
        "dct:description": "Aggregated, non-personal figures of the one-door public-service platform.",
        "dct:publisher": {"@type": "foaf:Organization", "foaf:name": "罗定市政务服务数据管理局"},
        "dct:issued": {"@value": issued, "@type": "xsd:date"},
        "dct:license": {"@id": "http://creativecommons.org/licenses/by/4.0/"},
        "dcat:dataset": [
            {
                "@id": f"{base_url}/open/datasets/{d.id}",
                "@type": "dcat:Dataset",
                "dct:identifier": d.id,
                "dct:title": d.title,
                "dct:description": d.description,
                "dcat:keyword": list(d.keywords),
                "dct:accrualPeriodicity": {"@id": "http://publications.europa.eu/resource/authority/frequency/CONT"},
                "dcat:distribution": [
                    {
                        "@type": "dcat:Distribution",
                        "dcat:downloadURL": {"@id": f"{base_url}/open/datasets/{d.id}.{ext}"},
                        "dcat:mediaType": media,
                        "dct:format": ext.upper(),
                    }
                    for ext, media in (("csv", "text/csv"), ("json", "application/json"))
                ],
            }
            for d in DATASETS.values()
        ],
    }


def to_csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def on_time(accepted_at: datetime, decided_at: datetime, limit: dict[str, Any] | None, tz: tzinfo) -> bool | None:
    """Whether a decision came within the promised limit; None when the limit is unknown."""
    if not isinstance(limit, dict) or not isinstance(limit.get("value"), int):
        return None
    value, unit = limit["value"], limit.get("unit", "working_days")
    if unit == "hours":
        return decided_at - accepted_at <= timedelta(hours=value)
    start = accepted_at.astimezone(tz).date()
    end = decided_at.astimezone(tz).date()
    if unit == "calendar_days":
        return end <= start + timedelta(days=value)
    return end <= _calendar.add_workdays(start, value).value
