"""Routes of enterprise investment projects (企业投资项目): registration, the owner's project page, my projects, and
one stage application (一表申请). Thin: parse, call the use cases, render."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from services.intake.api.openapi import CREATED_ETAG, ORG_AGENT, etag_of_created
from services.intake.api.schemas import Code, PlainText
from services.intake.service import projects as svc
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.http_errors import problem_responses
from shared.service import merge_responses

router = APIRouter(tags=["projects"])

ProjectId = Annotated[str, Path(pattern=r"^prj[0-9a-f]{24}$", description="A project's id (`prj…`).")]
StageKey = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{1,63}$", description="A stage's key, e.g. `approval_land`.",
                               openapi_examples={"first": {"summary": "The first stage of `enterprise_investment`",
                                                           "value": "approval_land"}})]


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "type_key": "enterprise_investment", "project_code": "2026-445381-39-03-123452",
        "name": "罗定市好味道餐饮有限公司年产 2 万吨淀粉制品生产线",
        "site": "罗定市双东街道环保工业园 A-12 地块", "land_area_m2": "26800", "total_investment_wan": "12000",
        "industry_code": "C1391"}]})

    type_key: Code = Field(min_length=1, max_length=64, description="The project type (catalog `/project-types`).")
    project_code: PlainText | None = Field(
        default=None, max_length=40,
        description="A code already issued (GB/T 40058-2021: `YYYY-RRRRRR-DD-TT-NNNNNC`); omitted: the platform "
                    "issues one.")
    name: PlainText = Field(min_length=2, max_length=200)
    site: PlainText = Field(min_length=2, max_length=300, description="建设地点.")
    land_area_m2: Decimal = Field(gt=0, le=100_000_000, max_digits=12, decimal_places=2, description="用地面积（m²）.")
    total_investment_wan: Decimal = Field(gt=0, le=100_000_000, max_digits=14, decimal_places=2,
                                          description="总投资（万元）.")
    industry_code: str = Field(pattern=r"^[A-T]\d{2,4}$", description="国民经济行业分类 (GB/T 4754), e.g. C1391.")


class StageMaterialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code = Field(description="The material's code in the stage's items.")
    kind: Literal["certificate_ref", "reference", "commitment"]
    reference: PlainText | None = Field(default=None, max_length=200,
                                  description="A certificate's or document's number (e.g. 用地批准文号).")
    statement: PlainText | None = Field(default=None, max_length=2000, description="The commitment's words (告知承诺).")


class StageApplicationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        # The first stage (立项用地规划许可) of the project the registration example makes: one form and the
        # materials every item of the stage asks for.
        "form": {"project_name": "罗定市好味道餐饮有限公司年产 2 万吨淀粉制品生产线",
                 "project_code": "2026-445381-39-03-123452", "construction_site": "罗定市双东街道环保工业园 A-12 地块",
                 "applicant_name": "赵强", "phone": "0766-3999999"},
        "materials": [
            {"code": "filing_commitment", "kind": "commitment", "statement": "本单位承诺所填信息真实。"},
            {"code": "land_contract", "kind": "reference", "reference": "罗定国土出让〔2026〕18 号"},
            {"code": "design_scheme", "kind": "reference", "reference": "窗口收件 SJ-2026-0301"},
            {"code": "land_proof", "kind": "reference", "reference": "罗定国土出让〔2026〕18 号"}]}]})

    form: dict[str, Any] = Field(default_factory=dict, max_length=200,
                                 description="One form for every item of the stage (each item takes its fields).")
    materials: list[StageMaterialIn] = Field(default_factory=list, max_length=50)
    service_point: Code = Field(default="LD-CENTRE")


class HeldBy(BaseModel):
    unit: str | None
    unit_name: str | None
    step: str
    staff_name: str | None
    staff_contact: str | None
    since: datetime


class StageApplicationRead(BaseModel):
    application_id: str
    receipt_number: str | None
    item_code: str
    item_name: str
    department: str
    department_name: str | None
    status: str
    outcome: str | None
    limit_days: int = Field(description="The department's own limit in the stage (working days).")
    due_on: date
    accepted_at: datetime | None
    decided_at: datetime | None
    held_by: HeldBy | None = Field(description="Who holds it now (谁在办): the latest step's unit and handler.")
    handled_by: list[HeldBy] = Field(description="Who held it along the way (谁办过): every step with a named "
                                               "handler, in order — for a decided item, who decided it is the last.")


class StageItemRead(BaseModel):
    item_code: str
    item_name: str | None
    department: str
    department_name: str | None
    limit_days: int


class StageRead(BaseModel):
    key: str
    name: str
    order: int
    total_limit_days: int
    status: Literal["locked", "open", "in_progress", "completed"]
    accepted_at: datetime | None
    due_on: date | None
    completed_at: datetime | None
    items: list[StageItemRead]
    applications: list[StageApplicationRead]


class ProjectRead(BaseModel):
    id: str
    project_code: str
    type_key: str
    name: str
    site: str
    land_area_m2: str
    total_investment_wan: str
    industry_code: str
    owner_id: str
    status: Literal["registered", "in_progress", "completed"]
    registered_at: datetime
    completed_at: datetime | None
    conditions: list[dict[str, Any]] = Field(description="Negative-list entries permitted with conditions.")
    clock_url: str = Field(description="The project clock (efficacy).")
    stages: list[StageRead]


class ProjectSummary(BaseModel):
    id: str
    project_code: str
    name: str
    registered_at: datetime
    completed_at: datetime | None


@router.post(
    "/projects", status_code=201, response_model=ProjectRead,
    openapi_extra=ORG_AGENT,
    summary="Register an enterprise investment project (organisation's agent)",
    description="The project code is checked (GB/T 40058-2021, each segment named on failure) or issued; the "
                "market-access negative list is checked by industry: prohibited → 403 with the entry, permitted "
                "with conditions → registered with the conditions attached.",
    responses=merge_responses(problem_responses(401, 403, 409, 422), {201: {"headers": CREATED_ETAG}}),
)
async def register_project(body: ProjectCreate, session: SessionDep, principal: CurrentPrincipal,
                           response: Response) -> Any:
    project = await svc.register(session, principal, svc.Registration(**body.model_dump()))
    return etag_of_created(response, await svc.page(session, project))


@router.get("/projects/{project_id}", response_model=ProjectRead,
            summary="The project page: stages, applications, who holds what, clocks",
            responses=problem_responses(401, 404))
async def get_project(project_id: ProjectId, session: SessionDep, principal: CurrentPrincipal) -> Any:
    return await svc.page(session, await svc.visible(session, principal, project_id))


@router.get("/me/projects", response_model=list[ProjectSummary], summary="My organisation's projects",
            responses=problem_responses(401))
async def my_projects(session: SessionDep, principal: CurrentPrincipal) -> Any:
    return [ProjectSummary.model_validate(p, from_attributes=True) for p in await svc.mine(session, principal)]


@router.post(
    "/projects/{project_id}/stages/{stage_key}/applications", status_code=201, response_model=ProjectRead,
    openapi_extra=ORG_AGENT,
    summary="One stage application (一表申请): accepted once, dispatched to every item of the stage",
    description="The centre accepts the stage once (统一受理) and dispatches one application per item (统一分派), "
                "each with its department's own limit. 409 when the previous stage is not completed.",
    responses=merge_responses(problem_responses(401, 403, 404, 409, 422), {201: {"headers": CREATED_ETAG}}),
)
async def apply_for_stage(project_id: ProjectId, stage_key: StageKey, body: StageApplicationCreate,
                          session: SessionDep, principal: CurrentPrincipal, response: Response) -> Any:
    project = await svc.apply_for_stage(
        session, principal, project_id, stage_key, form=body.form, service_point=body.service_point,
        materials=[svc.StageMaterial(**m.model_dump()) for m in body.materials])
    return etag_of_created(response, await svc.page(session, project))
