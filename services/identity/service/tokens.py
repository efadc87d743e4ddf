"""Logins and tokens: the OAuth2 grants behind `POST /token` (who is logging in, under which context —
organisation, delegation — and the tokens they get), logout, password change, account lock, revocation and
the signing keys. Failures that must be remembered (a failed password, a reused refresh token) are *returned*
as problems rather than raised, so the request's transaction commits what they changed."""

from __future__ import annotations

import base64
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.delegation import DelegationState
from services.identity.domain.numbers import NumberInvalid, normalise, parse_credit_code
from services.identity.domain.tokens import (
    AUDIENCE,
    ISSUER,
    TokenSubject,
    new_secret,
    revocation_instant,
    secret_digest,
)
from services.identity.events.contracts import TOKENS_REVOKED, TokensRevoked
from services.identity.runtime import IdentityRuntime
from services.identity.service.common import check_new_password
from services.identity.store import accounts, people
from services.identity.store.tables import Person, RefreshToken, SigningKeyRow, Staff, TokenRevocation
from shared.errors import BadRequest, Forbidden, NotFound, Problem, TooManyRequests, Unauthorized, invalid
from shared.messaging import publish
from shared.principal import CITIZEN, DEPARTMENT_SYSTEM, ORG_AGENT, Principal


class InvalidGrant(Problem):
    """RFC 6749 `invalid_grant`, as problem+json with the OAuth2 `error` member too."""

    status, slug, title = 400, "invalid-grant", "The grant is not valid"

    def __init__(self, detail: str, **kw: Any) -> None:
        kw.setdefault("error", "invalid_grant")
        super().__init__(detail, **kw)


class InvalidClient(Unauthorized):
    slug, title = "invalid-client", "Client authentication failed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, error="invalid_client", headers={"WWW-Authenticate": 'Basic realm="yimen"'})


@dataclass
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"access_token": self.access_token, "token_type": "Bearer", "expires_in": self.expires_in}
        if self.refresh_token:
            out["refresh_token"] = self.refresh_token
        return out


def is_id_number_username(username: str) -> bool:
    """Persons log in with their ID number, staff with a login name that starts with a letter."""
    return normalise(username)[:1].isdigit()


def login_key(username: str) -> str:
    return normalise(username) if is_id_number_username(username) else username.strip().lower()


def person_subject(person: Person) -> TokenSubject:
    return TokenSubject(sub=person.id, kind="person", roles=[CITIZEN], name=person.name, hid=person.id_number,
                        level=person.assurance_level)


def staff_subject(staff: Staff) -> TokenSubject:
    return TokenSubject(
        sub=staff.id, kind="staff", roles=list(staff.roles), name=staff.name, dept=staff.department,
        point=staff.service_point, phone=staff.office_phone, unit=staff.unit,
    )


async def person_context_subject(
    session: AsyncSession, person: Person, *, organisation: str | None, delegation: str | None, now: datetime
) -> TokenSubject:
    """The person's token subject, acting for an organisation (`org`) or under a delegation (`act`)."""
    subject = person_subject(person)
    if organisation and delegation:
        raise invalid("body.delegation", "exclusive", "Use either organisation or delegation, not both.")
    if organisation:
        try:
            code = parse_credit_code(organisation)
        except NumberInvalid as exc:
            raise invalid("body.organisation", exc.rule, exc.message) from None
        org = await people.organisation_by_credit_code(session, code)
        if org is None:
            raise Forbidden("No registered organisation has this credit code.", slug="not-an-agent")
        if org.legal_representative_id != person.id and await people.active_agent(session, org.id, person.id) is None:
            raise Forbidden("You are neither the legal representative nor an appointed agent of this organisation.",
                            slug="not-an-agent")
        return TokenSubject(sub=person.id, kind="person", roles=[ORG_AGENT], name=person.name, hid=person.id_number,
                            org=org.credit_code, level=person.assurance_level)
    if delegation:
        row = await people.delegation_by_id(session, delegation)
        if row is None:
            raise Forbidden("No such delegation.", slug="delegation-unusable")
        why = DelegationState(row.agent_id, row.valid_until, row.revoked_at).unusable_because(
            agent_id=person.id, now=now)
        if why:
            raise Forbidden(why, slug="delegation-unusable")
        act: dict[str, Any] = {"sub": row.principal_id, "kind": row.principal_kind, "delegation": row.id,
                               "items": row.items}
        if row.principal_kind == "person":
            principal = await people.person_by_id(session, row.principal_id)
            act["hid"] = principal.id_number if principal else None
            # What the principal's identity is worth travels with the act: a verified agent does not make an
            # unverified principal's data fetchable.
            act["level"] = principal.assurance_level if principal else 1
        else:
            act["hid"] = row.principal_id
        return TokenSubject(sub=person.id, kind="person", roles=[CITIZEN], name=person.name, hid=person.id_number,
                            act=act, level=person.assurance_level)
    return subject


