"""A verified token is remembered by its hash (issue #14): the signature is not checked again on every request,
but everything that can change since still is — expiry, revocation, the key still being published — and only
the exact token passes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from shared.auth import JWKSVerifier
from shared.errors import Unauthorized
from shared.testing import TokenIssuer


def verifier_for(tokens: TokenIssuer, **kw: object) -> JWKSVerifier:
    return JWKSVerifier(tokens.fetch, min_refresh=0, **kw)  # type: ignore[arg-type]


async def slug_of(verifier: JWKSVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as refused:
        await verifier.verify(token)
    return refused.value.slug


async def test_a_second_use_skips_the_signature_check_and_gives_the_same_principal(monkeypatch):
    tokens = TokenIssuer()
    verifier = verifier_for(tokens)
    token = tokens.token("dept-a", kind="department_system", roles=["department_system"], dept="LD-A")
    first = await verifier.verify(token)
    import jwt

    def no_decode(*a: object, **kw: object) -> None:
        raise AssertionError("the signature was checked again")

    monkeypatch.setattr(jwt, "decode", no_decode)
    assert await verifier.verify(token) is first
    assert first.department == "LD-A"


async def test_a_tampered_copy_of_a_verified_token_is_refused():
    tokens = TokenIssuer()
    verifier = verifier_for(tokens)
    token = tokens.token("p-1")
    await verifier.verify(token)
    head, payload, signature = token.split(".")
    forged = ".".join([head, payload, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")])
    assert await slug_of(verifier, forged) == "invalid-token"


async def test_a_verified_token_is_refused_once_revoked():
    tokens = TokenIssuer()
    verifier = verifier_for(tokens)
    token = tokens.token("p-rev")
    await verifier.verify(token)
    verifier.revoke("p-rev", tokens.revoke("p-rev"))
    assert await slug_of(verifier, token) == "token-revoked"
    await asyncio.sleep(0.01)  # identity issues later tokens from the revocation's next millisecond on
    assert (await verifier.verify(tokens.token("p-rev"))).subject == "p-rev"  # a token issued afterwards works


async def test_a_verified_token_is_refused_once_expired(monkeypatch):
    tokens = TokenIssuer()
    verifier = verifier_for(tokens, leeway=0)
    token = tokens.token("p-exp", ttl=timedelta(seconds=60))
    await verifier.verify(token)
    import time as real_time

    later = real_time.time() + 61
    monkeypatch.setattr("shared.auth.time.time", lambda: later)
    monkeypatch.setattr("jwt.api_jwt.datetime", _FrozenDatetime(later))
    assert await slug_of(verifier, token) == "token-expired"


async def test_a_verified_token_is_refused_once_its_key_is_withdrawn():
    tokens = TokenIssuer()
    verifier = verifier_for(tokens, ttl=0)  # refetched on every use: the withdrawal is seen at once
    old_kid = tokens.kid
    token = tokens.token("p-key")
    await verifier.verify(token)
    tokens.rotate()
    assert (await verifier.verify(token)).subject == "p-key"  # rotated in, the old key still published
    tokens.retire(old_kid)
    assert await slug_of(verifier, token) == "invalid-token"


async def test_the_cache_is_bounded():
    tokens = TokenIssuer()
    verifier = verifier_for(tokens, max_cached=3)
    issued = [tokens.token(f"p-{n}") for n in range(5)]
    for token in issued:
        await verifier.verify(token)
    assert len(verifier._verified) == 3
    for token in issued:  # the forgotten ones still verify, the full way
        assert (await verifier.verify(token)).subject.startswith("p-")


class _FrozenDatetime:
    """`jwt.api_jwt.datetime` with `now()` at a fixed epoch second (PyJWT's own clock for `exp`)."""

    def __init__(self, epoch: float) -> None:
        from datetime import UTC, datetime

        self._now = datetime.fromtimestamp(epoch, UTC)
        self._real = datetime

    def now(self, tz: object = None) -> object:
        return self._now

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)


async def test_remembering_can_be_switched_off():
    tokens = TokenIssuer()
    verifier = verifier_for(tokens, max_cached=0)
    token = tokens.token("p-off")
    assert (await verifier.verify(token)).subject == (await verifier.verify(token)).subject == "p-off"
    assert verifier._verified == {}
