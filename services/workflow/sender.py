"""The webhook dispatcher's HTTP client: one POST to one checked address, over HTTP/1.1 (h11) on asyncio, through
`shared.http1.Pool` (which says why not httpx: in workflow's profile the send was about a fifth of the service's
CPU). A webhook needs one request shape and only the status of the answer.

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
from collections.abc import Iterable

from shared.http1 import MAX_HEAD, AnswerFailed, ConnectFailed, Pool

__all__ = ["MAX_BODY", "MAX_HEAD", "AnswerFailed", "ConnectFailed", "WebhookSender"]

#: Answer body bytes read at most: the status is all a delivery records; past this the connection is dropped.
MAX_BODY = 64 * 1024
#: A kept connection idle longer than this is closed rather than reused: servers drop idle connections after a
#: few seconds (uvicorn after 5), and a request written into one the server is closing fails for nothing.
IDLE_SECONDS = 4.0
#: Connections kept per endpoint address (a round sends at most `repository.CLAIM_LIMIT` at once).
KEPT_PER_ENDPOINT = 8

USER_AGENT = "yimen-workflow-webhooks"


class WebhookSender:
    """Posts signed bodies to checked addresses, keeping a few idle connections per endpoint address.

    A kept connection the endpoint closed as the request was written to it (nothing answered) gets the request
    again on a new one: the receiver drops a duplicate by its webhook-id."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool = Pool(idle_seconds=IDLE_SECONDS, kept_per_origin=KEPT_PER_ENDPOINT, max_body=MAX_BODY,
                          status_only=True, resend_if_kept_broke=True, headers=[("user-agent", USER_AGENT)],
                          ssl_context=ssl_context)

    async def post(self, url: str, address: str | None, headers: Iterable[tuple[str, str]], body: bytes,
                   timeout: float) -> int:
        """POST `body` to `url` at `address` (the name's own resolution when None); the answer's status.
        Raises `ConnectFailed`, `AnswerFailed` or `TimeoutError`."""
        origin, request = self._pool.prepare("POST", url, headers, body, address)
        async with asyncio.timeout(timeout):
            return (await self._pool.send(origin, request, body)).status_code

    async def aclose(self) -> None:
        await self._pool.aclose()