async def issue(
    session: AsyncSession, rt: IdentityRuntime, subject: TokenSubject, *, now: datetime,
    account_kind: str, context: dict[str, Any] | None, family_id: str | None = None,
) -> IssuedTokens:
    key = await rt.keyring.signing_key(session, now)
    revoked = await accounts.revocation_of(session, account_kind, subject.sub)
    access = key.sign(subject, now=now, ttl=rt.access_ttl, issuer=ISSUER, audience=AUDIENCE,
                      not_before=revoked.not_before if revoked else None)
    refresh = None
    if context is not None:
        refresh = new_secret()
        await accounts.add_refresh(session, RefreshToken(
            token_hash=secret_digest(refresh), family_id=family_id or uuid.uuid4().hex, account_kind=account_kind,
            account_id=subject.sub, context=context, issued_at=now, expires_at=now + rt.refresh_ttl,
        ))
    return IssuedTokens(access, int(rt.access_ttl.total_seconds()), refresh)


def locked_problem(retry_after: int) -> Problem:
    return TooManyRequests(
        f"Too many failed logins: this account is locked for {retry_after} more seconds. 登录失败次数过多，请稍后再试。",
        slug="account-locked", title="Account temporarily locked", retry_after=retry_after,
        headers={"Retry-After": str(retry_after)},
    )


async def password_grant(
    session: AsyncSession, rt: IdentityRuntime, *, username: str, password: str, organisation: str | None,
    delegation: str | None, now: datetime,
) -> IssuedTokens | Problem:
    key = login_key(username)
    state = await accounts.throttle(session, key)
    if state.locked(now):
        return locked_problem(state.retry_after(now))
    account: Person | Staff | None
    if is_id_number_username(username):
        account = await people.person_by_id_number(session, key)
    else:
        account = await accounts.staff_by_username(session, key)
    if not rt.passwords.verify(account.password_hash if account else None, password) or account is None:
        state = await accounts.record_failure(session, key, lambda current: current.after_failure(
            now, threshold=rt.settings.lockout_threshold, lock_for=timedelta(minutes=rt.settings.lockout_minutes)))
        if state.locked(now):
            return locked_problem(state.retry_after(now))
        left = rt.settings.lockout_threshold - state.failures
        return InvalidGrant(f"Wrong username or password; {left} attempts left before a lock-out.",
                            attempts_left=left)
    await accounts.clear_throttle(session, key)
    if account.locked_at is not None:
        # Told only to whoever knows the password: a guesser learns nothing about the lock.
        raise Forbidden("This account is locked by an administrator. 账户已被管理员锁定，请联系政务服务中心。",
                        slug="account-disabled")
    if isinstance(account, Staff):
        if organisation or delegation:
            raise invalid("body.organisation" if organisation else "body.delegation", "not_for_staff",
                          "Staff accounts do not act for organisations or under delegations.")
        return await issue(session, rt, staff_subject(account), now=now, account_kind="staff", context={})
    subject = await person_context_subject(session, account, organisation=organisation, delegation=delegation, now=now)
    context = {"organisation": subject.org, "delegation": delegation if subject.act else None}
    return await issue(session, rt, subject, now=now, account_kind="person", context=context)


