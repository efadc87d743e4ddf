"""Access tokens (EdDSA JWTs) and refresh tokens: the claims every other service reads (shared/auth.py), how
they are signed, and how signing keys are kept.

Claims: `iss`=`yimen-identity`, `aud`=`yimen`, `exp`, `iat`, `jti`, `sub` (account id), `kind`
(`person`/`staff`/`department_system`), `roles`, `name`; persons add `hid` (citizen ID number), an
organisation agent `org` (credit code), a delegate `act` = `{sub, kind, hid, delegation, items}`; staff add
`dept` and `point`; department systems add `dept`. Persons carry `level`, their identity assurance (实名核验)
level (1-3); a delegate's `act` carries the principal person's `level`. Identity's own service token (to call
datashare's registry matching) has `kind=service`, `sub=identity`, `roles=[service]`. The header carries `kid`."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ISSUER = "yimen-identity"
AUDIENCE = "yimen"
ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class TokenSubject:
    """Who a token speaks for, before it is signed."""

    sub: str
    kind: str
    roles: list[str]
    name: str
    hid: str | None = None
    dept: str | None = None
    point: str | None = None
    org: str | None = None
    act: dict[str, Any] | None = None
    level: int | None = None
    #: Staff only: office phone and unit, so a step's handler can be shown with a number to call (谁在办).
    phone: str | None = None
    unit: str | None = None

    def claims(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sub": self.sub, "kind": self.kind, "roles": sorted(self.roles), "name": self.name}
        for key in ("hid", "dept", "point", "org", "act", "level", "phone", "unit"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(kid=uuid.uuid4().hex[:16], private_key=Ed25519PrivateKey.generate())

    def public_jwk(self) -> dict[str, Any]:
        jwk = jwt.algorithms.OKPAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def private_pem(self, passphrase: str) -> str:
        """The private key as PKCS#8 PEM, encrypted with the passphrase when there is one."""
        enc: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
        )
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc).decode()

    @classmethod
    def from_pem(cls, kid: str, pem: str, passphrase: str) -> SigningKey:
        key = serialization.load_pem_private_key(pem.encode(), password=passphrase.encode() if passphrase else None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"signing key {kid} is not Ed25519")
        return cls(kid=kid, private_key=key)

    def sign(self, subject: TokenSubject, *, now: datetime, ttl: timedelta, issuer: str = ISSUER,
             audience: str = AUDIENCE, not_before: datetime | None = None) -> str:
        payload = {
            "iss": issuer, "aud": audience, "iat": issued_at(now, not_before), "exp": int((now + ttl).timestamp()),
            "jti": uuid.uuid4().hex, **subject.claims(),
        }
        return jwt.encode(payload, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def revocation_instant(now: datetime, previous: datetime | None = None) -> datetime:
    """The not-before of a revocation made at `now`, to the millisecond: just after every `iat` identity has
    issued so far (tokens carry `iat` to the millisecond, and one issued at the same millisecond as `now` is
    older than the revocation), and after an earlier revocation's, whose newer tokens it must also end."""
    ms = _ms(now) + 1
    if previous is not None:
        ms = max(ms, _ms(previous) + 1)
    return datetime.fromtimestamp(ms / 1000, tz=now.tzinfo)


def issued_at(now: datetime, not_before: datetime | None) -> float:
    """`iat` to the millisecond (RFC 7519 NumericDate allows fractions), so a revocation refuses exactly the tokens
    issued before it. A token issued within the millisecond after a revocation has its `iat` moved up to the
    not-before (within every verifier's leeway), or it would be refused with the old ones."""
    ms = _ms(now)
    if not_before is not None:
        ms = max(ms, _ms(not_before))
    return ms / 1000


def new_secret(nbytes: int = 32) -> str:
    """An opaque high-entropy secret (refresh tokens, client secrets)."""
    return secrets.token_urlsafe(nbytes)


def secret_digest(secret: str) -> str:
    """Refresh tokens and client secrets carry 256 random bits, so a plain SHA-256 is enough to store them:
    unlike passwords they cannot be guessed from a dictionary, and a slow hash would only cost CPU."""
    return hashlib.sha256(secret.encode()).hexdigest()
