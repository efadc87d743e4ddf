"""What identity's routes share within one process: its settings, the password hasher, the keyring."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request

from services.identity.config import IdentitySettings
from services.identity.domain.passwords import Passwords
from services.identity.store.keys import Keyring


@dataclass
class IdentityRuntime:
    settings: IdentitySettings
    passwords: Passwords
    keyring: Keyring
    #: Identity's own service token for datashare (token, monotonic expiry), reused until near its end.
    service_token: tuple[str, float] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: IdentitySettings) -> IdentityRuntime:
        return cls(
            settings=settings,
            passwords=Passwords(
                time_cost=settings.argon2_time_cost,
                memory_kib=settings.argon2_memory_kib,
                parallelism=settings.argon2_parallelism,
            ),
            keyring=Keyring(settings.key_passphrase),
        )

    @property
    def access_ttl(self) -> timedelta:
        return timedelta(minutes=self.settings.access_token_minutes)

    @property
    def refresh_ttl(self) -> timedelta:
        return timedelta(days=self.settings.refresh_token_days)


def _runtime(request: Request) -> IdentityRuntime:
    return request.app.state.identity


RuntimeDep = Annotated[IdentityRuntime, Depends(_runtime)]