async def refresh_grant(session: AsyncSession, rt: IdentityRuntime, *, token: str, now: datetime) -> IssuedTokens | Problem:
    row = await accounts.refresh_by_hash(session, secret_digest(token))
    if row is None:
        return InvalidGrant("Unknown refresh token.")
    if row.used_at is not None or row.revoked_at is not None or not await accounts.mark_refresh_used(session, row.id, now):
        # A used or revoked token presented again means it leaked: end every session of this login.
        await accounts.revoke_family(session, row.family_id, now)
        return InvalidGrant("This refresh token was already used or revoked; every token of this login is now revoked.",
                            slug="refresh-token-reused")
    if row.expires_at <= now:
        return InvalidGrant("The refresh token has expired; log in again.")
    subject: TokenSubject
    if row.account_kind == "staff":
        staff = await accounts.staff_by_id(session, row.account_id)
        if staff is None or staff.locked_at is not None:
            return InvalidGrant("The account no longer exists or is locked.")
        subject = staff_subject(staff)
    else:
        person = await people.person_by_id(session, row.account_id)
        if person is None or person.locked_at is not None:
            return InvalidGrant("The account no longer exists or is locked.")
        try:
            subject = await person_context_subject(
                session, person, organisation=row.context.get("organisation"),
                delegation=row.context.get("delegation"), now=now)
        except Problem as exc:
            await accounts.revoke_family(session, row.family_id, now)
            return exc
    return await issue(session, rt, subject, now=now, account_kind=row.account_kind, context=row.context,
                       family_id=row.family_id)


async def client_credentials_grant(
    session: AsyncSession, rt: IdentityRuntime, *, client_id: str | None, client_secret: str | None, now: datetime
) -> IssuedTokens:
    if not client_id or not client_secret:
        raise InvalidClient("client_id and client_secret are required (form fields or HTTP Basic).")
    client = await accounts.client_by_id(session, client_id)
    if client is None or not hmac.compare_digest(client.secret_hash, secret_digest(client_secret)):
        raise InvalidClient("Unknown client or wrong secret.")
    subject = TokenSubject(sub=client.client_id, kind="department_system", roles=[DEPARTMENT_SYSTEM],
                           name=client.name, dept=client.department)
    return await issue(session, rt, subject, now=now, account_kind="department_system", context=None)


def basic_credentials(authorization: str | None) -> tuple[str | None, str | None]:
    """Client id and secret from an HTTP Basic `Authorization` header (none when it is not Basic)."""
    if not authorization or not authorization.lower().startswith("basic "):
        return None, None
    try:
        raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        client_id, _, secret = raw.partition(":")
        return client_id, secret
    except Exception:
        raise InvalidClient("Malformed HTTP Basic credentials.") from None


async def grant(
    session: AsyncSession, rt: IdentityRuntime, *, grant_type: str, username: str | None, password: str | None,
    refresh_token: str | None, client_id: str | None, client_secret: str | None, organisation: str | None,
    delegation: str | None, authorization: str | None, now: datetime,
) -> IssuedTokens | Problem:
    """`POST /token`: the grant the form names (RFC 6749)."""
    if grant_type == "password":
        if not username or password is None:
            raise BadRequest("username and password are required.", slug="invalid-request", error="invalid_request")
        return await password_grant(session, rt, username=username, password=password,
                                    organisation=organisation or None, delegation=delegation or None, now=now)
    if grant_type == "refresh_token":
        if not refresh_token:
            raise BadRequest("refresh_token is required.", slug="invalid-request", error="invalid_request")
        return await refresh_grant(session, rt, token=refresh_token, now=now)
    if grant_type == "client_credentials":
        basic_id, basic_secret = basic_credentials(authorization)
        return await client_credentials_grant(session, rt, client_id=client_id or basic_id,
                                              client_secret=client_secret or basic_secret, now=now)
    raise BadRequest(f"grant_type {grant_type!r} is not supported.", slug="unsupported-grant-type",
                     error="unsupported_grant_type")


# ---- revocation ---------------------------------------------------------------------------------------------

async def revoke_tokens(session: AsyncSession, *, account_kind: str, account_id: str, now: datetime,
                        reason: str) -> datetime:
    """End every login of the account: its refresh tokens at once, its access tokens wherever they are
    presented (the `tokens_revoked` event reaches every service's verifier within seconds). Returns the
    not-before: tokens issued from then on work."""
    previous = await accounts.revocation_of(session, account_kind, account_id)
    not_before = revocation_instant(now, previous.not_before if previous else None)
    await accounts.revoke_account(session, account_kind, account_id, now)
    await accounts.record_revocation(session, account_kind, account_id, not_before, reason)
    await publish(session, TOKENS_REVOKED, subject=account_id, data=TokensRevoked(
        account_id=account_id, account_kind=account_kind, not_before=not_before, reason=reason))
    return not_before


