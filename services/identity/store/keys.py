"""The signing keys in the identity database: creation, rotation, the public JWKS, and a per-process cache of
decrypted private keys (decrypting a PKCS#8 PEM costs a key derivation, so it happens once per key)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.tokens import SigningKey
from services.identity.store import accounts
from services.identity.store.tables import SigningKeyRow

log = logging.getLogger("yimen.identity.keys")


class Keyring:
    def __init__(self, passphrase: str) -> None:
        self.passphrase = passphrase
        self._cache: dict[str, SigningKey] = {}

    async def ensure_key(self, session: AsyncSession, now: datetime) -> SigningKeyRow:
        row = await accounts.current_key(session)
        if row is None:
            row = await self._create(session, now)
        return row

    async def _create(self, session: AsyncSession, now: datetime) -> SigningKeyRow:
        key = SigningKey.generate()
        row = SigningKeyRow(
            kid=key.kid, private_pem=key.private_pem(self.passphrase), public_jwk=key.public_jwk(), created_at=now
        )
        await accounts.add_key(session, row)
        self._cache[key.kid] = key
        log.info("signing key %s created", key.kid)
        return row

    async def signing_key(self, session: AsyncSession, now: datetime) -> SigningKey:
        row = await self.ensure_key(session, now)
        key = self._cache.get(row.kid)
        if key is None:
            key = SigningKey.from_pem(row.kid, row.private_pem, self.passphrase)
            self._cache[row.kid] = key
        return key

    async def rotate(self, session: AsyncSession, now: datetime, *, keep_old_for: timedelta,
                     retire_previous: bool) -> SigningKeyRow:
        """A new current key; the old one stays in the JWKS for `keep_old_for` (the access-token lifetime), or
        leaves it at once with `retire_previous` (a compromised key)."""
        await accounts.rotate_out(session, now, now + keep_old_for, retire_all=retire_previous)
        return await self._create(session, now)

    async def jwks(self, session: AsyncSession, now: datetime) -> dict[str, Any]:
        return {"keys": [row.public_jwk for row in await accounts.published_keys(session, now)]}
