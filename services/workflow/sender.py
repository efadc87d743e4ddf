"""The webhook dispatcher's HTTP client: one POST to one checked address, over HTTP/1.1 (h11) on asyncio.

Why not httpx: in workflow's profile the send was the largest single item (about a fifth of the service's CPU),
and most of it was the general client's machinery, not the exchange: request and response models, the cookie
jar, the redirect and auth loops, anyio's stream wrappers, and a pool that asked every kept connection for its
socket's state (through anyio's typed attributes) before each request. A webhook needs one request shape and
only the status of the answer.

What it keeps, each a property the security tests hold it to:
- **Pinned.** It connects to the address the caller checked (`webhooks.check_endpoint`), never resolving the
  name again; the name goes in `Host`, and for https in SNI and in the certificate check.
- **Nothing carried between endpoints.** No cookie jar. A kept connection is reused only for the same scheme,
  address, port and name (the name its certificate was checked for).
- **No redirects.** A 3xx is an answer like any other (the caller records it as a failed attempt).
- **Bounded.** The whole attempt (connecting, TLS, sending, the answer) has one deadline; the answer's head is
  bounded by h11 (`MAX_HEAD`), its body is read up to `MAX_BODY` bytes and then the connection is dropped.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

from shared.http1 import Link

#: Largest answer head (status line and headers) read from an endpoint.
MAX_HEAD = 16 * 1024
#: Answer body bytes read at most: the status is all a delivery records; past this the connection is dropped.
MAX_BODY = 64 * 1024
#: A kept connection idle longer than this is closed rather than reused: servers drop idle connections after a
#: few seconds (uvicorn after 5), and a request written into one the server is closing fails for nothing.
IDLE_SECONDS = 4.0
#: Connections kept per endpoint address (a round sends at most `repository.CLAIM_LIMIT` at once).
KEPT_PER_ENDPOINT = 8

USER_AGENT = "yimen-workflow-webhooks"


class ConnectFailed(OSError):
    """The address did not take a connection (refused, unreachable, TLS handshake or certificate refused): the
    caller may try the endpoint's next checked address."""


class AnswerFailed(OSError):
    """The connection broke, or the endpoint did not answer HTTP/1.1, before the answer's head arrived."""


@dataclass
class _Connection:
    link: Link
    http: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD))
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        """Still open, nothing unasked-for waiting in it (a server's parting 408), and not idle too long."""
        return not self.link.closed and not self.link.buffer and now - self.idle_since < IDLE_SECONDS

    def close(self) -> None:
        if self.link.transport is not None:
            self.link.transport.abort()  # nothing more to say to it, and no waiting on a slow close handshake


#: A kept connection's key: scheme, address connected to, port, and the name sent in Host/SNI.
_Key = tuple[str, str, int, str]


class WebhookSender:
    """Posts signed bodies to checked addresses, keeping a few idle connections per endpoint address."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._kept: dict[_Key, list[_Connection]] = {}

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            import httpx  # the trust store (certifi) and TLS settings the platform's other clients use

            self._ssl = httpx.create_ssl_context()
        return self._ssl

    async def post(self, url: str, address: str | None, headers: Iterable[tuple[str, str]], body: bytes,
                   timeout: float) -> int:
        """POST `body` to `url` at `address` (the name's own resolution when None); the answer's status.
        Raises `ConnectFailed`, `AnswerFailed` or `TimeoutError`."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an absolute http(s) URL: {url}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key: _Key = (parts.scheme, address or parts.hostname, port, parts.hostname)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = h11.Request(method="POST", target=target, headers=[
            ("host", parts.netloc.rsplit("@", 1)[-1]), ("user-agent", USER_AGENT),
            ("content-length", str(len(body))), *headers])
        async with asyncio.timeout(timeout):
            conn = self._take(key)
            if conn is not None:
                try:
                    return await self._exchange(key, conn, request, body)
                except AnswerFailed:
                    # A kept connection the server closed as we wrote to it: nothing was answered, so the
                    # request goes again on a fresh one (the receiver drops a duplicate by its webhook-id).
                    pass
            return await self._exchange(key, await self._connect(key), request, body)

    def _take(self, key: _Key) -> _Connection | None:
        kept = self._kept.get(key)
        now = time.monotonic()
        while kept:
            conn = kept.pop()
            if conn.usable(now):
                return conn
            conn.close()
        return None

    async def _connect(self, key: _Key) -> _Connection:
        scheme, address, port, name = key
        loop = asyncio.get_running_loop()
        try:
            if scheme == "https":
                _, link = await loop.create_connection(Link, address, port, ssl=self._tls(), server_hostname=name)
            else:
                _, link = await loop.create_connection(Link, address, port)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(f"{type(exc).__name__}: {exc}") from exc
        return _Connection(link)

    async def _exchange(self, key: _Key, conn: _Connection, request: h11.Request, body: bytes) -> int:
        http, link = conn.http, conn.link
        status, read, event = 0, 0, None
        try:
            assert link.transport is not None
            link.transport.write(http.send(request) + http.send(h11.Data(data=body)) + http.send(h11.EndOfMessage()))
            while not isinstance(event, h11.EndOfMessage):
                event = http.next_event()
                if event is h11.NEED_DATA:
                    http.receive_data(await link.read())
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    read += len(event.data)
                    if read > MAX_BODY:
                        conn.close()  # the status is in; the rest of an oversized body is not read
                        return status
                elif isinstance(event, h11.ConnectionClosed):
                    raise AnswerFailed("the endpoint closed the connection without an answer")
        except h11.ProtocolError as exc:
            conn.close()
            if status:
                return status  # answered, then broke the rest of the body: the answer stands
            raise AnswerFailed(f"not an HTTP/1.1 answer: {exc}") from exc
        except BaseException:
            conn.close()  # a timeout or cancellation mid-exchange leaves the connection in no state to reuse
            raise
        self._keep(key, conn)
        return status

    def _keep(self, key: _Key, conn: _Connection) -> None:
        http = conn.http
        if http.our_state is h11.DONE and http.their_state is h11.DONE and not conn.link.closed:
            http.start_next_cycle()
            conn.idle_since = now = time.monotonic()
            kept = self._kept.setdefault(key, [])
            for stale in [c for c in kept if not c.usable(now)]:  # closed by the server, or idle too long
                kept.remove(stale)
                stale.close()
            if len(kept) < KEPT_PER_ENDPOINT:
                kept.append(conn)
                return
        conn.close()

    async def aclose(self) -> None:
        for kept in self._kept.values():
            for conn in kept:
                conn.close()
        self._kept.clear()