async def logout(session: AsyncSession, *, refresh_token: str, now: datetime) -> None:
    """Revoke a refresh token and every token rotated from it; an unknown token changes nothing."""
    row = await accounts.refresh_by_hash(session, secret_digest(refresh_token))
    if row is not None:
        await accounts.revoke_family(session, row.family_id, now)


async def logout_everywhere(session: AsyncSession, principal: Principal, *, now: datetime) -> None:
    if principal.kind not in ("person", "staff"):
        raise Forbidden("Department systems rotate their secret instead.")
    await revoke_tokens(session, account_kind=principal.kind, account_id=principal.subject, now=now,
                        reason="logout_everywhere")


async def change_password(session: AsyncSession, rt: IdentityRuntime, principal: Principal, *,
                          current_password: str, new_password: str, now: datetime) -> None:
    """The caller's own password, judged by the policy; every earlier token of the account is revoked."""
    account: Person | Staff | None
    if principal.kind == "person":
        account = await people.person_by_id(session, principal.subject)
    elif principal.kind == "staff":
        account = await accounts.staff_by_id(session, principal.subject)
    else:
        raise Forbidden("Department systems have secrets, not passwords: rotate the secret instead.")
    if account is None:
        raise NotFound("The account no longer exists.")
    if not rt.passwords.verify(account.password_hash, current_password):
        raise Forbidden("The current password is wrong.", slug="wrong-password")
    if isinstance(account, Person):
        check_new_password("body.new_password", new_password, account.name, account.id_number, account.phone)
    else:
        check_new_password("body.new_password", new_password, account.name, account.username)
    account.password_hash = rt.passwords.hash(new_password)
    if hasattr(account, "password_changed_at"):
        account.password_changed_at = now
    await revoke_tokens(session, account_kind=principal.kind, account_id=principal.subject, now=now,
                        reason="password_changed")


async def _account(session: AsyncSession, kind: Literal["person", "staff"], account_id: str) -> Person | Staff:
    account: Person | Staff | None = await (people.person_by_id(session, account_id) if kind == "person"
                                            else accounts.staff_by_id(session, account_id))
    if account is None:
        raise NotFound(f"No {kind} account {account_id}.")
    return account


async def lock_account(session: AsyncSession, admin: Principal, *, kind: Literal["person", "staff"],
                       account_id: str, now: datetime) -> None:
    """An admin locks a stolen or abused account: no login, every token revoked everywhere."""
    account = await _account(session, kind, account_id)
    if kind == "staff" and account_id == admin.subject:
        raise Forbidden("An administrator cannot lock their own account.")
    account.locked_at = now
    await revoke_tokens(session, account_kind=kind, account_id=account_id, now=now, reason="account_locked")


async def unlock_account(session: AsyncSession, *, kind: Literal["person", "staff"], account_id: str) -> None:
    account = await _account(session, kind, account_id)
    account.locked_at = None


@dataclass(frozen=True)
class Revocations:
    revocations: list[TokenRevocation]
    horizon_seconds: int


async def revocation_list(session: AsyncSession, rt: IdentityRuntime, now: datetime) -> Revocations:
    """The accounts whose earlier access tokens are refused, as far back as a token can still be alive."""
    # A token lives at most the access lifetime (plus verifiers' leeway): older revocations refuse nothing alive.
    horizon = rt.access_ttl + timedelta(minutes=5)
    rows = await accounts.revocations_since(session, now - horizon)
    return Revocations(rows, int(horizon.total_seconds()))


async def jwks(session: AsyncSession, rt: IdentityRuntime, now: datetime) -> dict[str, Any]:
    return await rt.keyring.jwks(session, now)


async def rotate_keys(session: AsyncSession, rt: IdentityRuntime, *, retire_previous: bool,
                      now: datetime) -> SigningKeyRow:
    """New tokens are signed with a new key at once; the old one stays published for the access-token lifetime
    unless `retire_previous` withdraws every earlier key now."""
    await rt.keyring.ensure_key(session, now)
    return await rt.keyring.rotate(session, now, keep_old_for=rt.access_ttl + timedelta(minutes=1),
                                   retire_previous=retire_previous)

