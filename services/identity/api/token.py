"""Login and tokens: the OAuth2 token endpoint, logout (one login or everywhere), password change, account lock,
the revocation list, the JWKS and key rotation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.api.common import NO_STORE_HEADERS, PUBLIC, retry_after
from services.identity.api.schemas import AccountKind, PasswordChange, RefreshTokenBody, TokenResponse
from services.identity.runtime import IdentityRuntime, RuntimeDep
from services.identity.service import tokens
from shared.auth import ADMIN, CurrentPrincipal, Principal, require_roles
from shared.db import SessionDep
from shared.errors import Problem
from shared.http_errors import problem_response, problem_responses
from shared.ratelimit import limiter_for
from shared.types import utcnow

router = APIRouter(tags=["tokens"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


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
    responses={200: {"description": "The tokens.", "headers": NO_STORE_HEADERS},
               **problem_responses(400, 401, 403, 422), **retry_after(429)},
    openapi_extra=PUBLIC,
)
async def token(
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    grant_type: Annotated[str, Form(max_length=40, description="`password`, `refresh_token` or `client_credentials`.",
                                    json_schema_extra={"enum": ["password", "refresh_token", "client_credentials"]})],
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
    result = await tokens.grant(
        session, rt, grant_type=grant_type, username=username, password=password, refresh_token=refresh_token,
        client_id=client_id, client_secret=client_secret, organisation=organisation, delegation=delegation,
        authorization=authorization, now=utcnow())
    if isinstance(result, Problem):
        # Returned, not raised: the failure count or the family revocation must commit.
        return problem_response(result)
    return JSONResponse(result.body(), headers=_NO_STORE)


@router.post(
    "/logout",
    status_code=204,
    summary="Log out: revoke a refresh token and every token rotated from it",
    description="Always 204 (an unknown token reveals nothing). Access tokens of this login already issued expire "
    "on their own within 15 minutes; to end them at once everywhere, use `POST /me/logout-everywhere`. No access "
    "token needed: the refresh token is the credential.",
    responses=problem_responses(422), openapi_extra=PUBLIC,
)
async def logout(body: RefreshTokenBody, session: SessionDep) -> Response:
    await tokens.logout(session, refresh_token=body.refresh_token, now=utcnow())
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
    await tokens.logout_everywhere(session, principal, now=utcnow())
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
    await tokens.change_password(session, rt, principal, current_password=body.current_password,
                                 new_password=body.new_password, now=utcnow())
    return Response(status_code=204)


AccountId = Annotated[str, Path(max_length=32, description="A person's or staff member's account id.")]


class AccountLock(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"kind": "person", "reason": "账户被盗用，本人来电申请冻结"}]})

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
    await tokens.lock_account(session, principal, kind=body.kind, account_id=account_id, now=utcnow())
    return Response(status_code=204)


@router.delete(
    "/accounts/{account_id}/lock", status_code=204, summary="Unlock an account (admin)",
    responses=problem_responses(401, 403, 404, 422),
)
async def unlock_account(account_id: AccountId, session: SessionDep, kind: Annotated[Literal["person", "staff"], Query()],
                         principal: Principal = require_roles(ADMIN)) -> Response:
    await tokens.unlock_account(session, kind=kind, account_id=account_id)
    return Response(status_code=204)


class RevocationRead(BaseModel):
    account_id: str
    account_kind: AccountKind
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
    responses={200: {"description": "The list.", "headers": {"Cache-Control": {
        "description": "`no-cache`.", "schema": {"type": "string"}}}}},
    openapi_extra=PUBLIC,
)
async def token_revocations(session: SessionDep, rt: RuntimeDep) -> JSONResponse:
    return JSONResponse(
        (await revocation_list(session, rt, utcnow())).model_dump(mode="json"),
        headers={"Cache-Control": "no-cache"},
    )


async def revocation_list(session: AsyncSession, rt: IdentityRuntime, now: datetime) -> RevocationList:
    """The list as identity's own verifier and `GET /token-revocations` give it."""
    result = await tokens.revocation_list(session, rt, now)
    return RevocationList(horizon_seconds=result.horizon_seconds, revocations=[
        RevocationRead(account_id=r.account_id, account_kind=r.account_kind,  # type: ignore[arg-type]
                       not_before=r.not_before, reason=r.reason)
        for r in result.revocations])


class Jwk(BaseModel):
    """An Ed25519 public key (RFC 8037)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    use: str | None = None
    alg: str | None = None


class Jwks(BaseModel):
    keys: list[Jwk]


class KeyRotation(BaseModel):
    kid: str
    created_at: datetime
    retired_previous: bool


@router.get(
    "/.well-known/jwks.json",
    summary="Public keys that verify identity's tokens (JWKS)",
    description="The current key and rotated-out keys until their last token has expired. Cache it; refetch when a "
    "token names an unknown `kid`.",
    response_model=Jwks,
    responses={200: {"description": "The key set.", "headers": {"Cache-Control": {
        "description": "`public, max-age=60`.", "schema": {"type": "string"}}}}},
    openapi_extra=PUBLIC,
)
async def jwks(session: SessionDep, rt: RuntimeDep) -> JSONResponse:
    body = await tokens.jwks(session, rt, utcnow())
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})


@router.post(
    "/keys/rotate",
    summary="Rotate the signing key (admin)",
    description="New tokens are signed with a new key at once. The old key stays in the JWKS for the access-token "
    "lifetime, unless `retire_previous=true` (a compromised key), which withdraws every earlier key now and so "
    "invalidates their tokens.",
    response_model=KeyRotation,
    responses=problem_responses(401, 403),
)
async def rotate_keys(
    session: SessionDep, rt: RuntimeDep,
    retire_previous: Annotated[bool, Query(description="Withdraw earlier keys immediately.")] = False,
    principal: Principal = require_roles(ADMIN),
) -> KeyRotation:
    row = await tokens.rotate_keys(session, rt, retire_previous=retire_previous, now=utcnow())
    return KeyRotation(kid=row.kid, created_at=row.created_at, retired_previous=retire_previous)
