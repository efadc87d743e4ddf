"""The simulator's settings (`YIMEN_SIMULATOR_*`), including every URL and path it calls, in one place."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import PlatformSettings

HERE = Path(__file__).resolve().parent


class InterfacePaths(BaseModel):
    """The public paths of identity and workflow the simulator speaks to (override as JSON in
    `YIMEN_SIMULATOR_PATHS` if a service moves one)."""

    identity_ready: str = "/identity/readyz"
    token: str = "/identity/v1/token"
    department_clients: str = "/identity/v1/department-clients"
    workflow_ready: str = "/workflow/readyz"
    webhook: str = "/workflow/v1/departments/{code}/webhook"
    decision: str = "/workflow/v1/tasks/{task_id}/decision"
    #: A joint review's actions: `schedule`, `opinions`, `consolidation` (联合审图 / 联合验收).
    joint_review_action: str = "/workflow/v1/joint-reviews/{review_id}/{action}"
    #: Where the payment platform confirms payments to intake (Standard Webhooks).
    payment_notification: str = "/intake/v1/payments/notifications"
    #: The simulator's own receiving path, appended to `public_url`.
    own_webhook: str = "/simulator/v1/webhooks/{code}"


class SimulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="YIMEN_SIMULATOR_", extra="ignore", env_nested_delimiter="__", populate_by_name=True
    )

    #: `YIMEN_HOST` (0.0.0.0 in containers) unless the simulator's own is set.
    host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("YIMEN_SIMULATOR_HOST", "YIMEN_HOST"))
    port: int = 8190
    #: Where workflow reaches the simulator; default `http://<host>:<port>` (127.0.0.1 when bound to all
    #: addresses). In containers set it to the simulator's name on the network, e.g. `http://simulator:8190`.
    public_url: str = ""
    identity_url: str = ""
    workflow_url: str = ""
    intake_url: str = ""
    #: The payment platform's signing secret (`whsec_…`), shared with intake.
    payment_secret: str = Field(
        default="", validation_alias=AliasChoices("YIMEN_SIMULATOR_PAYMENT_SECRET", "YIMEN_PAYMENT_WEBHOOK_SECRET"))
    paths: InterfacePaths = Field(default_factory=InterfacePaths)
    admin_username: str = Field(
        default="admin", validation_alias=AliasChoices("YIMEN_ADMIN_USERNAME", "YIMEN_SIMULATOR_ADMIN_USERNAME")
    )
    admin_password: str = Field(
        default="admin", validation_alias=AliasChoices("YIMEN_ADMIN_PASSWORD", "YIMEN_SIMULATOR_ADMIN_PASSWORD")
    )
    departments_file: Path = HERE / "departments.json"
    #: Credentials and webhook secrets kept across restarts; default `<var>/simulator.json`.
    state_file: Path | None = None
    #: Off in tests that only exercise the receiving side with secrets they set themselves.
    register_on_start: bool = True
    #: Pause between attempts while identity and workflow start (grows up to ten times this).
    retry_seconds: float = 1.0
    #: Pause after identity refused the admin login (it locks a username after five failures).
    auth_retry_seconds: float = 30.0
    #: Attempts to hand a decision to workflow or the bus before it is recorded as failed.
    decision_attempts: int = 8
    #: `{department code: bus password}` (written by `deploy.natsconfig`, mode 0600): each department's
    #: decisions go out on a connection of its own. Unset on an open server: one shared connection.
    nats_credentials_file: Path | None = None
    #: The same map inline (JSON in `YIMEN_SIMULATOR_NATS_CREDENTIALS`; compose passes it so).
    nats_credentials: dict[str, str] = Field(default_factory=dict, repr=False)
    http_timeout_seconds: float = 10.0
    platform: PlatformSettings = Field(default_factory=PlatformSettings)

    @property
    def name(self) -> str:
        return "simulator"

    def department_bus_credentials(self) -> dict[str, str] | None:
        """Each department's bus password, or None on an open server."""
        if self.nats_credentials:
            return dict(self.nats_credentials)
        if self.nats_credentials_file is not None:
            return json.loads(self.nats_credentials_file.read_text())
        return None

    def identity_base(self) -> str:
        return (self.identity_url or self.platform.service_urls["identity"]).rstrip("/")

    def workflow_base(self) -> str:
        return (self.workflow_url or self.platform.service_urls["workflow"]).rstrip("/")

    def intake_base(self) -> str:
        return (self.intake_url or self.platform.service_urls.get("intake", "http://127.0.0.1:8103")).rstrip("/")

    def own_base(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return (self.public_url or f"http://{host}:{self.port}").rstrip("/")

    def webhook_url(self, code: str) -> str:
        return self.own_base() + self.paths.own_webhook.format(code=code)

    def resolved_state_file(self) -> Path:
        return self.state_file or self.platform.var_dir / "simulator.json"
