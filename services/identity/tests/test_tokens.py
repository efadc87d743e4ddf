"""Login and tokens as another service sees them: verified from the JWKS, refused when forged, expired,
from another issuer or signed by a withdrawn key; refresh rotation, reuse detection, logout, lock-out."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.identity.events.contracts import TOKENS_REVOKED
from services.identity.tests.conftest import ADMIN_USERNAME
from services.identity.tests.helpers import PASSWORD, bearer, login, register
from shared.auth import JWKSVerifier, http_jwks_fetcher
from shared.errors import Unauthorized
from shared.testing import eventually

TOKEN = "/identity/v1/token"
JWKS = "/identity/v1/.well-known/jwks.json"


def verifier(client) -> JWKSVerifier:  # type: ignore[no-untyped-def]
    """What every other service does: verify locally against identity's JWKS (here fetched via the test client)."""
    return JWKSVerifier(http_jwks_fetcher(JWKS, client), min_refresh=0)


def forge(claims: dict, key, *, kid: str, alg: str = "EdDSA") -> str:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    base = {"iss": "yimen-identity", "aud": "yimen", "sub": "x", "iat": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=5)).timestamp()), "kind": "person", "roles": ["citizen"]}
    return jwt.encode({**base, **claims}, key, algorithm=alg, headers={"kid": kid})


async def test_a_person_token_verifies_in_another_service_with_the_contract_claims(client):
    p = await register(client)
    r = await login(client, p["raw"]["id_number"].lower())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900 and body["refresh_token"]
    assert r.headers["cache-control"] == "no-store"
    principal = await verifier(client).verify(body["access_token"])
    assert principal.subject == p["id"] and principal.kind == "person"
    assert principal.roles == {"citizen"} and principal.holder_id == p["raw"]["id_number"]
    claims = principal.claims
    assert claims["iss"] == "yimen-identity" and claims["aud"] == "yimen" and claims["exp"] - int(claims["iat"]) == 900
    assert claims["level"] == 2 and principal.assurance_level == 2  # the registry holds this person
    assert jwt.get_unverified_header(body["access_token"])["kid"] in {k["kid"] for k in (await client.get(JWKS)).json()["keys"]}
    me = await client.get("/identity/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id_number"] == p["raw"]["id_number"]  # the person sees their own number in full


async def test_the_jwks_serves_public_keys_only(client):
    keys = (await client.get(JWKS)).json()["keys"]
    assert keys and all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and "d" not in k for k in keys)


async def test_forged_tokens_are_refused(client):
    p = await register(client)
    good = (await login(client, p["raw"]["id_number"])).json()["access_token"]
    kid = jwt.get_unverified_header(good)["kid"]
    v = verifier(client)
    header, payload, _ = good.split(".")
    unsigned = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": kid}).encode()).decode().rstrip("=")
    evil_payload = base64.urlsafe_b64encode(json.dumps({"sub": "admin"}).encode()).decode().rstrip("=")
    attempts = {
        "alg none": f"{unsigned}.{payload}.",
        "another key, same kid": forge({"sub": p["id"]}, Ed25519PrivateKey.generate(), kid=kid),
        "unknown kid": forge({"sub": p["id"]}, Ed25519PrivateKey.generate(), kid="nope"),
        "HS256 with the public key": jwt.encode({"sub": "x"}, "secret-but-not-a-key-000000000000", algorithm="HS256",
                                                headers={"kid": kid}),
        "tampered payload": f"{header}.{evil_payload}.{good.split('.')[2]}",
    }
    for what, token in attempts.items():
        with pytest.raises(Unauthorized):
            await v.verify(token)
        r = await client.get("/identity/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, what
        assert r.headers["content-type"] == "application/problem+json"


async def test_wrong_issuer_audience_and_expired_tokens_are_refused(client, admin):
    """Signed with identity's real key (reached through the keyring) but with bad claims."""
    app = client.app
    async with app.state.db.transaction() as s:
        key = await app.state.identity.keyring.signing_key(s, datetime.now(UTC))
    v = verifier(client)
    ok = forge({"sub": "someone"}, key.private_key, kid=key.kid)
    assert (await v.verify(ok)).subject == "someone"  # the forge itself is sound
    past = datetime.now(UTC) - timedelta(hours=1)
    for claims in ({"iss": "evil-identity"}, {"aud": "another-app"},
                   {"iat": int(past.timestamp()), "exp": int((past + timedelta(minutes=15)).timestamp())}):
        with pytest.raises(Unauthorized):
            await v.verify(forge(claims, key.private_key, kid=key.kid))


async def test_rotation_keeps_old_tokens_valid_until_the_old_key_is_withdrawn(client, admin):
    p = await register(client)
    before = (await login(client, p["raw"]["id_number"])).json()["access_token"]
    v = verifier(client)
    assert (await v.verify(before)).subject == p["id"]
    r = await client.post("/identity/v1/keys/rotate", headers=admin)
    assert r.status_code == 200, r.text
    new_kid = r.json()["kid"]
    after = (await login(client, p["raw"]["id_number"])).json()["access_token"]
    assert jwt.get_unverified_header(after)["kid"] == new_kid != jwt.get_unverified_header(before)["kid"]
    assert (await v.verify(after)).subject == p["id"]  # unknown kid → the verifier refetches
    assert (await verifier(client).verify(before)).subject == p["id"]  # old key still served
    # Emergency rotation: earlier keys leave the JWKS and their tokens die.
    admin_now = await bearer(client, ADMIN_USERNAME, "root-pass-2026")
    r = await client.post("/identity/v1/keys/rotate", params={"retire_previous": "true"}, headers=admin_now)
    assert r.status_code == 200
    kids = {k["kid"] for k in (await client.get(JWKS)).json()["keys"]}
    assert kids == {r.json()["kid"]}
    fresh = verifier(client)
    for token in (before, after):
        with pytest.raises(Unauthorized):
            await fresh.verify(token)


async def test_only_admins_rotate_keys(client):
    p = await register(client)
    r = await client.post("/identity/v1/keys/rotate", headers=await bearer(client, p["raw"]["id_number"]))
    assert r.status_code == 403
    assert (await client.post("/identity/v1/keys/rotate")).status_code == 401


async def test_refresh_rotates_and_a_reused_token_revokes_the_whole_family(client):
    p = await register(client)
    first = (await login(client, p["raw"]["id_number"])).json()
    r1 = await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert r1.status_code == 200, r1.text
    second = r1.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await verifier(client).verify(second["access_token"])).subject == p["id"]
    # The thief replays the first token: refused, and the legitimate second one dies with it.
    replay = await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert replay.status_code == 400
    assert replay.json()["type"].endswith("/refresh-token-reused") and replay.json()["error"] == "invalid_grant"
    r2 = await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert r2.status_code == 400
    # Another login of the same person (another family) is untouched.
    other = (await login(client, p["raw"]["id_number"])).json()
    assert (await client.post(TOKEN, data={"grant_type": "refresh_token",
                                           "refresh_token": other["refresh_token"]})).status_code == 200


