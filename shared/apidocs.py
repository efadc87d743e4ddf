"""What every service's OpenAPI document and docs pages share: the docs served from the platform itself, the
response headers a route declares, and which routes are public.

**Docs that work offline.** `install_docs(app, prefix)` serves `<prefix>/docs` (Swagger UI), `<prefix>/redoc`
(ReDoc) and their scripts, styles and icon under `<prefix>/docs/assets/`, from the `fastapi-offline` wheel
(pinned in pyproject.toml): no page loads anything from the internet, so the docs work on a closed government
network. `tests/contract/test_docs_offline.py` fetches every asset the pages reference.

**Response headers.** A route names the headers it sets, and the document declares them with their meaning:

    @router.post("/things", status_code=201,
                 responses={**headers_doc("ETag", "Location", status=201), **problem_responses(409)})

`headers_doc` knows `ETag`, `Location`, `Idempotent-Replayed`, `Retry-After`, `Cache-Control`,
`Content-Language`, `Link` and `X-Total-Count`; any other name needs a description
(`headers_doc(**{"X-Thing": "what it says"})`). Several statuses: merge two calls
(`{**headers_doc("ETag", status=200), **headers_doc("ETag", "Location", status=201)}`) or use `merge_responses`.

**Preconditions.** A route that answers 428 without `If-Match` declares the header required:
`if_match: IfMatchRequired` (an `Annotated` header parameter, `required: true` in the document).

**Public routes.** FastAPI derives an operation's `security` from its dependencies: a route that depends on
`CurrentPrincipal` needs a bearer token; a route that only *may* read one (`OptionalPrincipal`) is documented
as "a token or none" (`security: [{}, {"HTTPBearer": []}]`); every other route is public and says so with
`security: []` (an empty requirement, not a missing one). A route that reads a token only to tailor its answer
yet must be documented as public (a verification anyone may do) says so with `**PUBLIC` in its decorator:

    @router.get("/certificates/{number}/verification", **PUBLIC)

A route limited to roles (`require_roles(...)`) names them in its operation as `x-yimen-roles`, so a front end
knows from the document alone which token to send.

A route answered with a bearer token or another credential (and 401 with neither) says so with
`**token_or("Name", scheme)`.

A callback from outside the platform, authenticated by its signature rather than a token, says so with
`**SIGNED` (the `StandardWebhooks` security scheme).

Declared for every route without asking: `Idempotent-Replayed` on the 2xx answers of a route taking
`Idempotency-Key`, `Retry-After` on every 429 and 503.

`finish_security(schema, routes)` and `finish_headers(schema)` apply all this when the document is built
(create_service_app calls them)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from importlib.resources import files
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.staticfiles import StaticFiles

#: The files `fastapi-offline` bundles: swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png.
ASSETS_DIR = str(files("fastapi_offline") / "static")

HEADER_DOCS: dict[str, tuple[str, dict[str, Any]]] = {
    "ETag": ("The version of this representation: send it back as `If-Match` to change the resource, or as "
             "`If-None-Match` to get 304 when it has not changed.", {"type": "string", "example": '"3"'}),
    "Location": ("Where the created (or found) resource is.", {"type": "string", "format": "uri-reference"}),
    "Idempotent-Replayed": ("`true` when this answer is the stored answer to an earlier request with the same "
                            "`Idempotency-Key` (nothing was done again).", {"type": "string", "enum": ["true"]}),
    "Retry-After": ("Seconds to wait before trying again.", {"type": "integer", "minimum": 0}),
    "Cache-Control": ("How long the answer may be kept.", {"type": "string"}),
    "Content-Language": ("The language of the text in this answer (`zh-CN` or `en`).",
                         {"type": "string", "enum": ["zh-CN", "en"]}),
    "Link": ("Related pages (RFC 8288), e.g. `rel=\"next\"`.", {"type": "string"}),
    "X-Total-Count": ("How many items match, across all pages.", {"type": "integer", "minimum": 0}),
}

#: `**PUBLIC` in a route decorator: documented with `security: []` whatever its dependencies read.
PUBLIC: dict[str, Any] = {"openapi_extra": {"x-yimen-public": True}}

#: `**SIGNED` in a route decorator: a callback from outside the platform (a payment platform, an SMS gateway),
#: authenticated by its Standard Webhooks signature (`webhook-id`, `webhook-timestamp`, `webhook-signature`) rather
#: than a token; documented with the `StandardWebhooks` security scheme.
SIGNED: dict[str, Any] = {"openapi_extra": {"x-yimen-signed": True}}
SIGNED_SCHEME = {
    "type": "apiKey", "in": "header", "name": "webhook-signature",
    "description": "Standard Webhooks: `webhook-signature` is `v1,` and the base64 HMAC-SHA256, with the shared "
                   "secret, of `<webhook-id>.<webhook-timestamp>.<body>`; `webhook-id` and `webhook-timestamp` "
                   "(Unix seconds, within 5 minutes) are sent too.",
}



def token_or(name: str, scheme: dict[str, Any]) -> dict[str, Any]:
    """`**token_or("ComplaintSecret", {...apiKey scheme...})` in a route decorator: a route answered with a bearer
    token *or* another credential (an anonymous complainant's secret), and 401 with neither; documented as
    `security: [{"HTTPBearer": []}, {name: []}]` with `scheme` among the document's security schemes."""
    return {"openapi_extra": {"x-yimen-alternative": {name: scheme}}}


#: A required `If-Match` request header (the route answers 428 without it, 412 when it names an old version).
IfMatchRequired = Annotated[str, Header(
    alias="If-Match", description="The `ETag` of the version you read; without it the change is refused (428), "
                                  "with an old one it is refused as stale (412).")]


def headers_doc(*names: str, status: int = 200, **described: str) -> dict[int | str, dict[str, Any]]:
    """The `responses=` block declaring the response headers a route sets on `status`."""
    headers: dict[str, Any] = {}
    for name in names:
        if name not in HEADER_DOCS:
            raise KeyError(f"headers_doc: describe {name!r} (headers_doc(**{{{name!r}: '…'}}))")
        description, schema = HEADER_DOCS[name]
        headers[name] = {"description": description, "schema": schema}
    for name, description in described.items():
        headers[name] = {"description": description, "schema": HEADER_DOCS.get(name, ("", {"type": "string"}))[1]}
    return {status: {"headers": headers}}


def merge_responses(*blocks: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """Several `responses=` blocks as one (headers of the same status are combined)."""
    out: dict[int | str, dict[str, Any]] = {}
    for block in blocks:
        for status, resp in block.items():
            into = out.setdefault(status, {})
            for key, value in resp.items():
                if isinstance(value, dict) and isinstance(into.get(key), dict):
                    into[key] = {**into[key], **value}
                else:
                    into[key] = value
    return out


def install_docs(app: FastAPI, prefix: str) -> None:
    """Swagger UI at `<prefix>/docs`, ReDoc at `<prefix>/redoc`, their assets at `<prefix>/docs/assets/`. Create
    the app with `docs_url=None, redoc_url=None`."""
    assets = f"{prefix}/docs/assets"
    oauth2_redirect = f"{prefix}/docs/oauth2-redirect"
    app.mount(assets, StaticFiles(directory=ASSETS_DIR), name=f"{prefix.strip('/')}-docs-assets")

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '')}{app.openapi_url}"

    @app.get(f"{prefix}/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=openapi_url(request), title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_redirect}",
            swagger_js_url=f"{root}{assets}/swagger-ui-bundle.js", swagger_css_url=f"{root}{assets}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets}/favicon.png",
            # No online validator badge: it would call validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(f"{prefix}/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=openapi_url(request), title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{assets}/redoc.standalone.js", redoc_favicon_url=f"{root}{assets}/favicon.png",
            with_google_fonts=False,
        )


