"""Routes of project types and their stages (issue 17): public reads, admin upsert. Thin."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from services.catalog.api.public import PUBLIC
from services.catalog.domain.project_types import KEY, ProjectTypeContent
from services.catalog.events.contracts import ProjectTypePublished
from services.catalog.service import project_types as svc
from shared.auth import ADMIN, Principal, require_roles
from shared.db import SessionDep
from shared.http_errors import problem_responses

router = APIRouter(tags=["projects"])

Admin = Annotated[Principal, require_roles(ADMIN)]
TypeKey = Annotated[str, Path(pattern=KEY, description="A project type's key, e.g. `enterprise_investment`.")]

#: The example makes a project type of its own (the demo's `enterprise_investment` stays as the demo loads it).
NewTypeKey = Annotated[str, Path(pattern=KEY, description="A project type's key, e.g. `enterprise_investment`.",
                                 openapi_examples={"new": {"summary": "A new project type", "value": "factory_small"}})]


@router.get("/project-types", response_model=list[ProjectTypePublished], openapi_extra=PUBLIC,
            summary="Project types and their stages (public)")
async def list_project_types(session: SessionDep) -> Any:
    return await svc.read_all(session)


@router.get("/project-types/{key}", response_model=ProjectTypePublished, openapi_extra=PUBLIC,
            summary="One project type: ordered stages, their items, each provider's limit (public)",
            responses=problem_responses(404))
async def get_project_type(key: TypeKey, session: SessionDep) -> Any:
    return await svc.read(session, key)


@router.put("/project-types/{key}", response_model=ProjectTypePublished,
            summary="Create or replace a project type (admin); each department's limit must be within its stage's",
            responses=problem_responses(401, 403, 422))
async def put_project_type(key: NewTypeKey, body: ProjectTypeContent, session: SessionDep, principal: Admin) -> Any:
    await svc.upsert(session, key=key, content=body, actor=f"{principal.kind}:{principal.subject}")
    return await svc.read(session, key)
