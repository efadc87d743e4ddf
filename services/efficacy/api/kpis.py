"""The reform's figures (三率一数 and more) for any period, beside the plan's targets."""

from __future__ import annotations

import csv
import io
from datetime import date
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from services.efficacy import service
from shared.bounds import BoundedDate
from shared.db import SessionDep
from shared.http_errors import problem_responses

router = APIRouter(prefix="/kpis", tags=["kpis"])


class Source(StrEnum):
    incremental = "incremental"
    recomputed = "recomputed"


class Format(StrEnum):
    json = "json"
    csv = "csv"


class FigureRead(BaseModel):
    key: str
    name: str
    value: float | None = Field(description="A share (0–1), or an average; null when nothing was counted.")
    numerator: float
    denominator: float
    target: float | None
    meets_target: bool | None
    definition: str


class KpiReport(BaseModel):
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    department: str | None
    item: str | None
    service_point: str | None
    source: Source
    applications: int
    figures: list[FigureRead]


@router.get(
    "",
    summary="KPIs for a period (public)",
    description="Applications count in the period of the day they were submitted (else accepted), Asia/Shanghai. "
                "Each figure carries its definition and the plan's target (configurable). `source=recomputed` "
                "rebuilds every figure from the stored events instead of the incrementally kept rows (slower; "
                "for checking). `format=csv` for a spreadsheet.",
    response_model=KpiReport,
    response_model_by_alias=True,
    responses={**problem_responses(422),
               200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                     "description": "The report as JSON, or as CSV with `format=csv`."}},
)
async def kpis(
    session: SessionDep,
    start: Annotated[BoundedDate, Query(alias="from")],
    end: Annotated[BoundedDate, Query(alias="to")],
    department: Annotated[str | None, Query(max_length=40)] = None,
    item: Annotated[str | None, Query(max_length=80)] = None,
    service_point: Annotated[str | None, Query(max_length=40)] = None,
    source: Source = Source.incremental,
    format: Format = Format.json,
) -> KpiReport | Response:
    applications, figs = await service.reports.kpi_report(
        session, start=start, end=end, department=department, item=item, service_point=service_point,
        recomputed=source == Source.recomputed)
    report = KpiReport(start=start, end=end, department=department, item=item, service_point=service_point,
                       source=source, applications=applications,
                       figures=[FigureRead(**f.__dict__) for f in figs])
    if format == Format.csv:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["key", "name", "value", "numerator", "denominator", "target", "meets_target", "definition"])
        for f in figs:
            w.writerow([f.key, f.name, f.value, f.numerator, f.denominator, f.target, f.meets_target, f.definition])
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="kpis-{start}-{end}.csv"'})
    return report
