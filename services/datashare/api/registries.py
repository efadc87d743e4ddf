"""Routes of the base registries (基础库): imports by the keeping department, logged lookups by staff."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.datashare import operations
from services.datashare.api.common import acts_for_department, check_reasoned_lookup, fetch_application
from services.datashare.domain import purpose
from services.datashare.domain import registries as rules
from services.datashare.domain.identifiers import credit_code_problem, id_number_problem
from services.datashare.store import registries as store
from shared.auth import CurrentPrincipal
from shared.budget import time_budget
from shared.db import SessionDep
from shared.errors import Forbidden, NotFound, Problem, invalid
from shared.http_errors import problem_response, problem_responses

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

A body without records is 422 (`empty`). All or nothing by default: any rejected row → 422 with the report (`rejected`: line, field, rule, reason) and
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
    if parsed.total == 0:
        # Nothing to import is a mistake worth naming (a wrong file, a header alone), not a 200 with zero rows.
        raise invalid("body", "empty", "The body holds no records: a CSV header with rows, or a non-empty array.")
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


async def _lookup(request: Request, session: SessionDep, principal: CurrentPrincipal, registry: str, key: str,
                  application_id: str | None, material_code: str | None, reason: str | None) -> dict[str, Any]:
    target = f"registry:{'population' if registry == rules.POPULATION else 'legal-persons'}"
    if not purpose.is_reader(principal):
        raise Forbidden("Registry look-ups are for staff and department systems; a holder asks through "
                        "POST /requests for an application's material.")
    logged: dict[str, Any] = {"application_id": application_id, "material_code": material_code}
    try:
        if application_id:
            application = await fetch_application(request, application_id)
            grant = await operations.grant_for_application(
                session, principal, application, holder_id=key, registry=registry, material_code=material_code)
            logged.update(item_code=application.get("item_code"), purpose=f"{grant.basis}: "
                          + ", ".join(f"material {c}" for c in grant.material_codes))
        elif purpose.may_look_up_by_reason(principal):
            text = purpose.check_reason(reason)
            await check_reasoned_lookup(request, principal)
            grant = purpose.reason_grant()
            logged["purpose"] = text
        else:
            raise Forbidden("A registry record is read only for a live application in which your department holds "
                            "an open task (`application_id`); admins and supervisors may give a written `reason`.",
                            slug="purpose-not-established")
    except Forbidden as refusal:
        return await operations.refuse(session, principal, refusal, action="registry_lookup", target=target,  # type: ignore[return-value]
                                       holder_id=key, **{**logged, "purpose": logged.get("purpose") or reason})
    record = await store.lookup(session, registry, key)
    shown = purpose.release(record, grant) if record is not None else None
    await operations.log_access(
        session, principal, action="registry_lookup", target=target, holder_id=key,
        outcome="found" if record else "no_match", fields=sorted(shown) if shown else [], **logged,
    )
    if shown is None:
        # Returned, not raised: raising would roll back the log entry of this (fruitless) read.
        return problem_response(NotFound("No record with this key.", slug="record-not-found"))  # type: ignore[return-value]
    return shown


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
    description=_LOOKUP_RULES, responses=problem_responses(401, 403, 404, 422, 429),
)
async def lookup_person(
    id_number: str, request: Request, session: SessionDep, principal: CurrentPrincipal,
    application_id: ApplicationQuery = None, material_code: MaterialQuery = None, reason: ReasonQuery = None,
) -> dict[str, Any]:
    id_number = id_number.upper()
    if problem := id_number_problem(id_number):
        raise invalid("path.id_number", *problem)
    return await _lookup(request, session, principal, rules.POPULATION, id_number, application_id, material_code,
                         reason)


@router.get(
    "/registries/legal-persons/{credit_code}", summary="Look up an organisation (purpose-bound; logged)",
    description=_LOOKUP_RULES, responses=problem_responses(401, 403, 404, 422, 429),
)
async def lookup_organisation(
    credit_code: str, request: Request, session: SessionDep, principal: CurrentPrincipal,
    application_id: ApplicationQuery = None, material_code: MaterialQuery = None, reason: ReasonQuery = None,
) -> dict[str, Any]:
    credit_code = credit_code.upper()
    if problem := credit_code_problem(credit_code):
        raise invalid("path.credit_code", *problem)
    return await _lookup(request, session, principal, rules.LEGAL_PERSONS, credit_code, application_id,
                         material_code, reason)