_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _reads(route: Any, call: Callable[..., Any]) -> bool:
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        if dep.call is call:
            return True
        stack.extend(dep.dependencies)
    return False


def _roles(route: Any) -> list[str]:
    """The roles `require_roles(...)` admits on this route (router-level dependencies included)."""
    found: list[str] = []
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        if dep.call is not None and getattr(dep.call, "__qualname__", "") == "require_roles.<locals>.dep":
            roles = inspect.getclosurevars(dep.call).nonlocals.get("roles") or ()
            found.extend(r for r in roles if r not in found)
        stack.extend(dep.dependencies)
    return found


def finish_headers(schema: dict[str, Any]) -> None:
    """Headers the platform's own machinery sets, declared wherever it applies: `Idempotent-Replayed` on the 2xx
    answers of a route taking `Idempotency-Key` (`shared/idempotency.py` replays with it), `Retry-After` on
    every 429 and 503 problem (the rate limits, the time budget and a dependency down all set it)."""
    for item in schema.get("paths", {}).values():
        for method, op in item.items():
            if method not in _METHODS:
                continue
            names = {str(p.get("name", "")).lower() for p in op.get("parameters", []) if p.get("in") == "header"}
            for code, resp in op.get("responses", {}).items():
                wanted: tuple[str, ...] = ()
                if code.startswith("2") and "idempotency-key" in names:
                    wanted = ("Idempotent-Replayed",)
                elif code in ("429", "503") and "application/problem+json" in (resp.get("content") or {}):
                    wanted = ("Retry-After",)
                if wanted:
                    headers = resp.setdefault("headers", {})
                    for name, doc in headers_doc(*wanted)[200]["headers"].items():
                        headers.setdefault(name, doc)


def finish_security(schema: dict[str, Any], routes: Iterable[Any]) -> None:
    """Every operation states its security: `[]` when public, `[{}, bearer]` when a token is optional; and
    `x-yimen-roles`, the roles a token must hold (any of them) where the route names some."""
    from shared.auth import current_principal, optional_principal

    optional: set[tuple[str, str]] = set()
    roles: dict[tuple[str, str], list[str]] = {}
    # FastAPI includes routers lazily: the routes as the app serves them (prefixes and router dependencies).
    for route in iter_route_contexts(list(routes)):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        # `current_principal` itself reads `optional_principal`: optional means the one without the other.
        path_format = str(route.path_format)
        methods: set[str] = set(route.methods or ())
        if _reads(route, optional_principal) and not _reads(route, current_principal):
            optional.update((path_format, m.lower()) for m in methods)
        if admitted := _roles(route):
            roles.update({(path_format, m.lower()): admitted for m in methods})
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            if method not in _METHODS:
                continue
            if (path, method) in roles:
                op["x-yimen-roles"] = roles[(path, method)]
            if op.pop("x-yimen-signed", False):
                op["security"] = [{"StandardWebhooks": []}]
                schema.setdefault("components", {}).setdefault("securitySchemes", {})["StandardWebhooks"] = \
                    SIGNED_SCHEME
            elif alternative := op.pop("x-yimen-alternative", None):
                op["security"] = [{"HTTPBearer": []}, *({k: []} for k in alternative)]
                schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(alternative)
            elif op.pop("x-yimen-public", False):
                op["security"] = []
            elif (path, method) in optional:
                schemes = {k: v for s in op.get("security", []) for k, v in s.items()}
                op["security"] = [{}, *({k: v} for k, v in schemes.items())]
            else:
                op.setdefault("security", [])
