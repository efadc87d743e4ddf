"""Routes of the base registries (基础库): imports by the keeping department, logged lookups by staff."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.datashare import service
from services.datashare.api.common import ContextDep, render, too_many
from shared.auth import CurrentPrincipal
from shared.budget import time_budget
from shared.db import SessionDep
from shared.errors import invalid
from shared.http_errors import problem_responses

router = APIRouter(tags=["registries"])

RegistryPath = Annotated[Literal["population", "legal-persons"], Path(openapi_examples={
    "population": {"summary": "The population registry (人口库)", "value": "population"}})]


class RejectedRowRead(BaseModel):
    line: int = Field(description="CSV: line in the file (header = 1). JSON: position in the array, from 1.")
    field: str
    rule: str
    reason: str


class ImportReport(BaseModel):
    registry: Literal["population", "legal_persons"]
    imported: int = Field(description="Rows inserted or updated.")
    rejected: list[RejectedRowRead]
    total: int
    partial: bool


class ImportRejected(ImportReport):
    """Problem details (RFC 9457) with the import report: rows were rejected and nothing was imported."""

    type: str
    title: str
    status: Literal[422]


class PopulationRecordRead(BaseModel):
    """What the population registry holds of a person, narrowed to the fields the purpose needs (the others are
    absent) and masked where the reader may not see phone and ID numbers."""

    id_number: str | None = None
    name: str | None = None
    gender: str | None = None
    birth_date: str | None = None
    ethnicity: str | None = None
    address: str | None = None
    household_number: str | None = None
    phone: str | None = None


class LegalPersonRecordRead(BaseModel):
    """What the legal-person registry holds of an organisation, narrowed and masked like a person's record."""

    credit_code: str | None = None
    name: str | None = None
    legal_representative: str | None = None
    legal_representative_id: str | None = None
    entity_type: str | None = None
    registered_capital: str | None = None
    address: str | None = None
    established_on: str | None = None
    business_scope: str | None = None
    status: str | None = None


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


def _report(result: service.registries.ImportResult) -> ImportReport:
    return ImportReport(
        registry=result.registry, imported=result.imported, total=result.parsed.total,  # type: ignore[arg-type]
        partial=result.partial, rejected=[RejectedRowRead(**r.__dict__) for r in result.parsed.rejected],
    )


@router.post(
    "/registries/{registry}/imports", summary="Import or update registry records (CSV or JSON)",
    description="""Staff of the keeping department (population: LD-GAJ; legal persons: LD-SCJGJ) or an admin.

Body: `text/csv` with a header line, or `application/json` (an array of records, or `{"records": [...]}`);
large files as `multipart/form-data` with the file in the field `file` (the body limit is 32 times larger).
Population columns: `id_number`, `name` (required), `gender`, `birth_date`, `ethnicity`, `address`,
`household_number`, `phone`. Legal-person columns: `credit_code`, `name` (required), `legal_representative`,
`legal_representative_id`, `entity_type`, `registered_capital`, `address`, `established_on`, `business_scope`,
`status`. Every row is validated (ID numbers GB 11643 check character and birth date, credit codes GB 32100).

A body without records is 422 (`empty`). All or nothing by default: any rejected row → 422 with the report (`rejected`: line, field, rule, reason) and
nothing is imported. With `?partial=true` the valid rows are imported (200) and the rejected ones reported.
A record whose key exists already is replaced (re-import is how a registry is kept current).""",
    response_model=ImportReport,
    responses={**problem_responses(401, 403, 415), 422: {"description": "Rejected rows; nothing imported (or the "
                                                         "body broke a rule: problem details).",
                                                         "model": ImportRejected}},
    # Staff of the keeping department, its system, or an admin (service.registries.check_importer).
    openapi_extra={"x-yimen-roles": ["admin", "department_reviewer", "department_system"],
                   "requestBody": {"required": True, "content": {
        "text/csv": {"schema": {"type": "string"}, "example": "id_number,name,gender\n445381199602022226,王芳,女\n"},
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}},
                             "example": [{
            "id_number": "445381199501011237", "name": "李明", "gender": "男", "address": "罗定市罗城街道兴华路1号"}]},
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
) -> Any:
    name = service.registries.registry_name(registry)
    service.registries.check_importer(principal, name)  # before the body is read
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        raw, content_type = await _uploaded_file(request)
    else:
        raw = await request.body()
    result = await service.registries.import_records(session, principal, name, raw=raw, content_type=content_type,
                                                     partial=partial)
    report = _report(result)
    if result.refused:
        body = report.model_dump()
        body.update(type="https://yimen.gov.cn/problems/import-rejected", title="Rows rejected; nothing imported",
                    status=422)
        return JSONResponse(body, status_code=422, media_type="application/problem+json")
    return report


_LOOKUP_RULES = """Only for a purpose (用途绑定), and every look-up — refused ones too — is recorded in the holder's
access log with it:

- staff or a department system: `application_id` of a live application in which the caller's department holds
  an open task (or which the caller's window is accepting), whose item version names this registry for a
  material (`material_code` narrows to one), and which names this person or organisation (the applicant or a
  form value). The answer carries only the fields those materials need; phone and ID numbers are masked except
  for department systems and the window clerk serving the case;
- an admin or supervisor without an application: a written `reason` (at least 4 characters), at most
  `YIMEN_DATASHARE_REASONED_LOOKUPS_PER_HOUR` per account (429 after); the whole record with phone and ID
  numbers masked; the person sees it in `GET /me/lookups` and `GET /me/access-log`.

Anything else is 403."""

ApplicationQuery = Annotated[str | None, Query(max_length=64, description="The purpose: a live application.")]
MaterialQuery = Annotated[str | None, Query(max_length=64, description="Narrow to one material of the item.")]
ReasonQuery = Annotated[str | None, Query(max_length=200, description="Written reason (admin, supervisor).")]


@router.get(
    "/registries/population/{id_number}", summary="Look up a person (purpose-bound; logged)",
    response_model=PopulationRecordRead, response_model_exclude_unset=True, description=_LOOKUP_RULES,
    responses={**problem_responses(401, 403, 404, 422), **too_many()},
)
async def lookup_person(
    id_number: str, ctx: ContextDep, session: SessionDep, principal: CurrentPrincipal,
    application_id: ApplicationQuery = None, material_code: MaterialQuery = None, reason: ReasonQuery = None,
) -> Any:
    return render(await service.registries.lookup(
        ctx, session, principal, service.registries.rules.POPULATION, id_number, application_id=application_id,
        material_code=material_code, reason=reason))


@router.get(
    "/registries/legal-persons/{credit_code}", summary="Look up an organisation (purpose-bound; logged)",
    response_model=LegalPersonRecordRead, response_model_exclude_unset=True, description=_LOOKUP_RULES,
    responses={**problem_responses(401, 403, 404, 422), **too_many()},
)
async def lookup_organisation(
    credit_code: str, ctx: ContextDep, session: SessionDep, principal: CurrentPrincipal,
    application_id: ApplicationQuery = None, material_code: MaterialQuery = None, reason: ReasonQuery = None,
) -> Any:
    return render(await service.registries.lookup(
        ctx, session, principal, service.registries.rules.LEGAL_PERSONS, credit_code, application_id=application_id,
        material_code=material_code, reason=reason))
