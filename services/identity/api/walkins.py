"""Walk-ins (窗口代录, 帮办代办): a window clerk registers the person at the counter, who has no account, and the
person claims that account online later with the code printed on their slip."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.identity import service
from services.identity.api.common import check_new_password, citizen_id, person_read
from services.identity.api.schemas import PersonRead, WalkInClaim, WalkInCreate, WalkInRead
from services.identity.domain import walkin
from services.identity.domain.numbers import NumberInvalid, normalise_phone
from services.identity.registry import RegistryClient
from services.identity.runtime import RuntimeDep
from services.identity.store import people
from shared.auth import WINDOW_CLERK, Principal, require_roles
from shared.db import Database
from shared.errors import Forbidden, invalid
from shared.http_errors import problem_responses
from shared.types import utcnow

router = APIRouter(tags=["people"])


@router.post(
    "/walk-ins",
    status_code=201,
    response_model=WalkInRead,
    summary="A window clerk registers the person at the counter (窗口代录): level 3, claimable online later",
    description="""For window clerks (their service point from the staff record is recorded). The clerk holds the
person's ID card:

* the number has an account → the name must be the account's (422 `card_mismatch`); the card check raises it to
  level 3 (as `POST /people/{id}/in-person-verification`); 200, `created: false`;
* no account → name and number are matched against the population registry (as a registration; another name there
  → 422 `registry_mismatch`, nothing created; unreachable → 503), and an account is opened at level 3 with no
  password (nobody can sign in to it yet): 201, `created: true`, `yimen.identity.person.registered` and
  `.assurance_raised` (with the point). The answer carries a one-time `claim_code` for the slip: with it
  the person claims the account at `POST /people/claims`. A walk-in for an account still unclaimed issues a new
  code and voids the old.

Audited: the in-person check (clerk, point, document, time) and a look-up the person reads at `GET /me/lookups`.""",
    responses={200: {"model": WalkInRead, "description": "The person already had an account (`created: false`)."},
               201: {"description": "An account was opened now (`created: true`)."},
               **problem_responses(401, 403, 409, 422, 503)},
)
async def register_walk_in(body: WalkInCreate, request: Request, response: Response,
                           principal: Principal = require_roles(WINDOW_CLERK)) -> WalkInRead:
    now = utcnow()
    if not principal.service_point:
        raise Forbidden("A window clerk's token names the service point where the card was checked.")
    name = body.name.strip()
    if not name:
        raise invalid("body.name", "missing", "The name is empty.")
    cid = citizen_id("body.id_number", body.id_number, now.date())
    try:
        phone = normalise_phone(body.phone)
    except NumberInvalid as exc:
        raise invalid("body.phone", exc.rule, exc.message) from None
    db: Database = request.app.state.db
    async with db.transaction() as session:
        known = await people.person_by_id_number(session, cid.number) is not None
    verdict: str | None = None
    if not known:
        # Outside any transaction (no HTTP call while a row is locked), as at registration.
        verdict = await RegistryClient.of(request).match_person(id_number=cid.number, name=name)
        if verdict == "name_mismatch":
            raise invalid("body.name", "registry_mismatch", "姓名与人口库中该身份证号码登记的姓名不一致，请核对身份证。"
                          "The name does not match the population registry's record for this ID number.")
    async with db.transaction() as session:
        w = await service.register_walk_in(
            session, clerk=principal, id_number=cid.number, birth_date=cid.birth_date, sex=cid.sex, name=name,
            phone=phone, document=body.document, note=(body.note or "").strip() or None,
            registry_verdict=verdict, now=now)
        read = WalkInRead(person=person_read(w.person, is_self=False, roles=principal.roles), created=w.created,
                          registry=w.registry_verdict,  # type: ignore[arg-type]
                          claim_code=w.claim_code, claim_expires_at=w.claim_expires_at,
                          service_point=principal.service_point, clerk_id=principal.subject)
    response.status_code = 201 if w.created else 200
    response.headers["Cache-Control"] = "no-store"
    return read


@router.post(
    "/people/claims",
    response_model=PersonRead,
    summary="Claim online the account a window clerk opened (认领窗口代录账户) with the code on the slip",
    description=f"""For the person a clerk registered at a window: ID number, name and the one-time `claim_code`
printed on their receipt slip, and the password they choose (policy as `POST /people`). The account becomes
theirs: they sign in with it and see the applications filed for them. Any mismatch — unknown number, another
name, a wrong, used or expired code, an account already claimed — is the same 422 on `body.claim_code` (rule
`claim_refused`), so nothing is learnt about who has an account. {walkin.MAX_CLAIM_FAILURES} wrong codes void
it; the code lives {walkin.CLAIM_DAYS} days. A lost or void code: any window checks the ID card again and either
prints a new code or lets the person type a password there.""",
    responses=problem_responses(422),
)
async def claim_walk_in(body: WalkInClaim, request: Request, rt: RuntimeDep) -> PersonRead:
    now = utcnow()
    cid = citizen_id("body.id_number", body.id_number, now.date())
    check_new_password("body.password", body.password, body.name, cid.number)
    # Hashed before the look-up: a refusal takes as long as a success.
    hashed = rt.passwords.hash(body.password)
    db: Database = request.app.state.db
    async with db.transaction() as session:
        person = await service.claim_walk_in(session, id_number=cid.number, name=body.name.strip(),
                                             code=body.claim_code, password_hash=hashed, now=now)
        read = person_read(person, is_self=True) if person else None
    # The wrong try is committed (it counts against the code) before the refusal.
    if read is None:
        raise invalid("body.claim_code", "claim_refused", walkin.REFUSED)
    return read
