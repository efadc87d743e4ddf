"""The console's settings (`YIMEN_CONSOLE_*`). It has no database: everything it shows comes from the public APIs."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import PlatformSettings

#: The console's port under `make run` (the services use 8101–8106, the simulator 8190).
DEFAULT_PORT = 8180


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIMEN_CONSOLE_", extra="ignore", populate_by_name=True)

    host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("YIMEN_CONSOLE_HOST", "YIMEN_HOST"))
    port: int = DEFAULT_PORT
    #: One origin for every API call (e.g. the gateway or the ingress). Empty: each prefix goes to the service's
    #: own URL from `YIMEN_SERVICE_URLS`, which every deployment already sets.
    api_url: str = ""
    #: Mark the session cookie `Secure` (set it behind TLS; `make run` serves plain HTTP on localhost).
    secure_cookies: bool = False
    #: Working days a clerk has to accept or refuse a submitted application before the desk shows it overdue
    #: (《行政许可法》第三十二条: 五日内一次告知).
    acceptance_days: int = Field(default=5, ge=1, le=60)
    #: Days and months drawn on the KPI charts.
    chart_days: int = Field(default=14, ge=2, le=62)
    chart_months: int = Field(default=6, ge=2, le=24)
    http_timeout_seconds: float = 15.0
    platform: PlatformSettings = Field(default_factory=PlatformSettings)

    def base_for(self, path: str) -> str:
        """The base URL that serves an API path such as `/efficacy/v1/dashboard`."""
        if self.api_url:
            return self.api_url.rstrip("/")
        service = path.lstrip("/").split("/", 1)[0]
        urls = self.platform.service_urls
        if service not in urls:
            raise KeyError(f"no URL for the {service!r} service")
        return urls[service].rstrip("/")
