"""Organisations (keyed by credit code), their agents (经办人) and delegations (委托代办)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.api.common import ContextDep, created, model_etag, org_read, retry_after, with_etag
from services.identity.api.schemas import (
    AgentAppoint,
    AgentRead,
    DelegationCreate,
    DelegationRead,
    OrganisationCreate,
    OrganisationRead,
    PrincipalOut,
)
from services.identity.service import organisations
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.http_errors import problem_responses
from shared.idempotency import run_idempotent
from shared.privacy import mask_id_number
from shared.types import utcnow

router = APIRouter(tags=["organisations and delegation"])


def delegation_read(d: Any) -> DelegationRead:
    return DelegationRead(id=d.id, principal=PrincipalOut(kind=d.principal_kind, id=d.principal_id),
                          agent_id=d.agent_id, items=d.items, valid_until=d.valid_until, granted_at=d.granted_at,
                          revoked_at=d.revoked_at)


@router.post(
    "/organisations", status_code=201, response_model=OrganisationRead,
    summary="Register an organisation (法人注册), checked against the legal-person registry",
    description="""The caller registers in their own name (not under a delegation), with a real-name account
(`assurance_level` ≥ 2, else 403 `assurance-level-too-low`), and `legal_representative_id_number` must be the
caller's own ID number (403 otherwise). The credit code is checked by GB 32100 (rules `length`, `format`,
`check_digit`), then against the legal-person registry through datashare (logged for the organisation with the
purpose `实名核验 organisation registration`):

* the registry does not hold the credit code → 422 on `body.credit_code`, rule `not_in_registry`;
* it holds it under another name → 422 on `body.name`, rule `registry_mismatch`;
* it is deregistered or revoked → 422 on `body.credit_code`, rule `inactive`;
* it names someone else as legal representative → 403 `not-legal-representative`;
* the registry cannot be reached → 503 `registry-unavailable`.

