"""Routes of the base registries (基础库): imports by the keeping department, logged lookups by staff."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.datashare import operations
from services.datashare.api.common import acts_for_department, is_department_actor
from services.datashare.domain import registries as rules
from services.datashare.domain.identifiers import credit_code_problem, id_number_problem
from services.datashare.store import registries as store
from shared.auth import CurrentPrincipal
from shared.budget import time_budget
from shared.db import SessionDep
from shared.errors import Forbidden, NotFound, Problem, invalid, problem_response, problem_responses

log = logging.getLogger("yimen.datashare")
router = APIRouter(tags=["registries"])

RegistryPath = Literal["population", "legal-persons"]


class RejectedRowRead(BaseModel):
    line: int = Field(description="CSV: line in the file (header = 1). JSON: position in the array, from 1.")
    field: str
    rule: str
    reason: str


class ImportReport(BaseModel):
    registry: str
    imported: int = Field(description="Rows inserted or updated.")
    rejected: list[RejectedRowRead]
    total: int
    partial: bool


async def _uploaded_file(request: Request) -> tuple[bytes, str]:
    """A multipart upload (field `file`): how files larger than the plain body limit arrive."""
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise invalid("body.file", "required", "Upload the CSV or JSON file in the form field `file`.")
    raw = await upload.read()
    name = (upload.filename or "").lower()
    kind = (upload.content_type or "").lower()
    if name.endswith(".csv"):
        kind = "text/csv"
    elif name.endswith(".json"):
        kind = "application/json"
    return raw, kind


def _parse(registry: str, raw: bytes, content_type: str) -> rules.ParsedImport:
    return rules.parse_import(registry, rules.read_records(raw, content_type))


def _registry(path: str) -> str:
    return path.replace("-", "_")


def _report(registry: str, parsed: rules.ParsedImport, imported: int, partial: bool) -> dict[str, Any]:
    return ImportReport(
        registry=registry, imported=imported, total=parsed.total, partial=partial,
        rejected=[RejectedRowRead(**r.__dict__) for r in parsed.rejected],
    ).model_dump()


@router.post(
    "/registries/{registry}/imports", summary="Import or update registry records (CSV or JSON)",
    description="""Staff of the keeping department (population: LD-GAJ; legal persons: LD-SCJGJ) or an admin.

Body: `text/csv` with a header line, or `application/json` (an array of records, or `{"records": [...]}`);
large files as `multipart/form-data` with the file in the field `file` (the body limit is 32 times larger).
Population columns: `id_number`, `name` (required), `gender`, `birth_date`, `ethnicity`, `address`,
`household_number`, `phone`. Legal-person columns: `credit_code`, `name` (required), `legal_representative`,
`legal_representative_id`, `entity_type`, `registered_capital`, `address`, `established_on`, `business_scope`,
`status`. Every row is validated (ID numbers GB 11643 check character and birth date, credit codes GB 32100).

All or nothing by default: any rejected row → 422 with the report (`rejected`: line, field, rule, reason) and
nothing is imported. With `?partial=true` the valid rows are imported (200) and the rejected ones reported.
A record whose key exists already is replaced (re-import is how a registry is kept current).""",
    responses={**problem_responses(401, 403, 415), 422: {"description": "Rejected rows; nothing imported.",
                                                         "model": ImportReport}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "text/csv": {"schema": {"type": "string"}, "example": "id_number,name,gender\n11010519491231002X,张三,女\n"},
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}},
                             "example": [{"credit_code": "91441781MA4W000001", "name": "罗定市好味餐饮店"}]},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}}, "required": ["file"]}},
    }}},
    dependencies=[time_budget(300)],  # 100,000 rows on a busy machine take longer than the default budget
)
async def import_records(
    registry: RegistryPath,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    partial: Annotated[bool, Query(description="Import the valid rows even if some are rejected.")] = False,
) -> ImportReport:
    name = _registry(registry)
    if not acts_for_department(principal, rules.REGISTRY_KEEPERS[name]):
        raise Forbidden(f"Only {rules.REGISTRY_KEEPERS[name]} staff or an admin import into this registry.")
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        raw, content_type = await _uploaded_file(request)
    else:
        raw = await request.body()
    if "json" not in content_type and "csv" not in content_type:
        raise Problem("Send text/csv or application/json, or upload one as multipart/form-data.",
                      status=415, slug="unsupported-media-type", title="Unsupported media type")
    try:
        # Parsing and checking 100,000 rows takes seconds of CPU: off the event loop, so other requests and
        # the bus consumers keep being served meanwhile.
        parsed = await asyncio.to_thread(_parse, name, raw, content_type)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("body", "format", f"Unreadable body: expected {exc}.") from exc
    if parsed.rejected and not partial:
        body = _report(name, parsed, 0, partial)
        body.update(type="https://yimen.gov.cn/problems/import-rejected", title="Rows rejected; nothing imported",
                    status=422)
        return JSONResponse(body, status_code=422, media_type="application/problem+json")  # type: ignore[return-value]
    def progress(done: int) -> None:
        log.info("registry import %s: %d/%d rows written", name, done, len(parsed.rows))

    imported = await store.upsert_records(
        session, name, parsed.rows, principal.department or principal.subject, on_progress=progress
    )
    return ImportReport(**_report(name, parsed, imported, partial))


async def _lookup(session: SessionDep, principal: CurrentPrincipal, registry: str, key: str,
                  application_id: str | None) -> dict[str, Any]:
    if not is_department_actor(principal) and not principal.has("admin"):
        raise Forbidden("Registry lookups are for department staff.")
    record = await store.lookup(session, registry, key)
    await operations.log_access(
        session, principal, action="registry_lookup",
        target=f"registry:{'population' if registry == rules.POPULATION else 'legal-persons'}", holder_id=key,
        outcome="found" if record else "no_match", application_id=application_id,
        fields=sorted(record) if record else [],
    )
    if record is None:
        # Returned, not raised: raising would roll back the log entry of this (fruitless) read.
        return problem_response(NotFound("No record with this key.", slug="record-not-found"))  # type: ignore[return-value]
    return record


@router.get(
    "/registries/population/{id_number}", summary="Look up a person (staff; logged)",
    responses=problem_responses(401, 403, 404, 422),
)
async def lookup_person(
    id_number: str, session: SessionDep, principal: CurrentPrincipal,
    application_id: Annotated[str | None, Query(max_length=64, description="The purpose, if any.")] = None,
) -> dict[str, Any]:
    id_number = id_number.upper()
    if problem := id_number_problem(id_number):
        raise invalid("path.id_number", *problem)
    return await _lookup(session, principal, rules.POPULATION, id_number, application_id)


@router.get(
    "/registries/legal-persons/{credit_code}", summary="Look up an organisation (staff; logged)",
    responses=problem_responses(401, 403, 404, 422),
)
async def lookup_organisation(
    credit_code: str, session: SessionDep, principal: CurrentPrincipal,
    application_id: Annotated[str | None, Query(max_length=64, description="The purpose, if any.")] = None,
) -> dict[str, Any]:
    credit_code = credit_code.upper()
    if problem := credit_code_problem(credit_code):
        raise invalid("path.credit_code", *problem)
    return await _lookup(session, principal, rules.LEGAL_PERSONS, credit_code, application_id)
