"""The single entry point (`http://127.0.0.1:8000` by default): one origin that forwards `/<service>/…` to the
service that owns the prefix. Front ends and the OpenAPI docs need one origin (no CORS, one TLS certificate,
one place for rate limits); in production an ingress or API gateway does the same job with the same
prefixes, so nothing in the services depends on this process.

A prefix may have several replicas (`make run REPLICAS=2`: `YIMEN_GATEWAY_UPSTREAMS`, JSON
`{"intake": ["http://…", …]}`): requests go round robin; a replica that refuses the connection is taken out
at once and the request goes to the next one (nothing was sent, so any method may go again), and a probe of
each replica's `/readyz` every `PROBE_SECONDS` takes out one that stops answering (hung, not dead) and takes
it back when it is ready again. When every replica is out, the gateway still tries them (one may have come
back between probes) before answering 503.

The gateway also serves the platform's documentation to outsiders, who have no checkout: `/docs/` lists every
service's OpenAPI document, Swagger UI and ReDoc (each served by the service, assets included: no CDN) and
`/docs/asyncapi.yaml`, the events as AsyncAPI 3 (generated from the code by `python -m deploy.asyncapi`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
import unicodedata
from collections.abc import AsyncIterator
from html import escape
from urllib.parse import quote_from_bytes, unquote_to_bytes

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from shared.errors import TITLES, ZH, negotiate_language
from shared.settings import ROOT, PlatformSettings

log = logging.getLogger("yimen.gateway")

ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"
#: What each prefix is, for the documentation index.
ABOUT = {
    "catalog": "事项目录 — departments, service points, items and their guides, search",
    "identity": "统一身份认证 — people, organisations, accounts, tokens, staff, delegation",
    "intake": "统一收件 — applications, the one-time notice, materials, receipts, status, appointments",
    "workflow": "并联审批 — department tasks, parallel approval, webhooks, decisions, corrections",
    "datashare": "数据共享 — e-certificates, base registries, purpose-bound sharing, access log",
    "efficacy": "电子监察 — working-day clocks, yellow and red cards, KPIs, ratings, complaints",
    "notify": "通知推送 — templates, inbox, SMS, push, preferences, the live progress stream",
    "simulator": "模拟部门系统 — the demo departments' legacy systems and a sandbox SMS gateway",
    "console": "监察台与窗口工作台 — the supervisors' console and the window clerk's desk (HTML)",
}
SIMULATOR_PORT = int(os.environ.get("YIMEN_SIMULATOR_PORT", "8190"))
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}


def upstreams() -> dict[str, str | list[str]]:
    """Where each prefix goes: its replicas from `YIMEN_GATEWAY_UPSTREAMS` (JSON lists) when set, else
    `YIMEN_SERVICE_URLS` (JSON) in containers, the local ports otherwise."""
    ups: dict[str, str | list[str]] = dict(PlatformSettings().service_urls)
    ups["simulator"] = os.environ.get("YIMEN_SIMULATOR_URL", f"http://127.0.0.1:{SIMULATOR_PORT}")
    ups["console"] = os.environ.get("YIMEN_CONSOLE_URL", "http://127.0.0.1:8180")
    if raw := os.environ.get("YIMEN_GATEWAY_UPSTREAMS"):
        ups.update(json.loads(raw))
    return ups


#: Seconds between readiness probes of a prefix with several replicas, and how long one probe may take.
PROBE_SECONDS = float(os.environ.get("YIMEN_GATEWAY_PROBE_SECONDS", "2"))
PROBE_TIMEOUT = 2.0


class Pool:
    """The replicas of one prefix: round robin over those that are in; a refused connection or a failed
    probe takes one out until a probe finds it ready."""

    def __init__(self, service: str, bases: list[str]) -> None:
        self.service, self.bases = service, [b.rstrip("/") for b in bases]
        self.out: dict[str, float] = {}  # base → when it was taken out
        self._next = 0

    def candidates(self) -> list[str]:
        """This request's order: the replicas that are in, from the next in turn; then those that are out."""
        live = [b for b in self.bases if b not in self.out]
        start = self._next % max(1, len(live))
        self._next += 1
        return live[start:] + live[:start] + [b for b in self.bases if b in self.out]

    def take_out(self, base: str, why: str) -> None:
        if len(self.bases) == 1:
            return  # nowhere else to go: a single upstream is always tried
        if base not in self.out:
            log.warning("gateway: %s replica %s taken out (%s)", self.service, base, why)
        self.out.setdefault(base, time.monotonic())

    def take_in(self, base: str) -> None:
        if self.out.pop(base, None) is not None:
            log.warning("gateway: %s replica %s back in", self.service, base)

    def state(self) -> dict[str, str]:
        return {b: ("out" if b in self.out else "in") for b in self.bases}


#: Methods a client may send twice without changing the outcome (RFC 9110 §9.2.2): safe to resend when a service
#: closed a kept-alive connection just as the request went out.
IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
#: Characters passed through as they are when forwarding (escapes stay escapes; raw non-ASCII gets escaped).
_KEEP = "/%:@!$&'()*+,;=-._~"


