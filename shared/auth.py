"""Token verification for every service: identity signs short-lived JWTs (EdDSA) and publishes its keys at
`/identity/v1/.well-known/jwks.json`; every other service verifies locally from a cached JWKS.

Claims (the contract identity keeps):

| claim | meaning |
|---|---|
| `iss`, `aud`, `exp`, `iat`, `jti` | issuer `yimen-identity`, audience `yimen`, expiry, issue time, token id |
| `sub` | the account id (person, staff member or department system client) |
| `kind` | `person`, `staff` or `department_system` |
| `roles` | e.g. `citizen`, `org_agent`, `window_clerk`, `department_reviewer`, `supervisor`, `admin` |
| `name` | display name |
| `hid` | holder id: the person's citizen ID number (persons only; never logged) |
| `dept` | department code (staff and department systems) |
| `point` | service point code (window clerks) |
| `phone`, `unit` | staff: office phone and unit (科室) |
| `org` | credit code of the organisation an agent acts for |
| `act` | `{"sub", "kind", "hid", "delegation", "items", "level"}`: the principal this token acts for under a delegation |
| `level` | persons: identity assurance (实名核验) level, 1 self-registered, 2 matched against the population registry, 3 verified in person at a window (absent = 1) |

Revocation: identity publishes `yimen.identity.account.tokens_revoked` `{account_id, account_kind, not_before,
reason}` when a password changes, on logout-everywhere and on an account lock; every service's verifier keeps a
not-before time per subject (`JWKSVerifier.revoke`) and refuses a token issued earlier (`401 token-revoked`).
`shared/service.py` wires the event and identity's list (`GET /identity/v1/token-revocations`) into every
service, so a service started later learns the current revocations too.

Every request's token is verified; the signature only once per token and key set: `JWKSVerifier` remembers a
verified token by its SHA-256 (bounded, `max_cached`) and on each later use checks again its expiry, its
revocation and that the key that signed it is still the one published (a refetched key set checks the
signature again).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import Forbidden, Unauthorized
from shared.principal import (  # noqa: F401 - re-exported: routes import these from here
    ADMIN,
    CATALOG_EDITOR,
    CITIZEN,
    DEPARTMENT_REVIEWER,
    DEPARTMENT_SYSTEM,
    LEVEL_IN_PERSON,
    LEVEL_REGISTRY_MATCHED,
    LEVEL_SELF_REGISTERED,
    ORG_AGENT,
    STAFF_ROLES,
    SUPERVISOR,
    TOKENS_REVOKED,
    WINDOW_CLERK,
    ActingFor,
    Principal,
    _level,
)

log = logging.getLogger("yimen.auth")

ALLOWED_ALGORITHMS = ("EdDSA", "ES256")


JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class _Verified:
    """A token whose signature and claims were checked: what must still hold for it to pass again."""

    principal: Principal
    kid: str
    key: jwt.PyJWK  # the key object it was verified with: a refreshed key set makes it check the signature again
    exp: float
    iat_ms: int


def http_jwks_fetcher(url: str, client: httpx.AsyncClient | None = None) -> JwksFetcher:
    async def fetch() -> dict[str, Any]:
        if client is not None:
            r = await client.get(url, timeout=5)
        else:
            async with httpx.AsyncClient() as c:
                r = await c.get(url, timeout=5)
        r.raise_for_status()
        return r.json()

    return fetch


class JWKSVerifier:
    """Verifies tokens against a cached key set. An unknown `kid` triggers one refresh (at most every
    `min_refresh` seconds), which is how a rotated-in key is picked up; a rotated-out key disappears from the
    set at the next refresh and its tokens fail."""

    def __init__(
        self,
        fetch: JwksFetcher,
        *,
        issuer: str = "yimen-identity",
        audience: str = "yimen",
        ttl: float = 60.0,
        min_refresh: float = 5.0,
        leeway: float = 5.0,
        max_cached: int = 10_000,
    ) -> None:
        self.fetch = fetch
        self.issuer, self.audience = issuer, audience
        self.ttl, self.min_refresh, self.leeway = ttl, min_refresh, leeway
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        #: Subject → the earliest `iat` still accepted, in epoch milliseconds (identity's `iat` resolution; whole
        #: numbers so a parsed time and a token's `iat` compare exactly): tokens issued before it were revoked.
        self._not_before: dict[str, int] = {}
        #: SHA-256 of a token → its verification. A department system or a clerk sends one token for minutes;
        #: its Ed25519 check and PyJWT's claim checks were most of a request's authentication cost. Every use still
        #: checks what can change (expiry, revocation, the key still published, see `_cached`); the signature is
        #: checked again whenever the key set was refetched.
        self._verified: dict[bytes, _Verified] = {}
        self.max_cached = max_cached

    def revoke(self, subject: str, not_before: float) -> None:
        """Refuse the subject's tokens issued before `not_before` (epoch seconds). Never moves backwards, so an
        old event replayed or a stale list cannot revive revoked tokens."""
        nb = round(float(not_before) * 1000)
        if nb > self._not_before.get(subject, 0):
            self._not_before[subject] = nb

    def revoked_before(self, subject: str) -> float | None:
        nb = self._not_before.get(subject)
        return nb / 1000 if nb is not None else None

    def forget_revocations_before(self, epoch: float) -> int:
        """Drop entries so old that every token they refuse has expired anyway (memory stays bounded)."""
        old = [s for s, nb in self._not_before.items() if nb < epoch * 1000]
        for s in old:
            del self._not_before[s]
        return len(old)

    async def _refresh(self, *, force: bool = False) -> None:
        async with self._lock:
            now = time.monotonic()
            if not force and now - self._fetched_at < self.ttl and self._keys:
                return
            if force and now - self._fetched_at < self.min_refresh and self._keys:
                return
            try:
                data = await self.fetch()
            except Exception as exc:
                log.warning("jwks fetch failed: %r", exc)
                if not self._keys:
                    raise Unauthorized("The token cannot be checked now: the key set is unreachable.",
                                       detail_zh="暂时无法校验令牌：无法获取签名公钥。") from exc
                return
            keys = {}
            for k in data.get("keys", []):
                try:
                    keys[k["kid"]] = jwt.PyJWK(k)
                except Exception:  # an unusable key is skipped, not fatal
                    log.warning("skipping unusable jwk %s", k.get("kid"))
            self._keys = keys
            self._fetched_at = now

    def _cached(self, digest: bytes) -> Principal | None:
        """The principal of a token verified before, if it still passes: not expired (PyJWT's test, with the same
        leeway), verified with a key of the current set, and not revoked since. Anything else goes the full way
        (which says why it fails)."""
        hit = self._verified.get(digest)
        if hit is None:
            return None
        if hit.exp <= time.time() - self.leeway or self._keys.get(hit.kid) is not hit.key:
            del self._verified[digest]
            return None
        self._check_not_revoked(hit.principal.subject, hit.iat_ms)
        return hit.principal

    def _remember(self, digest: bytes, entry: _Verified) -> None:
        if self.max_cached <= 0:  # remembering switched off: every use checks the signature
            return
        if len(self._verified) >= self.max_cached:
            horizon = time.time() - self.leeway
            for d in [d for d, v in self._verified.items() if v.exp <= horizon]:
                del self._verified[d]
            while len(self._verified) >= self.max_cached:  # all alive: the oldest go first
                del self._verified[next(iter(self._verified))]
        self._verified[digest] = entry

    def _check_not_revoked(self, subject: str, iat_ms: int) -> None:
        not_before = self._not_before.get(subject)
        if not_before is not None and iat_ms < not_before:
            raise Unauthorized("This token was revoked (password changed, signed out everywhere or account locked); "
                               "sign in again.", slug="token-revoked",
                               detail_zh="此令牌已被撤销（密码已修改、已在所有设备退出或账户被锁定），请重新登录。")

    async def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        if digest in self._verified:
            await self._refresh()  # a key set past its TTL is refetched first, as for any token
            principal = self._cached(digest)
            if principal is not None:
                return principal
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("The token is malformed.", slug="invalid-token", detail_zh="令牌格式错误。") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise Unauthorized(f"Token algorithm {alg!r} is not accepted.", slug="invalid-token",
                               detail_zh=f"不接受令牌签名算法 {alg!r}。")
        await self._refresh()
        if kid not in self._keys:
            await self._refresh(force=True)
        key = self._keys.get(kid or "")
        if key is None:
            raise Unauthorized("The token was signed by an unknown or retired key.", slug="invalid-token",
                               detail_zh="令牌的签名密钥未知或已停用。")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The token has expired.", slug="token-expired", detail_zh="令牌已过期，请重新登录。") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"The token is not valid: {exc}.", slug="invalid-token",
                               detail_zh=f"令牌无效：{exc}。") from exc
        iat_ms = round(float(claims["iat"]) * 1000)
        self._check_not_revoked(str(claims["sub"]), iat_ms)
        principal = Principal.from_claims(claims)
        self._remember(digest, _Verified(principal, kid or "", key, float(claims["exp"]), iat_ms))
        return principal


RevocationsFetcher = Callable[[], Awaitable[dict[str, Any]]]


def _epoch(value: Any) -> float | None:
    from datetime import datetime

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def apply_revocation(verifier: JWKSVerifier, data: dict[str, Any]) -> bool:
    """One entry of identity's list, or the data of a `tokens_revoked` event: `{account_id, not_before}`."""
    subject, nb = data.get("account_id"), _epoch(data.get("not_before"))
    if not isinstance(subject, str) or not subject or nb is None:
        return False
    verifier.revoke(subject, nb)
    return True


