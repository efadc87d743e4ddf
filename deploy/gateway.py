"""The single entry point (`http://127.0.0.1:8000` by default): one origin that forwards `/<service>/…` to the
service that owns the prefix. Front ends and the OpenAPI docs need one origin (no CORS, one TLS certificate,
one place for rate limits); in production an ingress or API gateway does the same job with the same
prefixes, so nothing in the services depends on this process."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from shared.settings import PlatformSettings

SIMULATOR_PORT = int(os.environ.get("YIMEN_SIMULATOR_PORT", "8190"))
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}


def upstreams() -> dict[str, str]:
    """Where each prefix goes: `YIMEN_SERVICE_URLS` (JSON) in containers, the local ports otherwise."""
    ups = dict(PlatformSettings().service_urls)
    ups["simulator"] = os.environ.get("YIMEN_SIMULATOR_URL", f"http://127.0.0.1:{SIMULATOR_PORT}")
    ups["console"] = os.environ.get("YIMEN_CONSOLE_URL", "http://127.0.0.1:8180")
    return ups


def create_gateway(routes: dict[str, str] | None = None) -> Starlette:
    table = routes or upstreams()
    client = httpx.AsyncClient(timeout=60)

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
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["x-forwarded-for"] = request.client.host if request.client else ""
        headers["x-forwarded-host"] = request.headers.get("host", "")
        try:
            upstream = await client.request(
                request.method, base + request.url.path, params=request.query_params,
                content=await request.body(), headers=headers,
            )
        except httpx.HTTPError:
            return JSONResponse(
                {"type": "https://yimen.gov.cn/problems/unavailable", "title": "Service unavailable",
                 "status": 503, "detail": f"The {service} service does not answer."},
                status_code=503, media_type="application/problem+json",
            )
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP | {"content-encoding"}}
        return Response(upstream.content, status_code=upstream.status_code, headers=out_headers)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(
        routes=[Route("/", index), Route("/{service}/{path:path}", proxy, methods=methods)],
        lifespan=lifespan,
    )


def main() -> None:
    import uvicorn

    port = int(os.environ.get("YIMEN_PORT", "8000"))
    uvicorn.run(create_gateway(), host=os.environ.get("YIMEN_HOST", "127.0.0.1"), port=port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