def problem(status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None, *,
            zh: str | None = None, request: Request | None = None) -> JSONResponse:
    """The gateway's own problem+json, in the request's language like the services' (`Accept-Language`: Chinese by
    default, English for `en`): `detail` is the English text, `zh` the Chinese one."""
    lang = negotiate_language(request.headers.get("accept-language") if request is not None else None)
    zh_title, en_title = TITLES.get(slug, (title, title))
    body = {"type": f"https://yimen.gov.cn/problems/{slug}", "title": zh_title if lang == ZH else en_title,
            "status": status, "detail": (zh or detail) if lang == ZH else detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json",
                        headers={**(headers or {}), "Content-Language": lang, "Vary": "Accept-Language"})


MALFORMED_ZH = {"a % that does not start a %XX escape": "% 后不是 %XX 转义",
                "percent-escapes that are not UTF-8": "百分号转义不是 UTF-8", "a control character": "含控制字符"}


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


def create_gateway(routes: dict[str, str | list[str]] | None = None, *, budget_seconds: float | None = None,
                   probe_seconds: float = PROBE_SECONDS) -> Starlette:
    table = routes or upstreams()
    pools = {name: Pool(name, [b] if isinstance(b, str) else list(b)) for name, b in table.items()}
    # A little longer than a service's own budget, so the service's 503 (with its detail) arrives first.
    budget = budget_seconds if budget_seconds is not None else PlatformSettings().request_budget_seconds
    client = httpx.AsyncClient(timeout=httpx.Timeout(budget + 5 if budget > 0 else 60, connect=5))

    async def index(_: Request) -> Response:
        rows = "".join(
            f'<li><b>{n}</b>: <a href="/{n}/docs">/{n}/docs</a> · <a href="/{n}/openapi.json">openapi.json</a>'
            f' · <a href="/{n}/readyz">readyz</a></li>'
            for n in table
        )
        return HTMLResponse(f'<h1>Yimen 一门</h1><p><a href="/docs/">API documentation (接口文档)</a></p><ul>{rows}</ul>')

    async def docs_index(_: Request) -> Response:
        rows = "".join(
            f"<tr><td><b>{n}</b></td><td>{escape(ABOUT.get(n, ''))}</td>"
            f'<td><a href="/{n}/docs">Swagger UI</a></td><td><a href="/{n}/redoc">ReDoc</a></td>'
            f'<td><a href="/{n}/openapi.json">/{n}/openapi.json</a></td></tr>'
            for n in table
        )
        return HTMLResponse(
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>Yimen 一门 — API documentation'
            "</title></head><body><h1>Yimen 一门 — 接口文档 (API documentation)</h1>"
            "<p>Every service's REST API as OpenAPI 3.1, readable in Swagger UI or ReDoc (served by the platform "
            "itself: these pages load nothing from the internet). Errors are RFC 9457 problem+json, in Chinese by "
            "default and in English with <code>Accept-Language: en</code>.</p>"
            "<table><thead><tr><th>service</th><th>owns</th><th colspan=\"2\">read</th><th>OpenAPI</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
            '<h2>Events (事件)</h2><p><a href="/docs/asyncapi.yaml">/docs/asyncapi.yaml</a>: every event the '
            "services publish on the bus (NATS JetStream, CloudEvents 1.0), as AsyncAPI 3.</p></body></html>")

    async def docs_redirect(_: Request) -> Response:
        return RedirectResponse("/docs/", status_code=308)

    async def asyncapi(_: Request) -> Response:
        try:
            content = ASYNCAPI.read_bytes()
        except OSError:
            return problem(404, "not-found", "Not found", "This installation has no docs/asyncapi.yaml.",
                           zh="此安装没有 docs/asyncapi.yaml。", request=_)
        return Response(content, media_type="application/yaml; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=300"})

    async def proxy(request: Request) -> Response:
        service = request.path_params["service"]
        pool = pools.get(service)
        if pool is None:
            return problem(404, "not-found", "Not found", f"No service serves /{service}; see /docs/.",
                           zh=f"没有服务提供 /{service}；各服务见 /docs/。", request=request)
        raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
        raw_query: bytes = request.scope.get("query_string", b"")
        if why := malformed(raw_path) or malformed(raw_query, controls=False):
            return problem(400, "malformed-request", "Malformed request", f"The request target has {why}.",
                           zh=f"请求地址格式错误（{MALFORMED_ZH.get(why, why)}）。", request=request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["x-forwarded-for"] = request.client.host if request.client else ""
        headers["x-forwarded-host"] = request.headers.get("host", "")
        headers["x-forwarded-proto"] = request.url.scheme
        # Forwarded exactly as received: decoding and re-encoding would turn `%2F` into a path separator.
        target = quote_from_bytes(raw_path, safe=_KEEP) + ("?" + quote_from_bytes(raw_query, safe=_KEEP + "?")
                                                           if raw_query else "")
        try:
            # A client that trickles its body holds a connection, not the service: it gets the same budget.
            async with asyncio.timeout(budget if budget > 0 else None):
                body = await request.body()
        except TimeoutError:
            return problem(408, "request-timeout", "Request timeout",
                           f"The request body did not arrive within {budget:g} s.", {"Connection": "close"},
                           zh=f"请求内容未在 {budget:g} 秒内传完。", request=request)
        retry = request.method in IDEMPOTENT or "idempotency-key" in request.headers
        candidates = pool.candidates()
        # One try per replica, and one more: a single replica gets its second try on a fresh connection.
        tries = [*candidates, candidates[0]] if len(candidates) == 1 else candidates
        try:
            for attempt, base in enumerate(tries, 1):
                try:
                    upstream = await client.send(client.build_request(
                        request.method, httpx.URL(base + target), content=body, headers=headers), stream=True)
                    pool.take_in(base)
                    break
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    # Nothing reached the replica (it is down, or restarting): any method may go to the next.
                    pool.take_out(base, repr(exc))
                    if attempt == len(tries):
                        raise
                except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                    # The service closed a kept-alive connection (after an error of its own, at its idle
                    # timeout, or as it died) as this request went out: the request was not answered, so a
                    # request that may be sent twice goes again, to the next replica or on a fresh connection,
                    # instead of failing this client.
                    if attempt == len(tries) or not retry:
                        raise
                    log.info("retrying %s %s on a fresh connection: %r", request.method, request.url.path, exc)
        except httpx.InvalidURL:
            return problem(400, "malformed-request", "Malformed request", "The request target is not a valid URL.",
                           zh="请求地址不是有效的网址。", request=request)
        except httpx.TimeoutException:
            return problem(504, "upstream-timeout", "Service timed out",
                           f"The {service} service did not answer in time.", {"Retry-After": "5"},
                           zh=f"{service} 服务未及时响应，请稍后重试。", request=request)
        except httpx.HTTPError:
            return problem(503, "unavailable", "Service unavailable", f"The {service} service does not answer.",
                           {"Retry-After": "2"}, zh=f"{service} 服务暂时无法访问，请稍后重试。", request=request)
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
                           f"The {service} service did not answer in time.", {"Retry-After": "5"},
                           zh=f"{service} 服务未及时响应，请稍后重试。", request=request)
        except httpx.HTTPError:
            return problem(503, "unavailable", "Service unavailable", f"The {service} service does not answer.",
                           {"Retry-After": "2"}, zh=f"{service} 服务暂时无法访问，请稍后重试。", request=request)
        finally:
            await upstream.aclose()
        return Response(content, status_code=upstream.status_code, headers=out_headers)

    async def probe(pool: Pool) -> None:
        prober = httpx.AsyncClient(timeout=PROBE_TIMEOUT)
        try:
            while True:
                for base in pool.bases:
                    try:
                        ready = (await prober.get(f"{base}/{pool.service}/readyz")).status_code == 200
                    except httpx.HTTPError as exc:
                        ready, why = False, repr(exc)
                    else:
                        why = "readyz not 200"
                    if ready:
                        pool.take_in(base)
                    else:
                        pool.take_out(base, f"probe: {why}")
                await asyncio.sleep(probe_seconds)
        finally:
            await prober.aclose()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # Only prefixes with replicas are probed: a single upstream is tried whatever its state.
        probes = [asyncio.create_task(probe(p)) for p in pools.values() if len(p.bases) > 1 and probe_seconds > 0]
        yield
        for task in probes:
            task.cancel()
        await client.aclose()

    async def not_found(request: Request, exc: Exception) -> Response:
        return problem(404, "not-found", "Not found", "Paths are /<service>/…; see /docs/ for the services.",
                       zh="地址的形式是 /<服务>/…；各服务见 /docs/。", request=request)

    async def replicas(_: Request) -> Response:
        """Which replicas of each prefix are in rotation (for operators: `curl :8000/_gateway/replicas`)."""
        return JSONResponse({name: p.state() for name, p in pools.items()})

    async def failed(request: Request, exc: Exception) -> Response:
        log.exception("gateway error on %s", request.url.path)
        return problem(502, "gateway-error", "Bad gateway", "The gateway could not forward this request.",
                       zh="网关未能转发此请求。", request=request)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(
        routes=[Route("/", index), Route("/_gateway/replicas", replicas),
                Route("/docs", docs_redirect), Route("/docs/", docs_index),
                Route("/docs/asyncapi.yaml", asyncapi, methods=["GET", "HEAD"]),
                Route("/{service}/{path:path}", proxy, methods=methods)],
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
    from shared.serving import serve

    port = int(os.environ.get("YIMEN_PORT", "8000"))
    serve(create_gateway(), host=os.environ.get("YIMEN_HOST", "127.0.0.1"), port=port,
          log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
