"""The gateway (deploy/gateway.py) in front of a real service, both over loopback HTTP (issue 13): malformed
request targets are a 400 problem+json, a service's redirect never shows its internal address, and a connection
the service closed is never handed to the next client as a 503."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import uvicorn

from deploy.gateway import create_gateway
from services.catalog.app import create_app as catalog_app
from shared.testing import eventually, free_port
from tests.security.conftest import serve


@contextlib.asynccontextmanager
async def gateway(routes: dict[str, str]) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_gateway(routes), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, timeout=15)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def test_malformed_targets_redirects_and_huge_versions_through_the_gateway(settings_for, tokens):
    async with serve(catalog_app, settings_for("catalog"), tokens=tokens, demo=True) as catalog, \
            gateway({"catalog": catalog.url}) as gw:
        async with httpx.AsyncClient(base_url=gw, timeout=30) as http:
            for target in ("/catalog/v1/departments/%07", "/catalog/v1/departments/%0A", "/catalog/v1/departments/%zz",
                           "/catalog/v1/departments/%C3%28", "/catalog/v1/departments?q=%E4%B8"):
                r = await http.get(target)
                assert r.status_code == 400, (target, r.status_code, r.text)
                assert r.headers["content-type"] == "application/problem+json", target
                assert r.json()["type"].endswith("/malformed-request")
            # A code with an escaped slash stays one path segment (it is forwarded as received, not re-encoded).
            r = await http.get("/catalog/v1/departments/LD%2FSCJGJ")
            assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", r.text

            item = (await http.get("/catalog/v1/items")).json()["items"][0]["code"]
            for route in ("", "/guide", "/flowchart.svg", "/cpsv"):
                r = await http.get(f"/catalog/v1/items/{item}{route}", params={"version": "9223372036854775808"})
                assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
                assert r.json()["errors"][0]["field"] == "query.version"
                # The next client is served on a good connection.
                assert (await http.get("/catalog/v1/departments")).status_code == 200

            r = await http.get("/catalog/v1/departments/", follow_redirects=False)
            assert r.status_code in (307, 308), r.text
            assert r.headers["location"] == f"{gw}/catalog/v1/departments"
            assert catalog.url not in r.headers["location"]
            assert (await http.get("/nothing/here")).headers["content-type"] == "application/problem+json"


class ClosingUpstream:
    """A service that answers the first request of each connection and then, as a keep-alive connection ends at
    the server's idle timeout or after its error, closes the connection when the next request arrives on it."""

    def __init__(self) -> None:
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if served:  # a second request on this connection: hang up without an answer
                    break
                self.requests += 1
                served += 1
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                body = b'{"ok": true}'
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_a_connection_the_service_closed_is_not_the_next_clients_503():
    upstream = ClosingUpstream()
    async with upstream as url, gateway({"flaky": url}) as gw:
        async with httpx.AsyncClient(base_url=gw, timeout=30) as http:
            for i in range(4):
                r = await http.get(f"/flaky/v1/things/{i}")
                assert r.status_code == 200, (i, r.text)
                r = await http.put(f"/flaky/v1/things/{i}", json={"n": i})
                assert r.status_code == 200, (i, r.text)
            # A POST without an Idempotency-Key is not sent twice: the client learns it failed.
            await http.get("/flaky/v1/things/x")
            before = upstream.requests
            r = await http.post("/flaky/v1/things", json={})
            assert r.status_code in (200, 503) and upstream.requests - before <= 1
            assert r.headers["content-type"] in ("application/json", "application/problem+json")


async def test_a_body_that_trickles_in_is_cut_off_at_the_budget():
    """A client that sends its headers and then its body a byte at a time, forever (slowloris), holds a gateway
    connection only for the budget, and no request reaches the service."""
    upstream = ClosingUpstream()
    async with upstream as url:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_gateway({"flaky": url}, budget_seconds=0.5), host="127.0.0.1",
                                               port=port, log_level="warning", access_log=False))
        task = asyncio.create_task(server.serve())
        try:
            await eventually(lambda: server.started, timeout=15)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"PUT /flaky/v1/things/1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: 100\r\n\r\n{")
            await writer.drain()
            began = asyncio.get_running_loop().time()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 408"), head
            assert b"application/problem+json" in head
            assert asyncio.get_running_loop().time() - began < 10
            writer.close()
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 15)
    assert upstream.requests == 0