async def test_logout_and_password_change_revoke_refresh_tokens(client):
    p = await register(client)
    a = (await login(client, p["raw"]["id_number"])).json()
    b = (await login(client, p["raw"]["id_number"])).json()
    assert (await client.post("/identity/v1/logout", json={"refresh_token": a["refresh_token"]})).status_code == 204
    assert (await client.post("/identity/v1/logout", json={"refresh_token": "unknown"})).status_code == 204
    r = await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": a["refresh_token"]})
    assert r.status_code == 400
    auth = {"Authorization": f"Bearer {b['access_token']}"}
    wrong = await client.post("/identity/v1/me/password", headers=auth,
                              json={"current_password": "nope-nope-1", "new_password": "n3w-secret-pass"})
    assert wrong.status_code == 403
    weak = await client.post("/identity/v1/me/password", headers=auth,
                             json={"current_password": PASSWORD, "new_password": "short"})
    assert weak.status_code == 422 and weak.json()["errors"][0]["rule"] == "password_policy"
    ok = await client.post("/identity/v1/me/password", headers=auth,
                           json={"current_password": PASSWORD, "new_password": "n3w-secret-pass"})
    assert ok.status_code == 204
    r = await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": b["refresh_token"]})
    assert r.status_code == 400
    assert (await login(client, p["raw"]["id_number"])).status_code == 400
    assert (await login(client, p["raw"]["id_number"], "n3w-secret-pass")).status_code == 200


async def test_five_failed_logins_lock_the_account_with_retry_after(client):
    p = await register(client)
    for left in (4, 3, 2, 1):
        r = await login(client, p["raw"]["id_number"], "wrong-password-1")
        assert r.status_code == 400 and r.json()["attempts_left"] == left
    r = await login(client, p["raw"]["id_number"], "wrong-password-1")
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/account-locked") and 890 <= r.json()["retry_after"] <= 900
    assert int(r.headers["retry-after"]) == r.json()["retry_after"]
    # Even the right password waits now.
    assert (await login(client, p["raw"]["id_number"])).status_code == 429
    # Unknown usernames are counted the same way, so a lock reveals nothing about who is registered.
    ghost = f"ghost{uuid.uuid4().hex[:8]}"
    codes = [(await login(client, ghost, "whatever-1")).status_code for _ in range(5)]
    assert codes == [400, 400, 400, 400, 429]


