"""A small HTTP/1.1 client on asyncio and h11 that keeps connections alive, for a process that sends many small
requests to the same few places: `Pool` (connecting, taking a kept connection, one exchange) and, over it,
`KeepAliveClient` for JSON APIs. Workflow's webhook sender (`services/workflow/sender.py`) is a `Pool` too.

Why not httpx there: at the department simulator's rate (a few decisions a second) the general client's
machinery was most of the process's CPU, and in workflow's profile the webhook send was about a fifth of the
service's: request and response models, the cookie jar, the redirect and auth loops, anyio's stream wrappers and
its happy-eyeballs task group on every new connection, and a pool that asks every kept connection whether its
socket is readable before each request. Here a connection's closing is seen by its protocol (`Link`) as it
happens, so nothing is polled.

What it does: one request and its whole answer per exchange (or only its status), on a kept connection to the
same place when one is idle and open (else a new one). Where a connection goes is its `Origin`: the scheme, the
address connected to (an address the caller already checked, or the URL's host name), the port, and the name
sent in `Host` and, for https, in SNI and the certificate check; a kept connection is reused only for the same
four. What it does not: redirects (a 3xx is an answer like any other), cookies, compression, HTTP/2, proxies. A
failure raises `RequestFailed` (`ConnectFailed`, `AnswerFailed`) or `TimeoutError`; the caller's deadline bounds
an exchange."""

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
#: Largest answer body `KeepAliveClient` reads; past it the exchange fails (a JSON API's answers are far smaller).
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


class ConnectFailed(RequestFailed):
    """The address did not take a connection (refused, unreachable, TLS handshake or certificate refused): the
    caller may try another address of the same name."""


class AnswerFailed(RequestFailed):
    """The connection broke, or the server did not answer HTTP/1.1, before the answer (before its head where only
    the status is read)."""


@dataclass
class Answer:
    """A whole answer: its status, headers (names lower-case) and body (for a `Pool` reading only the status,
    no headers and an empty body)."""

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


#: Where a connection goes, and the key its kept connections are found by: the scheme, what is connected to (an
#: address pinned by the caller, or the host name, resolved when connecting), the port, and the name in `Host` and,
#: for https, in SNI and the certificate check. (A plain tuple: it is made and hashed on every request.)
Origin = tuple[str, str, int, str]


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


