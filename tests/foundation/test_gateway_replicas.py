"""The gateway balances a prefix over its replicas (deploy/gateway.py, `make run REPLICAS=N`): round robin
over loopback HTTP; a replica that is down is skipped without the client noticing, whatever the method; a
replica whose /readyz fails (hung, or its database gone) is taken out by the probe and back in when ready.

The replicas here are small HTTP servers that say who they are: what is under test is the gateway's choice
of upstream, which a real service's answers would not reveal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from deploy.gateway import create_gateway
from shared.testing import eventually, free_port


class Replica:
    def __init__(self, name: str) -> None:
        self.name, self.ready, self.hits = name, True, 0

    def app(self) -> Starlette:
        async def readyz(_: Request) -> JSONResponse:
            return JSONResponse({"status": "ok" if self.ready else "down"}, status_code=200 if self.ready else 503)

        async def any_route(request: Request) -> JSONResponse:
            self.hits += 1
            return JSONResponse({"replica": self.name, "method": request.method})

        return Starlette(routes=[Route("/svc/readyz", readyz),
                                 Route("/svc/{path:path}", any_route, methods=["GET", "POST"])])


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, timeout=15)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def test_round_robin_skips_a_dead_replica_and_probes_a_hung_one_out_and_back_in() -> None:
    a, b = Replica("a"), Replica("b")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: a replica killed with -9
    async with served(a.app()) as (url_a, _), served(b.app()) as (url_b, _), \
            served(create_gateway({"svc": [url_a, dead, url_b]}, probe_seconds=0.2)) as (gw, _):
        async with httpx.AsyncClient(base_url=gw, timeout=10) as http:
            seen = [(await http.get("/svc/v1/things")).json()["replica"] for _ in range(12)]
            assert set(seen) == {"a", "b"}, seen
            assert abs(seen.count("a") - seen.count("b")) <= 2, seen
            # A POST without an Idempotency-Key also goes on: the dead replica refused the connection, so
            # nothing was sent to it.
            for _ in range(6):
                r = await http.post("/svc/v1/things", json={})
                assert r.status_code == 200 and r.json()["replica"] in ("a", "b")
            state = (await http.get("/_gateway/replicas")).json()["svc"]
            assert state == {url_a: "in", dead: "out", url_b: "in"}

            # b stops being ready: the probe takes it out, and every request goes to a.
            b.ready = False
            await eventually(lambda: _is(http, url_b, "out"), timeout=10)
            before = b.hits
            assert {(await http.get("/svc/v1/x")).json()["replica"] for _ in range(8)} == {"a"}
            assert b.hits == before
            # b is ready again: back in rotation.
            b.ready = True
            await eventually(lambda: _is(http, url_b, "in"), timeout=10)
            assert {(await http.get("/svc/v1/x")).json()["replica"] for _ in range(8)} == {"a", "b"}


async def test_with_every_replica_down_the_client_gets_a_503_problem() -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    async with served(create_gateway({"svc": dead}, probe_seconds=0.2)) as (gw, _):
        async with httpx.AsyncClient(base_url=gw, timeout=10) as http:
            r = await http.post("/svc/v1/things", json={})
            assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
            assert r.headers["retry-after"]


async def _is(http: httpx.AsyncClient, base: str, state: str) -> bool:
    return bool((await http.get("/_gateway/replicas")).json()["svc"][base] == state)