@pytest.mark.parametrize(("form", "status"), [
    ({"grant_type": "implicit"}, 400),
    ({"grant_type": "password", "username": "x"}, 400),
    ({"grant_type": "refresh_token"}, 400),
    ({"grant_type": "refresh_token", "refresh_token": "never-issued"}, 400),
    ({"grant_type": "client_credentials"}, 401),
    ({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}, 401),
    ({}, 422),
])
async def test_bad_token_requests_are_precise_problems(client, form, status):
    r = await client.post(TOKEN, data=form)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_parallel_guesses_cannot_slip_past_the_lock(client):
    import asyncio

    p = await register(client)
    results = await asyncio.gather(*(login(client, p["raw"]["id_number"], "wrong-password-1") for _ in range(10)))
    codes = sorted(r.status_code for r in results)
    assert codes == [400] * 4 + [429] * 6, [r.text for r in results if r.status_code not in (400, 429)]


async def test_housekeeping_forgets_idle_failure_counts_and_expired_refresh_tokens(client):
    from sqlalchemy import select

    from services.identity.store import accounts
    from services.identity.store.tables import LoginThrottleRow, RefreshToken

    p = await register(client)
    await login(client, p["raw"]["id_number"], "wrong-password-1")
    issued = (await login(client, p["raw"]["id_number"])).json()
    await login(client, p["raw"]["id_number"], "wrong-password-1")
    db = client.app.state.db
    future = datetime.now(UTC) + timedelta(days=400)
    async with db.transaction() as s:
        assert await s.get(LoginThrottleRow, p["raw"]["id_number"]) is not None
        assert await accounts.purge_throttles(s, future) >= 1
        assert await accounts.purge_refresh_tokens(s, future) >= 1
    async with db.transaction() as s:
        assert await s.get(LoginThrottleRow, p["raw"]["id_number"]) is None
        rows = (await s.execute(select(RefreshToken).where(RefreshToken.account_id == p["id"]))).scalars().all()
        assert rows == []
    r = await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert r.status_code == 400


# --- revocation: a changed password, logout everywhere, a lock end earlier access tokens --------------------------

async def refused_soon(client, headers, path: str = "/identity/v1/me") -> dict:  # type: ignore[no-untyped-def]
    """The revocation travels as an event; wait for it (seconds), then return the refusal."""
    async def refused():  # type: ignore[no-untyped-def]
        r = await client.get(path, headers=headers)
        return r if r.status_code == 401 else None

    return (await eventually(refused, timeout=15)).json()


async def test_an_access_token_stops_working_after_a_password_change(client, tap):
    """Finding (issue #13): an access token kept working for its whole lifetime after a password change."""
    p = await register(client)
    old = await bearer(client, p["raw"]["id_number"])
    assert (await client.get("/identity/v1/me", headers=old)).status_code == 200
    r = await client.post("/identity/v1/me/password", headers=old,
                          json={"current_password": PASSWORD, "new_password": "lantern-orchid-maple-7"})
    assert r.status_code == 204
    # A login right after the change works at once, even within the same second.
    new = await bearer(client, p["raw"]["id_number"], "lantern-orchid-maple-7")
    assert (await client.get("/identity/v1/me", headers=new)).status_code == 200
    body = await refused_soon(client, old)
    assert body["type"].endswith("/token-revoked")
    assert (await client.get("/identity/v1/me", headers=new)).status_code == 200
    event = (await eventually(lambda: tap.of(TOKENS_REVOKED, p["id"])))[0]["data"]
    assert event["account_kind"] == "person" and event["reason"] == "password_changed"
    listed = (await client.get("/identity/v1/token-revocations")).json()["revocations"]
    assert [(x["account_kind"], x["reason"]) for x in listed if x["account_id"] == p["id"]] == [
        ("person", "password_changed")]


async def test_logout_everywhere_and_an_admins_lock_revoke_every_token(client):
    admin = await bearer(client, ADMIN_USERNAME, "root-pass-2026")  # an earlier test withdrew the module's keys
    p = await register(client)
    a, b = await bearer(client, p["raw"]["id_number"]), await bearer(client, p["raw"]["id_number"])
    assert (await client.post("/identity/v1/me/logout-everywhere", headers=a)).status_code == 204
    await refused_soon(client, a)
    await refused_soon(client, b)
    c = await bearer(client, p["raw"]["id_number"])
    assert (await client.get("/identity/v1/me", headers=c)).status_code == 200

    citizen_lock = await client.post(f"/identity/v1/accounts/{p['id']}/lock", headers=c,
                                     json={"kind": "person", "reason": "盗号"})
    assert citizen_lock.status_code == 403
    r = await client.post(f"/identity/v1/accounts/{p['id']}/lock", headers=admin, json={"kind": "person",
                                                                                      "reason": "账户被盗用"})
    assert r.status_code == 204
    await refused_soon(client, c)
    locked = await login(client, p["raw"]["id_number"])
    assert locked.status_code == 403 and locked.json()["type"].endswith("/account-disabled")
    assert (await client.delete(f"/identity/v1/accounts/{p['id']}/lock", headers=admin,
                                params={"kind": "person"})).status_code == 204
    assert (await login(client, p["raw"]["id_number"])).status_code == 200