def apply_revocation_list(verifier: JWKSVerifier, body: dict[str, Any]) -> int:
    """Identity's `GET /identity/v1/token-revocations`: `{"revocations": [{account_id, not_before, …}]}`."""
    return sum(apply_revocation(verifier, r) for r in body.get("revocations", []) if isinstance(r, dict))


def http_revocations_fetcher(url: str, client: httpx.AsyncClient | None = None) -> RevocationsFetcher:
    return http_jwks_fetcher(url, client)


async def sync_revocations(verifier: JWKSVerifier, fetch: RevocationsFetcher, *, interval: float,
                           horizon: float) -> None:
    """Fetch identity's revocation list now and every `interval` seconds: how a service that started after a
    revocation learns it, and a safety net for events missed while the bus was away. Entries older than
    `horizon` are forgotten (every token they refuse has expired)."""
    failures = 0
    while True:
        try:
            apply_revocation_list(verifier, await fetch())
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            # Identity may start after this service: say so once, not every few seconds.
            (log.warning if failures == 1 else log.debug)("revocation list fetch failed: %r", exc)
        verifier.forget_revocations_before(time.time() - horizon)
        await asyncio.sleep(interval if failures == 0 else min(interval, 2.0 * failures))


_bearer = HTTPBearer(auto_error=False, description="An access token from `POST /identity/v1/token`.")


async def optional_principal(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal | None:
    if creds is None:
        return None
    verifier: JWKSVerifier = request.app.state.verifier
    principal = await verifier.verify(creds.credentials)
    request.state.principal = principal
    return principal


async def current_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise Unauthorized("This route needs a bearer token.",
                           detail_zh="此接口需要访问令牌（Authorization: Bearer …），请先登录。")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


def require_roles(*roles: str) -> Any:
    """A dependency that admits a principal holding any of `roles` (department systems pass as
    `department_system`)."""

    async def dep(principal: CurrentPrincipal) -> Principal:
        if principal.has(*roles) or (DEPARTMENT_SYSTEM in roles and principal.is_department_system):
            return principal
        raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.",
                        detail_zh=f"此操作需要以下角色之一：{'、'.join(roles)}。")

    return Depends(dep)
