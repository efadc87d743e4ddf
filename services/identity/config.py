"""Identity's own settings (`YIMEN_IDENTITY_*`), beside the platform settings every service shares."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IdentitySettings(BaseSettings):
    """Token lifetimes, password hashing cost, lock-out policy and the bootstrap admin."""

    model_config = SettingsConfigDict(env_prefix="YIMEN_IDENTITY_", extra="ignore", populate_by_name=True)

    access_token_minutes: int = 15
    refresh_token_days: int = 30
    #: Argon2id cost. The defaults make one verification take about 50 ms on the reference machine
    #: (2 shared cores): time_cost=2, memory_cost=32 MiB, parallelism=1 (measured 47-50 ms). Tests lower them.
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 32768
    argon2_parallelism: int = 1
    #: Consecutive failed logins that lock a username, and for how long.
    lockout_threshold: int = 5
    lockout_minutes: int = 15
    #: How often old failure counts and expired refresh tokens are deleted.
    housekeeping_seconds: float = 3600.0
    #: Passphrase that encrypts the signing keys at rest (PKCS#8, AES-256). Unset: keys are stored
    #: unencrypted and a warning is logged at start-up (acceptable only for the embedded development setup).
    key_passphrase: str = ""
    #: The first admin (`YIMEN_ADMIN_USERNAME` / `YIMEN_ADMIN_PASSWORD`). No default password, ever.
    admin_username: str = Field(default="admin", validation_alias="YIMEN_ADMIN_USERNAME")
    admin_password: str = Field(default="", validation_alias="YIMEN_ADMIN_PASSWORD")