Nothing is created unless all of it holds. Publishes `yimen.identity.organisation.registered`.
`Idempotency-Key` makes a retry safe (a repeat answers the first answer with `Idempotent-Replayed: true`).""",
    responses={**problem_responses(401, 403, 409, 422), **retry_after(503),
               **created(OrganisationRead, "The organisation is registered.", idempotent=True)},
)
async def register_organisation(
    body: OrganisationCreate, request: Request, ctx: ContextDep, principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> JSONResponse:
    now = utcnow()
    reg = organisations.organisation_registration(
        credit_code_raw=body.credit_code, name=body.name,
        legal_representative_id_number=body.legal_representative_id_number)

    async def registry_check() -> None:
        await organisations.check_with_registry(ctx, reg, principal, now=now)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        org = await organisations.register(session, reg, principal, now=utcnow())
        return 201, org_read(org, "legal_representative").model_dump(mode="json")

    return with_etag(await run_idempotent(
        request, key=idempotency_key, scope=f"identity.organisations:{principal.subject}",
        payload=body.model_dump(mode="json"), work=work, prepare=registry_check))


@router.post(
    "/organisations/{credit_code}/agents", status_code=201, response_model=AgentRead,
    summary="Appoint an agent (经办人) of the organisation (legal representative only)",
    description="The agent then logs in with `organisation=<credit code>` and gets `roles=[org_agent]`, `org`.",
    responses={**problem_responses(401, 403, 404, 422), **created(AgentRead, "The agent is appointed.")},
)
async def appoint_agent(credit_code: str, body: AgentAppoint, session: SessionDep, response: Response,
                        principal: CurrentPrincipal) -> AgentRead:
    agent, row = await organisations.appoint_agent(session, principal, credit_code, id_number=body.id_number,
                                                   now=utcnow())
    read = AgentRead(person_id=agent.id, name=agent.name, id_number=mask_id_number(agent.id_number) or "",
                     appointed_at=row.appointed_at)
    response.headers["ETag"] = model_etag(read)
    return read


@router.get(
    "/organisations/{credit_code}/agents", response_model=list[AgentRead],
    summary="The organisation's agents (legal representative only)", responses=problem_responses(401, 403, 404, 422),
)
async def list_agents(credit_code: str, session: SessionDep, principal: CurrentPrincipal) -> list[AgentRead]:
    return [AgentRead(person_id=p.id, name=p.name, id_number=mask_id_number(p.id_number) or "",
                      appointed_at=a.appointed_at)
            for a, p in await organisations.agents(session, principal, credit_code)]


@router.delete(
    "/organisations/{credit_code}/agents/{person_id}", status_code=204,
    summary="Withdraw an agent's appointment (legal representative only)",
    responses=problem_responses(401, 403, 404, 422),
)
async def remove_agent(credit_code: str, person_id: str, session: SessionDep, principal: CurrentPrincipal) -> Response:
    await organisations.remove_agent(session, principal, credit_code, person_id, now=utcnow())
    return Response(status_code=204)


@router.post(
    "/delegations", status_code=201, response_model=DelegationRead, summary="Grant a delegation (委托代办)",
    description="A person grants another registered person the right to act for them (or, with `organisation`, "
    "the legal representative grants it for the organisation), for the listed items or all (`items: null`), "
    "until `valid_until`. The agent logs in with `delegation=<id>` and the token's `act` names the principal, "
    "so every act records both identities. Publishes `yimen.identity.delegation.granted`; the principal is "
    "`{kind: person, id: account id}` or `{kind: organisation, id: credit code}`. `Idempotency-Key` makes a "
    "retry safe (a repeat answers the first answer with `Idempotent-Replayed: true`).",
    responses={**problem_responses(401, 403, 404, 422),
               **created(DelegationRead, "The delegation is granted.", idempotent=True)},
)
async def grant_delegation(
    body: DelegationCreate, request: Request, principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> JSONResponse:
    async def work(session: AsyncSession) -> tuple[int, Any]:
        d = await organisations.grant_delegation(
            session, principal, agent_id_number=body.agent_id_number, items=body.items,
            valid_until=body.valid_until, organisation=body.organisation, now=utcnow())
        return 201, delegation_read(d).model_dump(mode="json")

    return with_etag(await run_idempotent(
        request, key=idempotency_key, scope=f"identity.delegations:{principal.subject}",
        payload=body.model_dump(mode="json"), work=work))


@router.get("/delegations", response_model=list[DelegationRead],
            summary="Delegations I granted (also for organisations I represent) or received",
            responses=problem_responses(401, 403))
async def list_delegations(session: SessionDep, principal: CurrentPrincipal) -> list[DelegationRead]:
    return [delegation_read(d) for d in await organisations.delegations(session, principal)]


@router.get("/delegations/{delegation_id}", response_model=DelegationRead,
            summary="One delegation (its principal or agent)", responses=problem_responses(401, 403, 404))
async def get_delegation(delegation_id: str, session: SessionDep, principal: CurrentPrincipal) -> DelegationRead:
    return delegation_read(await organisations.delegation(session, principal, delegation_id))


@router.post("/delegations/{delegation_id}/revocation", response_model=DelegationRead,
             summary="Revoke a delegation (idempotent)", responses=problem_responses(401, 403, 404))
async def revoke_delegation(delegation_id: str, session: SessionDep, principal: CurrentPrincipal) -> DelegationRead:
    return delegation_read(await organisations.revoke_delegation(session, principal, delegation_id, now=utcnow()))


@router.delete("/delegations/{delegation_id}", response_model=DelegationRead,
               summary="Revoke a delegation (same as POST …/revocation)", responses=problem_responses(401, 403, 404))
async def delete_delegation(delegation_id: str, session: SessionDep, principal: CurrentPrincipal) -> DelegationRead:
    return delegation_read(await organisations.revoke_delegation(session, principal, delegation_id, now=utcnow()))
