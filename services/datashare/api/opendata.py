"""Routes of open data (数据开放): a DCAT-AP catalogue and aggregated, non-personal datasets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services.datashare import service
from services.datashare.api.common import PUBLIC
from shared.db import SessionDep
from shared.http_errors import problem_responses

router = APIRouter(tags=["open data"])

_CATALOGUE_SCHEMA: dict[str, Any] = {"type": "object", "description": "A DCAT-AP catalogue in JSON-LD.",
                                     "properties": {"@context": {}, "@type": {"type": "string"},
                                                    "dataset": {"type": "array", "items": {"type": "object"}}}}
_DATASET_SCHEMA: dict[str, Any] = {"type": "object", "required": ["dataset", "columns", "rows"], "properties": {
    "dataset": {"type": "string"}, "columns": {"type": "array", "items": {"type": "string"}},
    "rows": {"type": "array", "items": {"type": "object"}}}}


@router.get(
    "/open/datasets", summary="The open-data catalogue (DCAT-AP, JSON-LD)", openapi_extra=PUBLIC,
    response_class=Response,
    responses={200: {"description": "The catalogue.", "content": {"application/ld+json": {"schema": _CATALOGUE_SCHEMA}}}},
)
async def catalogue(request: Request) -> JSONResponse:
    base = str(request.url).split("/open/datasets")[0]
    return JSONResponse(service.opendata.catalogue(base), media_type="application/ld+json")


@router.get(
    "/open/datasets/{dataset_file}", summary="Download a dataset as `<id>.csv` or `<id>.json`", openapi_extra=PUBLIC,
    response_class=Response,
    responses={**problem_responses(404), 200: {"description": "The dataset's rows.", "content": {
        "text/csv": {"schema": {"type": "string"}}, "application/json": {"schema": _DATASET_SCHEMA}},
        "headers": {"Content-Disposition": {"description": "CSV only: `attachment; filename=\"<id>.csv\"`.",
                                            "schema": {"type": "string"}}}}},
)
async def download(dataset_file: str, session: SessionDep) -> Response:
    dataset_id, ext, dataset = service.opendata.dataset_of(dataset_file)
    rows = await service.opendata.dataset_rows(session, dataset_id)
    if ext == "csv":
        return Response(service.opendata.csv_of(dataset, rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{dataset_file}"'})
    return JSONResponse({"dataset": dataset_id, "columns": list(dataset.columns),
                         "rows": [{c: r.get(c) for c in dataset.columns} for r in rows]})
