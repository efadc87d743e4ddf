"""Walk-ins (窗口代录, 帮办代办): a window clerk registers the person at the counter, who has no account, and the
person claims that account online later with the code printed on their slip."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.identity.api.common import ETAG_HEADER, PUBLIC, ContextDep, model_etag, person_read, retry_after
from services.identity.api.schemas import PersonRead, WalkInClaim, WalkInCreate, WalkInRead
from services.identity.domain import walkin
from services.identity.service import people
from shared.auth import WINDOW_CLERK, Principal, require_roles
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
    responses={200: {"model": WalkInRead, "description": "The person already had an account (`created: false`).",
                     "headers": {"Cache-Control": {"description": "`no-store`: a new claim code may be in it.",
                                                   "schema": {"type": "string"}}}},
               **problem_responses(401, 403, 409, 422), **retry_after(503),
               201: {"model": WalkInRead, "description": "An account was opened now (`created: true`).",
                     "headers": {**ETAG_HEADER, "Cache-Control": {"description": "`no-store`: the claim code.",
                                                                  "schema": {"type": "string"}}}}},
)
async def register_walk_in(body: WalkInCreate, ctx: ContextDep, response: Response,
                           principal: Principal = require_roles(WINDOW_CLERK)) -> WalkInRead:
    w = await people.file_walk_in(ctx, principal, id_number=body.id_number, name=body.name, phone=body.phone,
                                  document=body.document, note=body.note, now=utcnow())
    read = WalkInRead(person=person_read(w.person, is_self=False, roles=principal.roles), created=w.created,
                      registry=w.registry_verdict,  # type: ignore[arg-type]
                      claim_code=w.claim_code, claim_expires_at=w.claim_expires_at,
                      service_point=principal.service_point or "", clerk_id=principal.subject)
    response.status_code = 201 if w.created else 200
    response.headers["Cache-Control"] = "no-store"
    if w.created:
        response.headers["ETag"] = model_etag(read)
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
    responses=problem_responses(422), openapi_extra=PUBLIC,
)
async def claim_walk_in(body: WalkInClaim, ctx: ContextDep) -> PersonRead:
    person = await people.claim(ctx, id_number=body.id_number, name=body.name, code=body.claim_code,
                                password=body.password, now=utcnow())
    return person_read(person, is_self=True)
