"""Settings every service reads: `YIMEN_*` for what the whole platform shares, `YIMEN_<SERVICE>_*` for one
service's own. The defaults are the embedded setup (SQLite files under `var/`, NATS on localhost)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TypedDict

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent

#: The port each service listens on behind the entry point (`make run`); the gateway serves all of them on
#: `YIMEN_PORT` (default 8000).
SERVICE_PORTS: dict[str, int] = {
    "catalog": 8101,
    "identity": 8102,
    "intake": 8103,
    "workflow": 8104,
    "datashare": 8105,
    "efficacy": 8106,
    "notify": 8107,
}
SERVICES = tuple(SERVICE_PORTS)


#: How long a platform stream keeps an event (JetStream `max_age`, set by `shared.bus.Bus`).
STREAM_MAX_AGE_DAYS = 30.0


class NatsCredentials(TypedDict, total=False):
    """Keyword arguments of `shared.bus.Bus` for a server with accounts (empty for an open server)."""

    user: str
    password: str


class PlatformSettings(BaseSettings):
    """What all services agree on."""

    model_config = SettingsConfigDict(env_prefix="YIMEN_", extra="ignore")

    var_dir: Path = ROOT / "var"
    nats_url: str = Field(default="nats://127.0.0.1:4222", validation_alias="NATS_URL")
    #: This process's NATS user on a server with the platform's accounts (`deploy/natsconfig.py`): the
    #: service's name. Empty for an open server (tests, CI's shared server).
    nats_user: str = ""
    nats_password: str = Field(default="", repr=False)
    #: The password in a file instead (a mounted secret: compose's `/run/secrets/…`).
    nats_password_file: Path | None = None
    #: Prepended to every NATS subject and stream name. Empty in production; one city per prefix would let
    #: a province share one NATS cluster, and the test suite uses a random one per run for isolation.
    bus_prefix: str = ""
    #: Copies of each platform stream (and of the rate-limit buckets) on a JetStream cluster: 3 on the
    #: three-node cluster of Kubernetes or `make run NATS_CLUSTER=3`, 1 on a single server.
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)
    #: Where services fetch the public keys of identity's tokens.
    jwks_url: str = "http://127.0.0.1:8102/identity/v1/.well-known/jwks.json"
    token_issuer: str = "yimen-identity"
    token_audience: str = "yimen"
    #: Base URL for service-to-service REST calls (the gateway, or a service's own port).
    service_urls: dict[str, str] = Field(
        default_factory=lambda: {s: f"http://127.0.0.1:{p}" for s, p in SERVICE_PORTS.items()}
    )
    log_level: str = "INFO"
    log_json: bool = True
    #: Bounded redelivery before an event goes to the dead-letter subject.
    max_deliver: int = 5
    ack_wait_seconds: float = 30.0
    outbox_retention_days: int = Field(default=7, ge=1)
    #: How long a consumer's inbox keeps an applied event's id (its proof against a second delivery). It must
    #: outlive every way an event can come again: the stream's own age limit (`STREAM_MAX_AGE_DAYS`: a consumer
    #: created anew replays what the stream holds) and the outbox's (`python -m shared.ops republish` can only
    #: publish again what the outbox still keeps). A later row would make an old redelivery look new.
    inbox_retention_days: int = 31
    #: How long an `Idempotency-Key`'s answer is kept for replay: the same key after this is a new request.
    idempotency_retention_days: int = Field(default=30, ge=1)
    #: How often each service deletes inbox rows and idempotency keys past their retention.
    messaging_purge_seconds: float = Field(default=3600.0, gt=0)
    #: How often each service on PostgreSQL looks whether its tables need what autovacuum would do, and does it
    #: while the server's autovacuum is off (shared/upkeep.py): the daemon's own pace (`autovacuum_naptime`'s
    #: default). Each analysis makes every connection plan the table's statements again, which a shorter pace
    #: paid for in CPU while the tables grew. 0 turns the look off.
    db_upkeep_seconds: float = Field(default=60.0, ge=0)
    relay_interval_seconds: float = 0.5
    #: The relay's poll slows down to this while it finds nothing (its own commits wake it at once anyway).
    relay_idle_interval_seconds: float = 5.0
    #: Request bodies larger than this are refused with 413 (uploads have their own limit).
    max_body_bytes: int = 1_048_576
    #: Per minute, across every replica (0 turns a limit off): submissions per applicant, sign-ins per client
    #: address (shared/ratelimit.py).
    submit_rate_per_minute: int = 30
    login_rate_per_minute: int = 300
    #: How often each service refetches identity's token revocation list (the event brings each revocation at
    #: once; the list is for a service that starts later, or missed an event), and how long an entry is kept
    #: (longer than any access token lives).
    revocation_sync_seconds: float = 60.0
    revocation_horizon_seconds: float = 86400.0
    #: A request still running after this many seconds is cancelled and answered 503 (shared/budget.py);
    #: 0 turns the budget off. The gateway waits a little longer than this for a service.
    request_budget_seconds: float = 30.0

    @model_validator(mode="after")
    def _inbox_outlives_redelivery(self) -> PlatformSettings:
        floor = max(STREAM_MAX_AGE_DAYS, self.outbox_retention_days)
        if self.inbox_retention_days <= floor:
            raise ValueError(
                f"inbox_retention_days ({self.inbox_retention_days}) must exceed the stream's age limit "
                f"({STREAM_MAX_AGE_DAYS:g} days) and outbox_retention_days ({self.outbox_retention_days}): an event "
                f"can come again for that long, and only its inbox row stops it applying twice")
        return self

    def nats_credentials(self) -> NatsCredentials:
        """`user`/`password` for `shared.bus.Bus`, or nothing for an open server."""
        if not self.nats_user:
            return {}
        password = self.nats_password
        if not password and self.nats_password_file is not None:
            password = self.nats_password_file.read_text().strip()
        return {"user": self.nats_user, "password": password}


class ServiceSettings(BaseSettings):
    """One service's own settings, read from `YIMEN_<SERVICE>_*`."""

    model_config = SettingsConfigDict(extra="ignore")

    name: str
    database_url: str = ""
    port: int = 0
    #: Alembic runs on start-up unless a deployment migrates in a separate job.
    migrate_on_start: bool = True
    #: PostgreSQL connections per process (pool + overflow, each): keep 6 services × replicas under the
    #: server's max_connections. Opened on demand and kept; an overflow connection is closed again after use.
    db_pool_size: int = 10
    db_max_overflow: int = 0
    platform: PlatformSettings = Field(default_factory=PlatformSettings)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        self.platform.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{self.platform.var_dir / (self.name + '.db')}"


def normalise_database_url(url: str) -> str:
    """Accept the usual `postgresql://` and `sqlite:///` spellings and pick the async drivers."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def load_service_settings(name: str, **overrides: object) -> ServiceSettings:
    prefix = f"YIMEN_{name.upper()}_"
    values: dict[str, object] = {"name": name, "port": SERVICE_PORTS.get(name, 0)}
    for key in ("database_url", "port", "migrate_on_start", "db_pool_size", "db_max_overflow"):
        env = os.environ.get(prefix + key.upper())
        if env is not None:
            values[key] = env
    values.update(overrides)
    return ServiceSettings(**values)  # type: ignore[arg-type]


@lru_cache
def platform_settings() -> PlatformSettings:
    return PlatformSettings()
