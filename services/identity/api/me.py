"""The caller's own account (`GET /me`) and who looked them up."""

from __future__ import annotations

from fastapi import APIRouter

from services.identity.api.common import ContextDep, org_read, retry_after
from services.identity.api.schemas import ActingFor, AssuranceRead, LookupAuditRead, MeRead, StaffRole
from services.identity.domain.assurance import note_for
from services.identity.service import people
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.http_errors import problem_responses
from shared.types import utcnow

router = APIRouter(tags=["me"])


@router.get(
    "/me", response_model=MeRead, summary="Who am I",
    description="A person sees their own ID and phone numbers unmasked (the numbers are theirs; this is the only "
    "route that returns them in full), with the organisations they may act for and the `act` of the token. "
    "Staff see their roles, department and service point; department systems their department.",
    responses=problem_responses(401, 404),
)
async def me(session: SessionDep, principal: CurrentPrincipal) -> MeRead:
    acting = None
    if principal.acting_for is not None:
        acting = ActingFor(kind=principal.acting_for.kind, id=principal.acting_for.subject,  # type: ignore[arg-type]
                           delegation=principal.acting_for.delegation)
    mine = await people.me(session, principal)
    if mine.person is not None:
        person = mine.person
        return MeRead(id=person.id, kind="person", name=person.name, roles=sorted(principal.roles),  # type: ignore[arg-type]
                      id_number=person.id_number, phone=person.phone, birth_date=person.birth_date,
                      sex=person.sex, assurance_level=person.assurance_level,  # type: ignore[arg-type]
                      assurance_note=note_for(person.assurance_level, person.assurance_basis),
                      organisations=[org_read(o, cap) for o, cap in mine.organisations or []], acting_for=acting)
    if mine.staff is not None:
        staff = mine.staff
        return MeRead(id=staff.id, kind="staff", name=staff.name, roles=list(staff.roles),  # type: ignore[arg-type]
                      username=staff.username, department=staff.department, service_point=staff.service_point)
    assert mine.client is not None
    client = mine.client
    return MeRead(id=client.client_id, kind="department_system", name=client.name,  # type: ignore[arg-type]
                  roles=sorted(principal.roles), department=client.department)  # type: ignore[arg-type]


@router.get(
    "/me/lookups", response_model=list[LookupAuditRead], summary="Which staff looked me up, when and why",
    responses=problem_responses(401, 403),
)
async def my_lookups(session: SessionDep, principal: CurrentPrincipal) -> list[LookupAuditRead]:
    return [LookupAuditRead(staff_id=r.staff_id, staff_roles=[StaffRole(role) for role in r.staff_roles], service_point=r.service_point,
                            reason=r.reason, assisted=r.assisted, at=r.at)
            for r in await people.my_lookups(session, principal)]


@router.post(
    "/me/assurance/registry-check", response_model=AssuranceRead,
    summary="Check my self-registered account against the population registry again (实名核验)",
    description="For a level-1 account whose number the registry did not hold at registration (a number issued "
    "elsewhere, a registry updated since): the account's name and number are matched again; `match` raises it "
    "to level 2 (`yimen.identity.person.assurance_raised`), `not_found` leaves it at 1 with the note, a different "
    "name in the registry is 409 `registry-name-mismatch` (only a window's in-person check can settle it). A "
    "level 2 or 3 account is answered as it is. The check is in the person's access log at datashare. Log in "
    "again (or refresh) for a token with the new level.",
    responses={**problem_responses(401, 403, 409), **retry_after(503)},
)
async def registry_recheck(ctx: ContextDep, principal: CurrentPrincipal) -> AssuranceRead:
    person = await people.recheck_registry(ctx, principal, now=utcnow())
    return AssuranceRead(assurance_level=person.assurance_level,  # type: ignore[arg-type]
                         assurance_note=note_for(person.assurance_level, person.assurance_basis))
