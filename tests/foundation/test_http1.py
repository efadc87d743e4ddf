"""`shared.http1.KeepAliveClient`, the light HTTP/1.1 client the department simulator sends its decisions with:
it sends the request as given (and JSON as httpx encodes it), keeps and reuses connections, never runs more than
its bound at once, never writes into a connection the server closed, and fails (never retries) when there is no
whole answer. Against a raw HTTP/1.1 server on loopback whose behaviour each test sets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import h11
import httpx
import pytest

from shared.http1 import KeepAliveClient, RequestFailed, json_body
from shared.testing import free_port


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    #: The client's TCP port: which of its connections the request came on.
    port: int


@dataclass
class RawServer:
    """Answers every request 200 with `{"n": <its number>}`; `close_after_answer` closes each connection after
    one answer (as a server closing an idle connection would, just after); `hold` keeps answers back."""

    seen: list[Seen] = field(default_factory=list)
    close_after_answer: bool = False
    hold: float = 0.0
    in_flight: int = 0
    most_in_flight: int = 0
    connections: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        port = writer.get_extra_info("peername")[1]
        try:
            while True:
                request, body = None, b""
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await reader.read(65536)
                        conn.receive_data(data)
                        if not data and request is None:
                            return
                    elif isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed):
                        return
                assert request is not None
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                self.seen.append(Seen(request.method.decode(), request.target.decode(),
                                      {k.decode(): v.decode() for k, v in request.headers}, body, port))
                if self.hold:
                    await asyncio.sleep(self.hold)
                self.in_flight -= 1
                answer = json.dumps({"n": len(self.seen)}).encode()
                headers = [("content-type", "application/json"), ("content-length", str(len(answer)))]
                writer.write(conn.send(h11.Response(status_code=200, headers=headers)) + conn.send(h11.Data(data=answer))
                             + conn.send(h11.EndOfMessage()))
                await writer.drain()
                if self.close_after_answer:
                    return
                conn.start_next_cycle()
        finally:
            writer.close()


@asynccontextmanager
async def raw_server(behaviour: RawServer) -> AsyncIterator[str]:
    port = free_port()
    server = await asyncio.start_server(behaviour.handle, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def test_sends_the_request_as_given_and_json_as_httpx_encodes_it() -> None:
    behaviour = RawServer()
    body = {"outcome": "approve", "reasons": ["材料齐全"], "n": 1.5}
    client = KeepAliveClient(timeout=5, max_connections=2)
    async with raw_server(behaviour) as base:
        answer = await client.post(f"{base}/workflow/v1/tasks/t-1/decision?x=1", json=body,
                                   headers=[("authorization", "Bearer tok")])
    await client.aclose()
    assert answer.status_code == 200 and answer.json() == {"n": 1} and answer.header("Content-Type") == \
        "application/json"
    (seen,) = behaviour.seen
    assert (seen.method, seen.target) == ("POST", "/workflow/v1/tasks/t-1/decision?x=1")
    assert seen.headers["authorization"] == "Bearer tok"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["host"] == base.removeprefix("http://")
    assert seen.body == json_body(body) == httpx.Request("POST", base, json=body).content


async def test_keeps_and_reuses_one_connection_for_requests_in_turn() -> None:
    behaviour = RawServer()
    client = KeepAliveClient(timeout=5, max_connections=4)
    async with raw_server(behaviour) as base:
        for _ in range(5):
            assert (await client.post(f"{base}/x", json={})).status_code == 200
    await client.aclose()
    assert behaviour.connections == 1 and len({s.port for s in behaviour.seen}) == 1


async def test_a_burst_runs_at_most_its_bound_at_once_and_queues_the_rest() -> None:
    behaviour = RawServer(hold=0.05)
    client = KeepAliveClient(timeout=5, max_connections=3)
    async with raw_server(behaviour) as base:
        answers = await asyncio.gather(*(client.post(f"{base}/x", json={"i": i}) for i in range(12)))
    await client.aclose()
    assert all(a.status_code == 200 for a in answers)
    assert behaviour.most_in_flight <= 3 and behaviour.connections <= 3


async def test_a_connection_the_server_closed_is_not_written_into() -> None:
    behaviour = RawServer(close_after_answer=True)
    client = KeepAliveClient(timeout=5, max_connections=1)
    async with raw_server(behaviour) as base:
        assert (await client.post(f"{base}/x", json={})).status_code == 200
        await asyncio.sleep(0.1)  # the server's close arrives while the connection is idle
        assert (await client.post(f"{base}/x", json={})).status_code == 200
    await client.aclose()
    assert behaviour.connections == 2 and len(behaviour.seen) == 2


async def test_an_idle_connection_is_dropped_after_idle_seconds() -> None:
    behaviour = RawServer()
    client = KeepAliveClient(timeout=5, max_connections=1, idle_seconds=0.05)
    async with raw_server(behaviour) as base:
        await client.post(f"{base}/x", json={})
        await asyncio.sleep(0.1)
        await client.post(f"{base}/x", json={})
    await client.aclose()
    assert behaviour.connections == 2


async def test_no_answer_fails_and_is_not_retried() -> None:
    client = KeepAliveClient(timeout=5, max_connections=1)
    with pytest.raises(RequestFailed):
        await client.post(f"http://127.0.0.1:{free_port()}/x", json={})  # nobody listens

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        calls.append(await reader.read(65536))
        writer.close()

    calls: list[bytes] = []
    port = free_port()
    server = await asyncio.start_server(hang_up, "127.0.0.1", port)
    try:
        with pytest.raises(RequestFailed):
            await client.post(f"http://127.0.0.1:{port}/x", json={})
    finally:
        server.close()
    assert len(calls) == 1


async def test_an_answer_that_does_not_come_times_out_and_frees_its_turn() -> None:
    behaviour = RawServer(hold=1.0)
    client = KeepAliveClient(timeout=0.2, max_connections=1)
    async with raw_server(behaviour) as base:
        with pytest.raises(TimeoutError):
            await client.post(f"{base}/x", json={})
        behaviour.hold = 0.0
        assert (await client.post(f"{base}/x", json={})).status_code == 200
    await client.aclose()
    assert behaviour.connections == 2  # the timed-out connection was not reused
