"""The single entry point (`http://127.0.0.1:8000` by default): one origin that forwards `/<service>/…` to the
service that owns the prefix. Front ends and the OpenAPI docs need one origin (no CORS, one TLS certificate,
one place for rate limits); in production an ingress or API gateway does the same job with the same
prefixes, so nothing in the services depends on this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import unicodedata
from collections.abc import AsyncIterator
from urllib.parse import quote_from_bytes, unquote_to_bytes

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from shared.settings import PlatformSettings

log = logging.getLogger("yimen.gateway")

SIMULATOR_PORT = int(os.environ.get("YIMEN_SIMULATOR_PORT", "8190"))
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}


def upstreams() -> dict[str, str]:
    """Where each prefix goes: `YIMEN_SERVICE_URLS` (JSON) in containers, the local ports otherwise."""
    ups = dict(PlatformSettings().service_urls)
    ups["simulator"] = os.environ.get("YIMEN_SIMULATOR_URL", f"http://127.0.0.1:{SIMULATOR_PORT}")
    ups["console"] = os.environ.get("YIMEN_CONSOLE_URL", "http://127.0.0.1:8180")
    return ups


#: Methods a client may send twice without changing the outcome (RFC 9110 §9.2.2): safe to resend when a service
#: closed a kept-alive connection just as the request went out.
IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
#: Characters passed through as they are when forwarding (escapes stay escapes; raw non-ASCII gets escaped).
_KEEP = "/%:@!$&'()*+,;=-._~"


def problem(status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"type": f"https://yimen.gov.cn/problems/{slug}", "title": title, "status": status,
                         "detail": detail}, status_code=status, media_type="application/problem+json",
                        headers=headers)


def malformed(raw: bytes, *, controls: bool = True) -> str | None:
    """Why a request target cannot be forwarded, or None: an escape that is not `%XX`, bytes that are not UTF-8
    once decoded, or (in a path) a control character: no route has one, and libraries downstream choke on them.
    What a query's values may hold is each service's to say."""
    if _BAD_ESCAPE.search(raw):
        return "a % that does not start a %XX escape"
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return "percent-escapes that are not UTF-8"
    if controls and any(unicodedata.category(c) == "Cc" for c in text):
        return "a control character"
    return None


def create_gateway(routes: dict[str, str] | None = None, *, budget_seconds: float | None = None) -> Starlette:
    table = routes or upstreams()
    # A little longer than a service's own budget, so the service's 503 (with its detail) arrives first.
    budget = budget_seconds if budget_seconds is not None else PlatformSettings().request_budget_seconds
    client = httpx.AsyncClient(timeout=httpx.Timeout(budget + 5 if budget > 0 else 60, connect=5))

    async def index(_: Request) -> Response:
        rows = "".join(
            f'<li><b>{n}</b>: <a href="/{n}/docs">/{n}/docs</a> · <a href="/{n}/openapi.json">openapi.json</a>'
            f' · <a href="/{n}/readyz">readyz</a></li>'
            for n in table
        )
        return HTMLResponse(f"<h1>Yimen 一门</h1><ul>{rows}</ul>")

    async def proxy(request: Request) -> Response:
        service = request.path_params["service"]
        base = table.get(service)
        if base is None:
            return JSONResponse(
                {"type": "https://yimen.gov.cn/problems/not-found", "title": "Not found", "status": 404,
                 "detail": f"No service serves /{service}."},
                status_code=404, media_type="application/problem+json",
            )
        raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
        raw_query: bytes = request.scope.get("query_string", b"")
        if why := malformed(raw_path) or malformed(raw_query, controls=False):
            return problem(400, "malformed-request", "Malformed request", f"The request target has {why}.")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["x-forwarded-for"] = request.client.host if request.client else ""
        headers["x-forwarded-host"] = request.headers.get("host", "")
        headers["x-forwarded-proto"] = request.url.scheme
        # Forwarded exactly as received: decoding and re-encoding would turn `%2F` into a path separator.
        url = base + quote_from_bytes(raw_path, safe=_KEEP) + ("?" + quote_from_bytes(raw_query, safe=_KEEP + "?")
                                                              if raw_query else "")
        try:
            # A client that trickles its body holds a connection, not the service: it gets the same budget.
            async with asyncio.timeout(budget if budget > 0 else None):
                body = await request.body()
        except TimeoutError:
            return problem(408, "request-timeout", "Request timeout",
                           f"The request body did not arrive within {budget:g} s.", {"Connection": "close"})
        retry = request.method in IDEMPOTENT or "idempotency-key" in request.headers
        try:
            for attempt in (1, 2):
                try:
                    upstream = await client.send(client.build_request(
                        request.method, httpx.URL(url), content=body, headers=headers), stream=True)
                    break
                except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                    # The service closed a kept-alive connection (after an error of its own, or at its idle
                    # timeout) as this request went out: the request was not answered, so a request that may be
                    # sent twice goes again on a fresh connection instead of failing this client.
                    if attempt == 2 or not retry:
                        raise
                    log.info("retrying %s %s on a fresh connection: %r", request.method, request.url.path, exc)
        except httpx.InvalidURL:
            return problem(400, "malformed-request", "Malformed request", "The request target is not a valid URL.")
        except httpx.TimeoutException:
            return problem(504, "upstream-timeout", "Service timed out",
                           f"The {service} service did not answer in time.", {"Retry-After": "5"})
        except httpx.HTTPError:
            return problem(503, "unavailable", "Service unavailable", f"The {service} service does not answer.",
                           {"Retry-After": "2"})
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP | {"content-encoding"}}
        if location := upstream.headers.get("location"):
            out_headers["location"] = public_location(location, base, request)
        if upstream.headers.get("content-type", "").startswith("text/event-stream"):
            # A live stream (notify's SSE) is passed on chunk by chunk as it comes, never buffered; when the
            # client leaves, the upstream connection is closed with it.
            return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, headers=out_headers,
                                     background=BackgroundTask(upstream.aclose))
        try:
            content = await upstream.aread()
        except httpx.TimeoutException:
            return problem(504, "upstream-timeout", "Service timed out",
                           f"The {service} service did not answer in time.", {"Retry-After": "5"})
        except httpx.HTTPError:
            return problem(503, "unavailable", "Service unavailable", f"The {service} service does not answer.",
                           {"Retry-After": "2"})
        finally:
            await upstream.aclose()
        return Response(content, status_code=upstream.status_code, headers=out_headers)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    async def not_found(request: Request, exc: Exception) -> Response:
        return problem(404, "not-found", "Not found", "Paths are /<service>/…; see / for the services.")

    async def failed(request: Request, exc: Exception) -> Response:
        log.exception("gateway error on %s", request.url.path)
        return problem(502, "gateway-error", "Bad gateway", "The gateway could not forward this request.")

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(
        routes=[Route("/", index), Route("/{service}/{path:path}", proxy, methods=methods)],
        lifespan=lifespan,
        # Every answer of the gateway's own is problem+json too, never Starlette's plain text.
        exception_handlers={404: not_found, Exception: failed},
    )


def public_location(location: str, base: str, request: Request) -> str:
    """A redirect that names the service's internal address is rewritten to the origin the client used."""
    if location.startswith(base.rstrip("/") + "/"):
        origin = f"{request.url.scheme}://{request.headers.get('host') or request.url.netloc}"
        return origin + location[len(base.rstrip("/")):]
    return location


def main() -> None:
    import uvicorn

    port = int(os.environ.get("YIMEN_PORT", "8000"))
    uvicorn.run(create_gateway(), host=os.environ.get("YIMEN_HOST", "127.0.0.1"), port=port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
