"""Registry matching for identity's registration (实名核验): a verdict, never the record.

Only identity's own service token (`kind=service`, `sub=identity`) may ask. Each match is written into the
holder's access log with its purpose, so the person (or the company's agents) can read who checked them and why."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from services.datashare import service
from services.datashare.service.registries import ORGANISATION_PURPOSE, PERSON_PURPOSE
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.http_errors import problem_responses

router = APIRouter(tags=["registries"])
#: Only identity's own service token (`kind=service`, `sub=identity`, role `service`) is answered.
IDENTITY_ONLY = {"x-yimen-roles": ["service"]}


class PersonMatch(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"id_number": "445381199501011237", "name": "李明"}]})

    id_number: str = Field(max_length=18, description="Citizen ID number, already normalised by identity.")
    name: str = Field(min_length=1, max_length=100, description="The name the person typed.")


class OrganisationMatch(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "credit_code": "92445381MA4W00000P", "name": "罗定市一味餐饮店",
        "legal_representative_id_number": "445381199501011237"}]})

    credit_code: str = Field(max_length=18)
    name: str = Field(min_length=1, max_length=200)
    legal_representative_id_number: str = Field(max_length=18)


class PersonMatchResult(BaseModel):
    result: Literal["match", "name_mismatch", "not_found"]


class OrganisationMatchResult(BaseModel):
    result: Literal["match", "name_mismatch", "not_found", "not_legal_representative", "inactive"]


@router.post(
    "/registries/population/matches", response_model=PersonMatchResult,
    summary="Match a name against the population registry (identity's 实名核验 only; logged)",
    description="Answers `match`, `name_mismatch` or `not_found` and releases nothing of the record. Only "
    "identity's own service token may call it. The check is written into the person's access log with the "
    f"purpose `{PERSON_PURPOSE}`.",
    responses=problem_responses(401, 403, 422), openapi_extra=IDENTITY_ONLY,
)
async def match_person(body: PersonMatch, session: SessionDep, principal: CurrentPrincipal) -> PersonMatchResult:
    verdict = await service.registries.match_person(session, principal, id_number=body.id_number, name=body.name)
    return PersonMatchResult(result=verdict)  # type: ignore[arg-type]


@router.post(
    "/registries/legal-persons/matches", response_model=OrganisationMatchResult,
    summary="Match an organisation and its legal representative against the legal-person registry (identity only)",
    description="`match` when the registry holds the credit code under this name, is not deregistered, and names "
    "this ID number as legal representative; otherwise `not_found`, `name_mismatch`, `inactive` or "
    "`not_legal_representative`. Releases nothing of the record; logged for the organisation with the purpose "
    f"`{ORGANISATION_PURPOSE}`.",
    responses=problem_responses(401, 403, 422), openapi_extra=IDENTITY_ONLY,
)
async def match_organisation(body: OrganisationMatch, session: SessionDep,
                             principal: CurrentPrincipal) -> OrganisationMatchResult:
    verdict = await service.registries.match_organisation(
        session, principal, credit_code=body.credit_code, name=body.name,
        representative_id_number=body.legal_representative_id_number)
    return OrganisationMatchResult(result=verdict)  # type: ignore[arg-type]
