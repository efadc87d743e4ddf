"""The small HTTP clients for identity and workflow: only their public interfaces, only through here."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from services.simulator.config import SimulatorSettings
from shared.http1 import Answer, KeepAliveClient


class ApiError(Exception):
    """A service answered with a status the caller has to decide about."""

    def __init__(self, what: str, status: int, body: str) -> None:
        super().__init__(f"{what}: HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


def _check(what: str, response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 300:
        raise ApiError(what, response.status_code, response.text)
    return response.json() if response.content else {}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _bearer_header(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class IssuedToken:
    access_token: str
    expires_at: float

    def fresh(self) -> bool:
        return time.monotonic() < self.expires_at - 30


class Platform:
    """Identity and workflow as the simulator sees them."""

    def __init__(self, settings: SimulatorSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.paths = settings.paths
        self.http = http
        self.identity = settings.identity_base()
        self.workflow = settings.workflow_base()

    async def ready(self) -> bool:
        """Both identity and workflow say they are ready."""
        for url in (self.identity + self.paths.identity_ready, self.workflow + self.paths.workflow_ready):
            try:
                if (await self.http.get(url)).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
        return True

    async def wait_ready(self, *, log_every: float = 10.0, on_wait: Any = None) -> None:
        pause = self.settings.retry_seconds
        while not await self.ready():
            if on_wait is not None:
                on_wait()
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, self.settings.retry_seconds * 10)

    # ---- identity ----------------------------------------------------------------------------------------

    async def password_token(self, username: str, password: str) -> IssuedToken:
        r = await self.http.post(
            self.identity + self.paths.token,
            data={"grant_type": "password", "username": username, "password": password},
        )
        return _token(_check("admin login", r))

    async def client_token(self, client_id: str, client_secret: str) -> IssuedToken:
        r = await self.http.post(
            self.identity + self.paths.token,
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
        )
        return _token(_check("department client login", r))

    async def create_department_client(self, admin_token: str, code: str, name: str) -> tuple[str, str]:
        r = await self.http.post(
            self.identity + self.paths.department_clients,
            json={"department": code, "name": name},
            headers=_bearer(admin_token),
        )
        body = _check(f"create department client {code}", r)
        return body["client_id"], body["client_secret"]

    # ---- workflow ----------------------------------------------------------------------------------------

    async def current_webhook(self, token: str, code: str) -> dict[str, Any] | None:
        """What workflow has registered for the department, if it says (None when it cannot)."""
        try:
            r = await self.http.get(self.workflow + self.paths.webhook.format(code=code), headers=_bearer(token))
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 and r.content else None

    async def register_webhook(self, token: str, code: str, url: str) -> str:
        """Register the department's endpoint; returns the signing secret (`whsec_…`)."""
        r = await self.http.put(
            self.workflow + self.paths.webhook.format(code=code),
            json={"url": url, "enabled": True},
            headers=_bearer(token),
        )
        return str(_check(f"register webhook {code}", r)["secret"])

    async def decide(self, token: str, task_id: str, body: dict[str, Any], http: KeepAliveClient) -> Answer:
        """Post a department's decision through that department's own client (`decision_client`)."""
        return await http.post(self.workflow + self.paths.decision.format(task_id=task_id), json=body,
                               headers=_bearer_header(token))

    async def joint_review_action(self, token: str, review_id: str, action: str, body: dict[str, Any],
                                  http: KeepAliveClient) -> Answer:
        """A joint review's action (schedule, opinion, consolidation) through the department's own client."""
        return await http.post(
            self.workflow + self.paths.joint_review_action.format(review_id=review_id, action=action), json=body,
            headers=_bearer_header(token),
        )


#: Connections a department's system keeps open to workflow. Each department's legacy system is a client of its
#: own, as a real department's integration would be: a small pool per department queues its bursts.
DECISION_CONNECTIONS = 4
#: How long an idle decision connection is kept: well under the platform's keep-alive (`shared.serving`, 75 s),
#: so the simulator closes it first; long enough that a department answering every few seconds keeps its
#: connections (httpx's 5 s made it connect again for most decisions at ten clients).
DECISION_IDLE_SECONDS = 30.0


def decision_client(timeout: float) -> KeepAliveClient:
    """A department's own HTTP client for its decisions and joint review actions (a light HTTP/1.1 client: httpx's
    machinery was about two fifths of the simulator's CPU, see `shared.http1`)."""
    return KeepAliveClient(timeout=timeout, max_connections=DECISION_CONNECTIONS, idle_seconds=DECISION_IDLE_SECONDS,
                           user_agent="yimen-simulator")


def _token(body: dict[str, Any]) -> IssuedToken:
    return IssuedToken(
        access_token=str(body["access_token"]),
        expires_at=time.monotonic() + float(body.get("expires_in") or 300),
    )
