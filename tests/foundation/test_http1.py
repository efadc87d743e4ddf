"""`shared.http1.KeepAliveClient`, the light HTTP/1.1 client the department simulator sends its decisions with:
it sends the request as given (and JSON as httpx encodes it), keeps and reuses connections, never runs more than
its bound at once, never writes into a connection the server closed, and fails (never retries) when there is no
whole answer. Against a raw HTTP/1.1 server on loopback whose behaviour each test sets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import h11
import httpx
import pytest

from shared.http1 import Answer, AnswerFailed, KeepAliveClient, Pool, RequestFailed, json_body
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


# ---- the shared core (`Pool`), which workflow's webhook sender is too ---------------------------------------

@dataclass
class Scripted:
    """A raw endpoint: `reply(n)` for the n-th request (from 1, over all connections) gives the bytes to send and
    whether to close the connection after them (None: close without answering). Keeps each request's head and the
    connection (its client port) it came on."""

    reply: Callable[[int], tuple[bytes | None, bool]]
    seen: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    #: The server's side of each connection, in the order they came.
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("peername")[1]
        self.writers.append(writer)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                headers = dict((k.strip().lower(), v.strip()) for k, v in (h.split(":", 1) for h in head[1:] if h))
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.seen.append((head[0].split(" ")[1], headers, port))
                data, close = self.reply(len(self.seen))
                if data is None:
                    return
                writer.write(data)
                await writer.drain()
                if close:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def scripted(behaviour: Scripted) -> AsyncIterator[int]:
    server = await asyncio.start_server(behaviour.handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def pool(**options: Any) -> Pool:
    return Pool(**{"idle_seconds": 30.0, "kept_per_origin": 4, "max_body": 1024, **options})


async def send(p: Pool, url: str, address: str | None = None) -> Answer:
    origin, request = p.prepare("POST", url, [("x-n", "1")], b"{}", address)
    async with asyncio.timeout(5):
        return await p.send(origin, request, b"{}")


async def test_a_pinned_address_is_connected_to_with_the_name_in_host_and_kept_per_address_and_name() -> None:
    behaviour = Scripted(lambda _n: (OK, False))
    p = pool()
    async with scripted(behaviour) as port:
        for name in ("hooks.dept.test", "hooks.dept.test", "other.dept.test"):
            assert (await send(p, f"http://{name}:{port}/h?x=1", "127.0.0.1")).status_code == 200
    await p.aclose()
    assert [(path, h["host"]) for path, h, _ in behaviour.seen] == [
        ("/h?x=1", f"hooks.dept.test:{port}"), ("/h?x=1", f"hooks.dept.test:{port}"),
        ("/h?x=1", f"other.dept.test:{port}")]
    ports = [c for _, _, c in behaviour.seen]
    assert ports[0] == ports[1] != ports[2]  # same address, another name: not the same connection


async def test_a_body_past_the_cap_fails_unless_only_the_status_is_read() -> None:
    big = b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n" + b"x" * 5000
    behaviour = Scripted(lambda n: (big if n in (1, 3) else OK, False))
    whole, status = pool(max_body=1000), pool(max_body=1000, status_only=True)
    async with scripted(behaviour) as port:
        with pytest.raises(RequestFailed, match="larger than 1000"):
            await send(whole, f"http://127.0.0.1:{port}/")
        answer = await send(whole, f"http://127.0.0.1:{port}/")
        assert (answer.status_code, answer.content, answer.header("content-length")) == (200, b"ok", "2")
        answer = await send(status, f"http://127.0.0.1:{port}/")
        assert (answer.status_code, answer.headers, answer.content) == (200, [], b"")
        assert (await send(status, f"http://127.0.0.1:{port}/")).status_code == 200
    await whole.aclose()
    await status.aclose()
    ports = [c for _, _, c in behaviour.seen]
    assert len(set(ports)) == 4  # each oversized answer's connection was dropped, not reused


async def test_an_answer_broken_after_its_head_stands_only_where_the_status_is_all_that_is_read() -> None:
    broken = b"HTTP/1.1 202 Accepted\r\ncontent-length: 100\r\n\r\nabc"
    behaviour = Scripted(lambda _n: (broken, True))
    whole, status = pool(), pool(status_only=True)
    async with scripted(behaviour) as port:
        with pytest.raises(AnswerFailed):
            await send(whole, f"http://127.0.0.1:{port}/")
        assert (await send(status, f"http://127.0.0.1:{port}/")).status_code == 202
    await whole.aclose()
    await status.aclose()


def _first_answered_then_hung_up(behaviour: Scripted) -> Callable[[int], tuple[bytes | None, bool]]:
    """Each connection's first request answered, its second met by the connection's close."""
    per_port: dict[int, int] = {}

    def reply(n: int) -> tuple[bytes | None, bool]:
        port = behaviour.seen[n - 1][2]
        per_port[port] = per_port.get(port, 0) + 1
        return (OK, False) if per_port[port] == 1 else (None, True)

    return reply


async def test_a_kept_connection_closed_as_the_request_is_written_is_resent_only_where_asked() -> None:
    """The server answers a connection's first request and closes it on reading the second (as a server closing
    an idle connection does, racing the request): the request is sent again on a new connection by a pool that
    resends, and fails (once, not retried) in one that does not."""
    for resend in (True, False):
        behaviour = Scripted(lambda _n: (None, True))
        behaviour.reply = _first_answered_then_hung_up(behaviour)
        p = pool(resend_if_kept_broke=resend)
        async with scripted(behaviour) as port:
            assert (await send(p, f"http://127.0.0.1:{port}/")).status_code == 200
            if resend:
                assert (await send(p, f"http://127.0.0.1:{port}/")).status_code == 200
            else:
                with pytest.raises(AnswerFailed):
                    await send(p, f"http://127.0.0.1:{port}/")
        await p.aclose()
        assert len(behaviour.seen) == (3 if resend else 2)
        assert len({c for _, _, c in behaviour.seen}) == (2 if resend else 1)


async def test_keeping_a_connection_drops_the_kept_ones_the_server_closed() -> None:
    """Two connections kept; the server closes one of them while idle: when the other is kept again after an
    exchange, the closed one is dropped then (not held until a request takes it)."""
    behaviour = Scripted(lambda _n: (OK, False))
    p = pool()
    async with scripted(behaviour) as port:
        url = f"http://127.0.0.1:{port}/"
        first, second = p.prepare("POST", url, [], b"", None), p.prepare("POST", url, [], b"", None)
        origin = first[0]
        conns = [await p._connect(origin), await p._connect(origin)]
        await p._exchange(origin, conns[0], first[1], b"")
        await p._exchange(origin, conns[1], second[1], b"")
        assert p._kept[origin] == conns
        behaviour.writers[0].close()
        await asyncio.sleep(0.1)  # the first connection's close arrives while it is kept
        assert p._kept[origin] == conns and conns[0].link.closed
        assert (await send(p, url)).status_code == 200  # takes the open one, keeps it again
        assert p._kept[origin] == [conns[1]]
    await p.aclose()
