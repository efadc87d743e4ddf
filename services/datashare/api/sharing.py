"""Purpose-bound requests (按需共享): intake or a department asks for a holder's certificate or registry record
for one material of one live application."""

from __future__ import annotations

from dataclasses import asdict
from enum import StrEnum
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from services.datashare import service
from services.datashare.api.common import ContextDep, render
from shared.auth import CurrentPrincipal
from shared.bounds import VersionInt
from shared.db import SessionDep
from shared.http_errors import problem_responses

router = APIRouter(tags=["sharing"])


class MaterialSource(StrEnum):
    """Where a material comes from when datashare supplies it."""

    CERTIFICATE = "certificate"
    OWN_CERTIFICATE = "own_certificate"
    REGISTRY = "registry"


class DataRequest(BaseModel):
    # The food business permit (食品经营许可) of the demo catalogue names the business licence (营业执照) as a
    # certificate material; the holder is 罗定市好味道餐饮有限公司, asking through its agent for its application
    # (the id is the one the platform issued it; an example cannot know it).
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "application_id": "3f0c2a4b9d8e4f6a8b1c2d3e4f5a6b7c", "item_code": "11441781MB0000001A4010000030000",
        "item_version": 1, "material_code": "business_licence", "holder_id": "91445381MA4W00000T",
        "holder_kind": "organisation",
    }]})

    application_id: str = Field(min_length=1, max_length=64, description="The purpose: a live application.")
    item_code: str = Field(min_length=1, max_length=64)
    item_version: VersionInt
    material_code: str = Field(min_length=1, max_length=64)
    holder_id: str = Field(min_length=1, max_length=18)
    holder_kind: str = Field(description="person/111 or organisation/001",
                             json_schema_extra={"enum": ["111", "001", "person", "organisation"]})
    certificate_type: str | None = Field(default=None, max_length=21,
                                         description="Optional: must be the one the material names.")
    registry: Literal["population", "legal-persons", "legal_persons"] | None = Field(
        default=None, description="Optional: must be the one the material names.")


class DataAnswer(BaseModel):
    status: Literal["found", "no_match"]
    material_code: str
    source: MaterialSource
    certificate: dict[str, Any] | None = None
    record: dict[str, Any] | None = None


@router.post(
    "/requests", summary="Fetch a holder's certificate or registry record for an application's material",
    response_model=DataAnswer,
    description="""The published item version's material must name this source. Who may ask:

- the holder themself (`hid`, `org`, `act.hid`), with a token of assurance level 2 or more (claim `level`);
  the answer carries the fields the material needs;
- staff or a department system whose department holds an open task in the application (from workflow's task
  events), or the window clerk of the application's service point while it awaits acceptance; the holder must
  be the applicant or be named in the application. Only the fields the material needs are answered; phone and
  ID numbers in them are masked except for department systems and the window clerk serving the case.

Intake must confirm the application as live to the caller's own token. Nothing found is
`{"status": "no_match"}` (200). Every request, also a refused one, is recorded in the holder's access log
with its purpose (application, item, material).""",
    responses=problem_responses(401, 403, 422),
    # The holder (a person, or an organisation through its agent), a handling department's staff or system, or the
    # window clerk serving the case; checked against the application in `service.sharing`.
    openapi_extra={"x-yimen-roles": ["org_agent", "citizen", "department_reviewer", "department_system",
                                     "window_clerk"]},
)
async def request_data(body: DataRequest, ctx: ContextDep, session: SessionDep, principal: CurrentPrincipal) -> Any:
    result = await service.sharing.request_data(
        ctx, session, principal, application_id=body.application_id, item_code=body.item_code,
        item_version=body.item_version, material_code=body.material_code, holder_id=body.holder_id,
        holder_kind=body.holder_kind, certificate_type=body.certificate_type, registry=body.registry)
    if isinstance(result, service.sharing.Answer):
        return DataAnswer.model_validate(asdict(result))
    return render(result)
