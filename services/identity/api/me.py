"""The caller's own account (`GET /me`) and who looked them up."""

from __future__ import annotations

from fastapi import APIRouter, Request

from services.identity.api.orgs import acting_person, org_read
from services.identity.api.schemas import AssuranceRead, LookupAuditRead, MeRead
from services.identity.domain import assurance
from services.identity.domain.assurance import note_for
from services.identity.registry import RegistryClient
from services.identity.service import raise_assurance
from services.identity.store import accounts, people
from shared.auth import CurrentPrincipal
from shared.db import Database, SessionDep
from shared.errors import Conflict, NotFound
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
        acting = {"kind": principal.acting_for.kind, "id": principal.acting_for.subject,
                  "delegation": principal.acting_for.delegation}
    if principal.kind == "person":
        person = await people.person_by_id(session, principal.subject)
        if person is None:
            raise NotFound("The account behind this token no longer exists.")
        orgs = [org_read(o, cap) for o, cap in await people.organisations_of(session, person.id)]
        return MeRead(id=person.id, kind="person", name=person.name, roles=sorted(principal.roles),
                      id_number=person.id_number, phone=person.phone, birth_date=person.birth_date, sex=person.sex,
                      assurance_level=person.assurance_level,
                      assurance_note=note_for(person.assurance_level, person.assurance_basis),
                      organisations=orgs, acting_for=acting)
    if principal.kind == "staff":
        staff = await accounts.staff_by_id(session, principal.subject)
        if staff is None:
            raise NotFound("The account behind this token no longer exists.")
        return MeRead(id=staff.id, kind="staff", name=staff.name, roles=list(staff.roles), username=staff.username,
                      department=staff.department, service_point=staff.service_point)
    client = await accounts.client_by_id(session, principal.subject)
    if client is None:
        raise NotFound("The account behind this token no longer exists.")
    return MeRead(id=client.client_id, kind="department_system", name=client.name, roles=sorted(principal.roles),
                  department=client.department)


@router.get(
    "/me/lookups", response_model=list[LookupAuditRead], summary="Which staff looked me up, when and why",
    responses=problem_responses(401, 403),
)
async def my_lookups(session: SessionDep, principal: CurrentPrincipal) -> list[LookupAuditRead]:
    person = await acting_person(session, principal)
    return [LookupAuditRead(staff_id=r.staff_id, staff_roles=list(r.staff_roles), service_point=r.service_point,
                            reason=r.reason, assisted=r.assisted, at=r.at) for r in await people.lookups_of(session, person.id)]


@router.post(
    "/me/assurance/registry-check", response_model=AssuranceRead,
    summary="Check my self-registered account against the population registry again (实名核验)",
    description="For a level-1 account whose number the registry did not hold at registration (a number issued "
    "elsewhere, a registry updated since): the account's name and number are matched again; `match` raises it "
    "to level 2 (`yimen.identity.person.assurance_raised`), `not_found` leaves it at 1 with the note, a different "
    "name in the registry is 409 `registry-name-mismatch` (only a window's in-person check can settle it). A "
    "level 2 or 3 account is answered as it is. The check is in the person's access log at datashare. Log in "
    "again (or refresh) for a token with the new level.",
    responses=problem_responses(401, 403, 409, 503),
)
async def registry_recheck(request: Request, principal: CurrentPrincipal) -> AssuranceRead:
    db: Database = request.app.state.db
    async with db.transaction() as session:
        person = await acting_person(session, principal)
        current = AssuranceRead(assurance_level=person.assurance_level,
                                assurance_note=note_for(person.assurance_level, person.assurance_basis))
        id_number, name = person.id_number, person.name
    if current.assurance_level >= assurance.REGISTRY_MATCHED:
        return current
    # The registry is asked outside any transaction (no HTTP call while a row is locked).
    verdict = await RegistryClient.of(request).match_person(id_number=id_number, name=name)
    if verdict == "name_mismatch":
        raise Conflict("人口库中该身份证号码登记的姓名与本账户不一致，请携带居民身份证到政务服务窗口现场核验。The registry holds "
                       "this number under another name; an in-person check at a window settles it.",
                       slug="registry-name-mismatch")
    async with db.transaction() as session:
        person = await acting_person(session, principal)
        if verdict == "match":
            await raise_assurance(session, person, level=assurance.REGISTRY_MATCHED, basis="population_registry",
                                  now=utcnow())
        return AssuranceRead(assurance_level=person.assurance_level,
                             assurance_note=note_for(person.assurance_level, person.assurance_basis))
