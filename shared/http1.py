"""A small HTTP/1.1 keep-alive client on asyncio and h11, for a process that sends many small requests to the
same few origins.

Why not httpx there: at the department simulator's rate (a few decisions a second) the general client's
machinery was most of the process's CPU: request and response models, the cookie jar, the redirect and auth
loops, anyio's stream wrappers and its happy-eyeballs task group on every new connection, and a pool that asks
every kept connection whether its socket is readable before each request. Here a connection's closing is seen by
its protocol (`Link`) as it happens, so nothing is polled.

What it does: one request and its whole answer per exchange, on a kept connection of the same origin when one is
idle and open (else a new one), at most `max_connections` exchanges at once (more wait their turn, as in a
bounded pool). What it does not: redirects, cookies, compression, HTTP/2, proxies. A failure raises
`RequestFailed` (or `TimeoutError`); it is never retried here, so the caller's own retry rules stay the only
ones."""

from __future__ import annotations

import asyncio
import json as jsonlib
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

import h11

#: Largest answer head (status line and headers) read.
MAX_HEAD = 16 * 1024
#: Largest answer body read; past it the exchange fails (a JSON API's answers are far smaller).
MAX_BODY = 8 * 1024 * 1024


class Link(asyncio.Protocol):
    """One connection's bytes as they arrive, and whether it is closed (asyncio's stream classes, less what a
    single exchange does not use)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (Not an isinstance check: uvloop's transports, which the services run on, are not asyncio's classes.)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        """What has arrived (waiting for something); b"" once the peer closed and everything was read."""
        while not self.buffer and not self.closed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


class RequestFailed(OSError):
    """No answer: the connection could not be made, or broke (or was not HTTP/1.1) before the whole answer."""


@dataclass
class Answer:
    """A whole answer: its status, headers (names lower-case) and body."""

    status_code: int
    headers: list[tuple[str, str]]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)


#: A kept connection's origin: scheme, host, port.
_Origin = tuple[str, str, int]


@dataclass
class _Connection:
    link: Link
    http: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD))
    idle_since: float = 0.0

    def usable(self, now: float, idle_seconds: float) -> bool:
        """Still open, nothing unasked-for waiting in it (a server's parting 408), and not idle too long."""
        return not self.link.closed and not self.link.buffer and now - self.idle_since < idle_seconds

    def close(self) -> None:
        if self.link.transport is not None:
            self.link.transport.abort()  # nothing more to say to it, and no waiting on a slow close handshake


def json_body(value: Any) -> bytes:
    """JSON as request bodies are sent (UTF-8, compact, no NaN)."""
    return jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class KeepAliveClient:
    """Requests over kept HTTP/1.1 connections, at most `max_connections` at once.

    `timeout` bounds the wait for a turn and, separately, the exchange (connecting, sending, the whole answer).
    `idle_seconds` should stay below the servers' keep-alive timeout: the side that closes an idle connection is
    then the client, and a request is never written into a connection the server is closing."""

    def __init__(self, *, timeout: float, max_connections: int, idle_seconds: float = 30.0,
                 user_agent: str = "yimen", ssl_context: ssl.SSLContext | None = None) -> None:
        self.timeout = timeout
        self.idle_seconds = idle_seconds
        self.user_agent = user_agent
        self._turns = asyncio.Semaphore(max_connections)
        self._max_kept = max_connections
        self._ssl = ssl_context
        self._kept: dict[_Origin, list[_Connection]] = {}

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            import httpx  # the trust store (certifi) and TLS settings the platform's other clients use

            self._ssl = httpx.create_ssl_context()
        return self._ssl

    async def post(self, url: str, *, json: Any = None, headers: Iterable[tuple[str, str]] = ()) -> Answer:
        return await self.request("POST", url, body=json_body(json),
                                  headers=[("content-type", "application/json"), *headers])

    async def request(self, method: str, url: str, *, body: bytes = b"",
                      headers: Iterable[tuple[str, str]] = ()) -> Answer:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an absolute http(s) URL: {url}")
        origin: _Origin = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = h11.Request(method=method, target=target, headers=[
            ("host", parts.netloc.rsplit("@", 1)[-1]), ("user-agent", self.user_agent), ("accept", "*/*"),
            ("content-length", str(len(body))), *headers])
        async with asyncio.timeout(self.timeout):
            await self._turns.acquire()
        try:
            async with asyncio.timeout(self.timeout):
                conn = self._take(origin) or await self._connect(origin)
                return await self._exchange(origin, conn, request, body)
        finally:
            self._turns.release()

    def _take(self, origin: _Origin) -> _Connection | None:
        kept = self._kept.get(origin)
        now = time.monotonic()
        while kept:
            conn = kept.pop()
            if conn.usable(now, self.idle_seconds):
                return conn
            conn.close()
        return None

    async def _connect(self, origin: _Origin) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            if scheme == "https":
                _, link = await loop.create_connection(Link, host, port, ssl=self._tls(), server_hostname=host)
            else:
                _, link = await loop.create_connection(Link, host, port)
        except (OSError, ssl.SSLError) as exc:
            raise RequestFailed(f"cannot connect to {host}:{port}: {type(exc).__name__}: {exc}") from exc
        return _Connection(link)

    async def _exchange(self, origin: _Origin, conn: _Connection, request: h11.Request, body: bytes) -> Answer:
        http, link = conn.http, conn.link
        status, headers, content, event = 0, [], bytearray(), None
        try:
            assert link.transport is not None
            link.transport.write(http.send(request) + http.send(h11.Data(data=body)) + http.send(h11.EndOfMessage()))
            while not isinstance(event, h11.EndOfMessage):
                event = http.next_event()
                if event is h11.NEED_DATA:
                    http.receive_data(await link.read())
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers]
                elif isinstance(event, h11.Data):
                    content += event.data
                    if len(content) > MAX_BODY:
                        raise RequestFailed(f"the answer's body is larger than {MAX_BODY} bytes")
                elif isinstance(event, h11.ConnectionClosed):
                    raise RequestFailed("the server closed the connection before its whole answer")
        except h11.ProtocolError as exc:
            conn.close()
            raise RequestFailed(f"not an HTTP/1.1 answer: {exc}") from exc
        except BaseException:
            conn.close()  # a timeout or cancellation mid-exchange leaves the connection in no state to reuse
            raise
        self._keep(origin, conn)
        return Answer(status, headers, bytes(content))

    def _keep(self, origin: _Origin, conn: _Connection) -> None:
        http = conn.http
        if http.our_state is h11.DONE and http.their_state is h11.DONE and not conn.link.closed:
            http.start_next_cycle()
            conn.idle_since = time.monotonic()
            kept = self._kept.setdefault(origin, [])
            if len(kept) < self._max_kept:
                kept.append(conn)
                return
        conn.close()

    async def aclose(self) -> None:
        for kept in self._kept.values():
            for conn in kept:
                conn.close()
        self._kept.clear()
