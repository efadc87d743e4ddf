"""Login and tokens: the OAuth2 token endpoint, logout (one login or everywhere), password change, account lock,
the revocation list, the JWKS and key rotation."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.api import token_flow
from services.identity.api.common import check_new_password
from services.identity.api.schemas import PasswordChange, RefreshTokenBody, TokenResponse
from services.identity.domain.tokens import secret_digest
from services.identity.runtime import IdentityRuntime, RuntimeDep
from services.identity.service import revoke_tokens
from services.identity.store import accounts, people
from services.identity.store.tables import Person
from shared.auth import ADMIN, CurrentPrincipal, Principal, require_roles
from shared.db import SessionDep
from shared.errors import BadRequest, Forbidden, NotFound, Problem
from shared.http_errors import problem_response, problem_responses
from shared.ratelimit import limiter_for
from shared.types import utcnow

router = APIRouter(tags=["tokens"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _basic_credentials(authorization: str | None) -> tuple[str | None, str | None]:
    if not authorization or not authorization.lower().startswith("basic "):
        return None, None
    try:
        raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        client_id, _, secret = raw.partition(":")
        return client_id, secret
    except Exception:
        raise token_flow.InvalidClient("Malformed HTTP Basic credentials.") from None


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="OAuth2 token endpoint",
    description="""Form-encoded (RFC 6749). Grants:

* `password`: `username` = citizen ID number (persons) or login name (staff), `password`; optional
  `organisation` (credit code: the person must be its legal representative or an appointed agent → roles
  `[org_agent]`, claim `org`) or `delegation` (a delegation id granted to this person → claim `act`).
  Five failed attempts lock the username for 15 minutes: 429 `account-locked` with `retry_after` seconds.
* `refresh_token`: rotates the refresh token; presenting a used or revoked one revokes the whole login.
* `client_credentials`: department systems, `client_id`/`client_secret` as form fields or HTTP Basic.