class Pool:
    """Kept connections per `Origin`, and one exchange at a time on each. No deadline and no bound on exchanges
    at once here: the caller sets both (`asyncio.timeout` around `send`, a semaphore).

    - `idle_seconds`: a kept connection idle longer is closed rather than reused. It should stay below the
      servers' keep-alive timeout: the side that closes an idle connection is then the client, and a request is
      never written into a connection the server is closing.
    - `kept_per_origin`: idle connections kept per origin; more are closed once answered.
    - `max_body`, `status_only`: with `status_only` the answer is its status alone (no headers, no body): a body
      past `max_body` bytes is not read (the connection is dropped) and an answer that breaks after its head
      stands. Without it, the body is kept, and past `max_body`, or broken, the exchange fails.
    - `resend_if_kept_broke`: a kept connection that broke before the answer (a server closing it as the request
      was written) gets the request again on a new connection. Only for requests whose receiver drops a
      repeat; otherwise it fails, and the caller's own retry rules stay the only ones.
    - `headers`: sent after `Host` on every request, before `content-length` and the request's own."""

    def __init__(self, *, idle_seconds: float, kept_per_origin: int, max_body: int, status_only: bool = False,
                 resend_if_kept_broke: bool = False, headers: Iterable[tuple[str, str]] = (),
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.idle_seconds = idle_seconds
        self.kept_per_origin = kept_per_origin
        self.max_body = max_body
        self.status_only = status_only
        self.resend_if_kept_broke = resend_if_kept_broke
        self.headers = list(headers)
        self._ssl = ssl_context
        self._kept: dict[Origin, list[_Connection]] = {}

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            import httpx  # the trust store (certifi) and TLS settings the platform's other clients use

            self._ssl = httpx.create_ssl_context()
        return self._ssl

    def prepare(self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes,
                address: str | None = None) -> tuple[Origin, h11.Request]:
        """Where `url` goes (to `address` when given, else to its host name) and its request."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an absolute http(s) URL: {url}")
        origin: Origin = (parts.scheme, address or parts.hostname,
                          parts.port or (443 if parts.scheme == "https" else 80), parts.hostname)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return origin, h11.Request(method=method, target=target, headers=[
            ("host", parts.netloc.rsplit("@", 1)[-1]), *self.headers, ("content-length", str(len(body))), *headers])

    async def send(self, origin: Origin, request: h11.Request, body: bytes) -> Answer:
        """One exchange, on a kept connection to `origin` if one is usable, else on a new one."""
        conn = self._take(origin)
        if conn is not None:
            if not self.resend_if_kept_broke:
                return await self._exchange(origin, conn, request, body)
            try:
                return await self._exchange(origin, conn, request, body)
            except AnswerFailed:
                pass  # nothing was answered: the request goes again on a new connection
        return await self._exchange(origin, await self._connect(origin), request, body)

    def _take(self, origin: Origin) -> _Connection | None:
        kept = self._kept.get(origin)
        now = time.monotonic()
        while kept:
            conn = kept.pop()
            if conn.usable(now, self.idle_seconds):
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, address, port, name = origin
        loop = asyncio.get_running_loop()
        try:
            if scheme == "https":
                _, link = await loop.create_connection(Link, address, port, ssl=self._tls(), server_hostname=name)
            else:
                _, link = await loop.create_connection(Link, address, port)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(f"{type(exc).__name__}: {exc}") from exc
        return _Connection(link)

    async def _exchange(self, origin: Origin, conn: _Connection, request: h11.Request, body: bytes) -> Answer:
        http, link = conn.http, conn.link
        status_only = self.status_only
        status, headers, content, read, event = 0, [], bytearray(), 0, None
        try:
            assert link.transport is not None
            link.transport.write(http.send(request) + http.send(h11.Data(data=body)) + http.send(h11.EndOfMessage()))
            while not isinstance(event, h11.EndOfMessage):
                event = http.next_event()
                if event is h11.NEED_DATA:
                    http.receive_data(await link.read())
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    if not status_only:
                        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers]
                elif isinstance(event, h11.Data):
                    read += len(event.data)
                    if read > self.max_body:
                        if status_only:
                            conn.close()  # the status is in; the rest of an oversized body is not read
                            return Answer(status, [], b"")
                        raise RequestFailed(f"the answer's body is larger than {self.max_body} bytes")
                    if not status_only:
                        content += event.data
                elif isinstance(event, h11.ConnectionClosed):
                    raise AnswerFailed("the endpoint closed the connection without an answer")
        except h11.ProtocolError as exc:
            conn.close()
            if status and status_only:
                return Answer(status, [], b"")  # answered, then broke the rest of the body: the answer stands
            raise AnswerFailed(f"not an HTTP/1.1 answer: {exc}") from exc
        except BaseException:
            conn.close()  # a timeout or cancellation mid-exchange leaves the connection in no state to reuse
            raise
        self._keep(origin, conn)
        return Answer(status, headers, bytes(content))

    def _keep(self, origin: Origin, conn: _Connection) -> None:
        http = conn.http
        if http.our_state is h11.DONE and http.their_state is h11.DONE and not conn.link.closed:
            http.start_next_cycle()
            conn.idle_since = now = time.monotonic()
            kept = self._kept.setdefault(origin, [])
            if kept:
                for stale in [c for c in kept if not c.usable(now, self.idle_seconds)]:  # closed, or idle too long
                    kept.remove(stale)
                    stale.close()
            if len(kept) < self.kept_per_origin:
                kept.append(conn)
                return
        conn.close()

    async def aclose(self) -> None:
        for kept in self._kept.values():
            for conn in kept:
                conn.close()
        self._kept.clear()


class KeepAliveClient:
    """Requests to JSON APIs over kept HTTP/1.1 connections (a `Pool`), at most `max_connections` at once (more
    wait their turn, as in a bounded pool). A failure is never retried here.

    `timeout` bounds the wait for a turn and, separately, the exchange (connecting, sending, the whole answer).
    `idle_seconds`: as `Pool`'s."""

    def __init__(self, *, timeout: float, max_connections: int, idle_seconds: float = 30.0,
                 user_agent: str = "yimen", ssl_context: ssl.SSLContext | None = None) -> None:
        self.timeout = timeout
        self._turns = asyncio.Semaphore(max_connections)
        self._pool = Pool(idle_seconds=idle_seconds, kept_per_origin=max_connections, max_body=MAX_BODY,
                          headers=[("user-agent", user_agent), ("accept", "*/*")], ssl_context=ssl_context)

    async def post(self, url: str, *, json: Any = None, headers: Iterable[tuple[str, str]] = ()) -> Answer:
        return await self.request("POST", url, body=json_body(json),
                                  headers=[("content-type", "application/json"), *headers])

    async def request(self, method: str, url: str, *, body: bytes = b"",
                      headers: Iterable[tuple[str, str]] = ()) -> Answer:
        origin, request = self._pool.prepare(method, url, headers, body)
        async with asyncio.timeout(self.timeout):
            await self._turns.acquire()
        try:
            async with asyncio.timeout(self.timeout):
                return await self._pool.send(origin, request, body)
        finally:
            self._turns.release()

    async def aclose(self) -> None:
        await self._pool.aclose()
