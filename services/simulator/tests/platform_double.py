"""A stand-in for identity's and workflow's public endpoints the simulator calls, served over real HTTP so the
simulator's own clients are exercised. It records every call for the tests to inspect."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.testing import eventually, free_port


@dataclass
class DecisionCall:
    task_id: str
    department: str
    client_id: str
    body: dict[str, Any]
    status: int
    #: The caller's TCP port: which of its connections the decision came on.
    port: int = 0


@dataclass
class PlatformDouble:
    admin_username: str = "admin"
    admin_password: str = "s3cret-admin"
    ready: bool = True
    clients: dict[str, tuple[str, str]] = field(default_factory=dict)  # client_id -> (secret, department)
    tokens: dict[str, str] = field(default_factory=dict)  # token -> client_id or "admin"
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    decisions: list[DecisionCall] = field(default_factory=list)
    closed_tasks: set[str] = field(default_factory=set)
    #: The next this-many decision calls answer 503 (workflow restarting).
    failing_decisions: int = 0
    #: How long a decision call is held before its answer (workflow busy), so that a burst is in flight at once.
    decision_pause: float = 0.0
    #: Departments identity does not know (yet): creating their client answers 422.
    unknown_departments: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    url: str = ""

    def count(self, prefix: str) -> int:
        return sum(1 for c in self.calls if c.startswith(prefix))

    def decisions_for(self, task_id: str) -> list[DecisionCall]:
        return [d for d in self.decisions if d.task_id == task_id]

    def _caller(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        return self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None

    def _issue(self, owner: str) -> dict[str, Any]:
        token = secrets.token_urlsafe(16)
        self.tokens[token] = owner
        return {"access_token": token, "refresh_token": None, "expires_in": 900, "token_type": "Bearer"}

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/identity/readyz")
        @app.get("/workflow/readyz")
        async def readyz() -> JSONResponse:
            return JSONResponse({"status": "ready" if self.ready else "not ready"}, 200 if self.ready else 503)

        @app.post("/identity/v1/token")
        async def token(request: Request) -> JSONResponse:
            form = await request.form()
            self.calls.append(f"token:{form.get('grant_type')}")
            if form.get("grant_type") == "password":
                if (form.get("username"), form.get("password")) == (self.admin_username, self.admin_password):
                    return JSONResponse(self._issue("admin"))
            elif form.get("grant_type") == "client_credentials":
                cid = str(form.get("client_id"))
                if cid in self.clients and self.clients[cid][0] == form.get("client_secret"):
                    return JSONResponse(self._issue(cid))
            return JSONResponse({"error": "invalid_grant"}, 400)

        @app.post("/identity/v1/department-clients")
        async def department_client(request: Request) -> JSONResponse:
            if self._caller(request) != "admin":
                return JSONResponse({"title": "admin only"}, 403)
            body = await request.json()
            if body["department"] in self.unknown_departments:
                return JSONResponse({"title": "unknown department", "errors": [
                    {"field": "body.department", "rule": "unknown_department", "message": "?"}]}, 422)
            self.calls.append(f"client:{body['department']}")
            cid, secret = "dc_" + secrets.token_hex(6), secrets.token_urlsafe(24)
            self.clients[cid] = (secret, body["department"])
            return JSONResponse({"client_id": cid, "client_secret": secret, "department": body["department"]}, 201)

        def department_of(request: Request) -> tuple[str, str] | None:
            cid = self._caller(request)
            return (cid, self.clients[cid][1]) if cid in self.clients else None

        @app.get("/workflow/v1/departments/{code}/webhook")
        async def get_webhook(code: str, request: Request) -> JSONResponse:
            who = department_of(request)
            if who is None or who[1] != code:
                return JSONResponse({"title": "forbidden"}, 403)
            if code not in self.webhooks:
                return JSONResponse({"title": "not found"}, 404)
            return JSONResponse(self.webhooks[code])

        @app.put("/workflow/v1/departments/{code}/webhook")
        async def put_webhook(code: str, request: Request) -> JSONResponse:
            who = department_of(request)
            if who is None or who[1] != code:
                return JSONResponse({"title": "forbidden"}, 403)
            body = await request.json()
            self.calls.append(f"webhook:{code}")
            secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
            self.webhooks[code] = {"url": body["url"], "enabled": body["enabled"], "secret": secret}
            return JSONResponse(self.webhooks[code])

        @app.post("/workflow/v1/tasks/{task_id}/decision")
        async def decide(task_id: str, request: Request) -> JSONResponse:
            who = department_of(request)
            if who is None:
                self.calls.append(f"decision-401:{task_id}")
                return JSONResponse({"title": "unauthorized"}, 401)
            if self.failing_decisions > 0:
                self.failing_decisions -= 1
                self.calls.append(f"decision-503:{task_id}")
                return JSONResponse({"title": "unavailable"}, 503)
            body = await request.json()
            await asyncio.sleep(self.decision_pause)
            status = 409 if task_id in self.closed_tasks else 200
            port = request.client.port if request.client else 0
            self.decisions.append(DecisionCall(task_id, who[1], who[0], body, status, port))
            if status == 409:
                return JSONResponse({"title": "already decided"}, 409, media_type="application/problem+json")
            if body.get("outcome") != "request_correction":
                self.closed_tasks.add(task_id)
            return JSONResponse({"task_id": task_id, "state": "decided"})

        return app

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[PlatformDouble]:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(self.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        await eventually(lambda: server.started)
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            server.should_exit = True
            await task