Access tokens are EdDSA (Ed25519) JWTs, 15 minutes, header `kid`, verifiable with
`/identity/v1/.well-known/jwks.json`. Claims: `iss`=`yimen-identity`, `aud`=`yimen`, `exp`, `iat`, `jti`,
`sub` (account id), `kind` (`person`|`staff`|`department_system`), `roles`, `name`, and where relevant `hid`
(the person's ID number), `level` (persons: identity assurance 1-3), `dept`, `point`, `org`, `act`
(`{sub, kind, hid, delegation, items, level}`). An account locked by an administrator gets 403 `account-disabled`
(only once the password is right).""",
    responses=problem_responses(400, 401, 403, 422, 429),
)
async def token(
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    grant_type: Annotated[str, Form(description="`password`, `refresh_token` or `client_credentials`.")],
    username: Annotated[str | None, Form(max_length=64)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
    organisation: Annotated[str | None, Form(max_length=64, description="Credit code to act for.")] = None,
    delegation: Annotated[str | None, Form(max_length=64, description="Delegation id to act under.")] = None,
    scope: Annotated[str | None, Form(max_length=500, description="Ignored: roles decide.")] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> JSONResponse:
    # Per client address, before any password is checked: the lock-out guards one username, this guards the
    # endpoint against one client trying many.
    limits = request.app.state.settings.platform
    await limiter_for(request.app.state, "login", limits.login_rate_per_minute).check(
        request.client.host if request.client else "unknown", "sign-in attempts")
    now = utcnow()
    result: token_flow.IssuedTokens | Problem
    if grant_type == "password":
        if not username or password is None:
            raise BadRequest("username and password are required.", slug="invalid-request", error="invalid_request")
        result = await token_flow.password_grant(
            session, rt, username=username, password=password, organisation=organisation or None,
            delegation=delegation or None, now=now)
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise BadRequest("refresh_token is required.", slug="invalid-request", error="invalid_request")
        result = await token_flow.refresh_grant(session, rt, token=refresh_token, now=now)
    elif grant_type == "client_credentials":
        basic_id, basic_secret = _basic_credentials(authorization)
        result = await token_flow.client_credentials_grant(
            session, rt, client_id=client_id or basic_id, client_secret=client_secret or basic_secret, now=now)
    else:
        raise BadRequest(f"grant_type {grant_type!r} is not supported.", slug="unsupported-grant-type",
                         error="unsupported_grant_type")
    if isinstance(result, Problem):
        # Returned, not raised: the failure count or the family revocation must commit.
        return problem_response(result)
    return JSONResponse(result.body(), headers=_NO_STORE)


@router.post(
    "/logout",
    status_code=204,
    summary="Log out: revoke a refresh token and every token rotated from it",
    description="Always 204 (an unknown token reveals nothing). Access tokens of this login already issued expire "
    "on their own within 15 minutes; to end them at once everywhere, use `POST /me/logout-everywhere`.",
)
async def logout(body: RefreshTokenBody, session: SessionDep) -> Response:
    row = await accounts.refresh_by_hash(session, secret_digest(body.refresh_token))
    if row is not None:
        await accounts.revoke_family(session, row.family_id, utcnow())
    return Response(status_code=204)


@router.post(
    "/me/logout-everywhere",
    status_code=204,
    summary="Log out everywhere: every refresh token and every access token of my account stop working",
    description="Refresh tokens are revoked at once; access tokens issued until now are refused by every service "
    "within seconds (event `yimen.identity.account.tokens_revoked`, see `GET /token-revocations`). A login after "
    "this call works normally.",
    responses=problem_responses(401, 403),
)
async def logout_everywhere(session: SessionDep, principal: CurrentPrincipal) -> Response:
    if principal.kind not in ("person", "staff"):
        raise Forbidden("Department systems rotate their secret instead.")
    await revoke_tokens(session, account_kind=principal.kind, account_id=principal.subject, now=utcnow(),
                        reason="logout_everywhere")
    return Response(status_code=204)


@router.post(
    "/me/password",
    status_code=204,
    summary="Change one's password: every refresh and access token of the account stops working",
    description="The new password is judged by a strength estimator (zxcvbn, score 3 of 4 at least; passwords "
    "built from the account's name, ID number, birth date or phone count as guessed): 422 `password_policy` "
    "says why. Every earlier token of the account is revoked everywhere within seconds (event "
    "`yimen.identity.account.tokens_revoked`); log in again with the new password.",
    responses=problem_responses(401, 403, 422),
)
async def change_password(body: PasswordChange, session: SessionDep, rt: RuntimeDep,
                          principal: CurrentPrincipal) -> Response:
    now = utcnow()
    if principal.kind == "person":
        account = await people.person_by_id(session, principal.subject)
    elif principal.kind == "staff":
        account = await accounts.staff_by_id(session, principal.subject)
    else:
        raise Forbidden("Department systems have secrets, not passwords: rotate the secret instead.")
    if account is None:
        raise NotFound("The account no longer exists.")
    if not rt.passwords.verify(account.password_hash, body.current_password):
        raise Forbidden("The current password is wrong.", slug="wrong-password")
    if isinstance(account, Person):
        check_new_password("body.new_password", body.new_password, account.name, account.id_number, account.phone)
    else:
        check_new_password("body.new_password", body.new_password, account.name, account.username)
    account.password_hash = rt.passwords.hash(body.new_password)
    if hasattr(account, "password_changed_at"):
        account.password_changed_at = now
    await revoke_tokens(session, account_kind=principal.kind, account_id=principal.subject, now=now,
                        reason="password_changed")
    return Response(status_code=204)


AccountId = Annotated[str, Path(max_length=32, description="A person's or staff member's account id.")]


class AccountLock(BaseModel):
    kind: Literal["person", "staff"] = Field(description="Which account `account_id` names.")
    reason: str = Field(min_length=2, max_length=200, description="Why (kept in the log line and the event).")


@router.post(
    "/accounts/{account_id}/lock", status_code=204, summary="Lock an account (admin): no login, every token revoked",
    description="For a stolen or abused account: sign-in and refresh answer 403/400 until it is unlocked, and every "
    "access token already issued is refused by every service within seconds.",
    responses=problem_responses(401, 403, 404, 422),
)
async def lock_account(account_id: AccountId, body: AccountLock, session: SessionDep,
                       principal: Principal = require_roles(ADMIN)) -> Response:
    account = await (people.person_by_id(session, account_id) if body.kind == "person"
                     else accounts.staff_by_id(session, account_id))
    if account is None:
        raise NotFound(f"No {body.kind} account {account_id}.")
    if body.kind == "staff" and account_id == principal.subject:
        raise Forbidden("An administrator cannot lock their own account.")
    now = utcnow()
    account.locked_at = now
    await revoke_tokens(session, account_kind=body.kind, account_id=account_id, now=now, reason="account_locked")
    return Response(status_code=204)


@router.delete(
    "/accounts/{account_id}/lock", status_code=204, summary="Unlock an account (admin)",
    responses=problem_responses(401, 403, 404, 422),
)
async def unlock_account(account_id: AccountId, session: SessionDep, kind: Annotated[Literal["person", "staff"], Query()],
                         principal: Principal = require_roles(ADMIN)) -> Response:
    account = await (people.person_by_id(session, account_id) if kind == "person"
                     else accounts.staff_by_id(session, account_id))
    if account is None:
        raise NotFound(f"No {kind} account {account_id}.")
    account.locked_at = None
    return Response(status_code=204)


class RevocationRead(BaseModel):
    account_id: str
    account_kind: str
    not_before: datetime = Field(description="Access tokens of this account issued (`iat`) before it are refused.")
    reason: str


class RevocationList(BaseModel):
    revocations: list[RevocationRead]
    horizon_seconds: int = Field(description="Older revocations are left out: every token they refuse has expired.")


@router.get(
    "/token-revocations", response_model=RevocationList,
    summary="Accounts whose earlier access tokens are revoked (every service fetches it with the JWKS)",
    description="The current revocation list: what a service that starts later (or missed events) needs to refuse "
    "revoked tokens. New revocations arrive as `yimen.identity.account.tokens_revoked` events. Public like the "
    "JWKS: it holds opaque account ids and times, no personal data.",
)
async def token_revocations(session: SessionDep, rt: RuntimeDep) -> JSONResponse:
    return JSONResponse(
        (await revocation_list(session, rt, utcnow())).model_dump(mode="json"),
        headers={"Cache-Control": "no-cache"},
    )


async def revocation_list(session: AsyncSession, rt: IdentityRuntime, now: datetime) -> RevocationList:
    # A token lives at most the access lifetime (plus verifiers' leeway): older revocations refuse nothing alive.
    horizon = rt.access_ttl + timedelta(minutes=5)
    rows = await accounts.revocations_since(session, now - horizon)
    return RevocationList(horizon_seconds=int(horizon.total_seconds()), revocations=[
        RevocationRead(account_id=r.account_id, account_kind=r.account_kind, not_before=r.not_before, reason=r.reason)
        for r in rows])


@router.get(
    "/.well-known/jwks.json",
    summary="Public keys that verify identity's tokens (JWKS)",
    description="The current key and rotated-out keys until their last token has expired. Cache it; refetch when a "
    "token names an unknown `kid`.",
)
async def jwks(session: SessionDep, request: Request) -> JSONResponse:
    body = await request.app.state.identity.keyring.jwks(session, utcnow())
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})


@router.post(
    "/keys/rotate",
    summary="Rotate the signing key (admin)",
    description="New tokens are signed with a new key at once. The old key stays in the JWKS for the access-token "
    "lifetime, unless `retire_previous=true` (a compromised key), which withdraws every earlier key now and so "
    "invalidates their tokens.",
    responses=problem_responses(401, 403),
)
async def rotate_keys(
    session: SessionDep, rt: RuntimeDep,
    retire_previous: Annotated[bool, Query(description="Withdraw earlier keys immediately.")] = False,
    principal: Principal = require_roles(ADMIN),
) -> dict[str, object]:
    now = utcnow()
    await rt.keyring.ensure_key(session, now)
    row = await rt.keyring.rotate(session, now, keep_old_for=rt.access_ttl + timedelta(minutes=1), retire_previous=retire_previous)
    return {"kid": row.kid, "created_at": row.created_at.isoformat(), "retired_previous": retire_previous}
