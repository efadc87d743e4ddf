"""Registry matching for identity's registration (实名核验): a verdict, never the record.

Only identity's own service token (`kind=service`, `sub=identity`) may ask. Each match is written into the
holder's access log with its purpose, so the person (or the company's agents) can read who checked them and why."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from services.datashare import operations
from services.datashare.domain import matching
from services.datashare.domain import registries as rules
from services.datashare.domain.identifiers import credit_code_problem, id_number_problem
from services.datashare.store import registries as store
from shared.auth import CurrentPrincipal, Principal
from shared.db import SessionDep
from shared.errors import Forbidden, invalid
from shared.http_errors import problem_responses

router = APIRouter(tags=["registries"])

PERSON_PURPOSE = "实名核验 registration"
ORGANISATION_PURPOSE = "实名核验 organisation registration"


class PersonMatch(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"id_number": "445381199001011230", "name": "李明"}]})

    id_number: str = Field(max_length=18, description="Citizen ID number, already normalised by identity.")
    name: str = Field(min_length=1, max_length=100, description="The name the person typed.")


class OrganisationMatch(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "credit_code": "91445381MA4W000001", "name": "罗定市一味餐饮店",
        "legal_representative_id_number": "445381199001011230"}]})

    credit_code: str = Field(max_length=18)
    name: str = Field(min_length=1, max_length=200)
    legal_representative_id_number: str = Field(max_length=18)


class PersonMatchResult(BaseModel):
    result: Literal["match", "name_mismatch", "not_found"]


class OrganisationMatchResult(BaseModel):
    result: Literal["match", "name_mismatch", "not_found", "not_legal_representative", "inactive"]


def _identity_only(principal: Principal) -> None:
    if principal.kind != "service" or principal.subject != matching.MATCHING_SERVICE or not principal.has("service"):
        raise Forbidden("Registry matching answers identity's registration only.", slug="not-identity-service")


@router.post(
    "/registries/population/matches", response_model=PersonMatchResult,
    summary="Match a name against the population registry (identity's 实名核验 only; logged)",
    description="Answers `match`, `name_mismatch` or `not_found` and releases nothing of the record. Only "
    "identity's own service token may call it. The check is written into the person's access log with the "
    f"purpose `{PERSON_PURPOSE}`.",
    responses=problem_responses(401, 403, 422),
)
async def match_person(body: PersonMatch, session: SessionDep, principal: CurrentPrincipal) -> PersonMatchResult:
    _identity_only(principal)
    id_number = body.id_number.strip().upper()
    if problem := id_number_problem(id_number):
        raise invalid("body.id_number", *problem)
    record = await store.lookup(session, rules.POPULATION, id_number)
    verdict = matching.person_verdict(record.get("name") if record else None, body.name)
    await operations.log_access(
        session, principal, action="registry_match", target="registry:population", holder_id=id_number,
        outcome=verdict, service=matching.MATCHING_SERVICE, purpose=PERSON_PURPOSE, fields=["name"],
    )
    return PersonMatchResult(result=verdict)


@router.post(
    "/registries/legal-persons/matches", response_model=OrganisationMatchResult,
    summary="Match an organisation and its legal representative against the legal-person registry (identity only)",
    description="`match` when the registry holds the credit code under this name, is not deregistered, and names "
    "this ID number as legal representative; otherwise `not_found`, `name_mismatch`, `inactive` or "
    "`not_legal_representative`. Releases nothing of the record; logged for the organisation with the purpose "
    f"`{ORGANISATION_PURPOSE}`.",
    responses=problem_responses(401, 403, 422),
)
async def match_organisation(body: OrganisationMatch, session: SessionDep,
                             principal: CurrentPrincipal) -> OrganisationMatchResult:
    _identity_only(principal)
    code = body.credit_code.strip().upper()
    if problem := credit_code_problem(code):
        raise invalid("body.credit_code", *problem)
    rep = body.legal_representative_id_number.strip().upper()
    if problem := id_number_problem(rep):
        raise invalid("body.legal_representative_id_number", *problem)
    record = await store.lookup(session, rules.LEGAL_PERSONS, code)
    verdict = matching.organisation_verdict(record, body.name, rep)
    await operations.log_access(
        session, principal, action="registry_match", target="registry:legal-persons", holder_id=code,
        outcome=verdict, service=matching.MATCHING_SERVICE, purpose=ORGANISATION_PURPOSE,
        fields=["name", "legal_representative_id", "status"],
    )
    return OrganisationMatchResult(result=verdict)
