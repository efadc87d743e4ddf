"""DNS rebinding on webhook delivery (issue 13): the sender resolves a department's host name once per attempt,
checks the addresses, and connects to an address it checked, with the name kept in `Host` (and in SNI for
https). Before, the check resolved the name and httpx resolved it again when connecting, so a name answering a
public address to the check and 127.0.0.1 to the connection reached our own network.

The sender's other guarantees are tested here too, against raw endpoints on loopback: TLS asks for and checks
the department's name while connecting to the checked address, no redirect is followed, no cookie is kept, an
answer is read only up to a bound, and an attempt has one deadline.

Name resolution is the outside world here: tests replace `services.workflow.webhooks.resolve`. No traffic leaves
the loopback interface (the public addresses below are only ever checked, never connected to)."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.workflow import webhooks
from services.workflow.app import create_app
from services.workflow.config import WorkflowConfig
from services.workflow.sender import MAX_BODY, ConnectFailed, WebhookSender
from services.workflow.tests.helpers import define_item, parallel_step, start_case, system, tasks_of
from shared.errors import ValidationProblem
from shared.testing import eventually, free_port
from tests.security.conftest import serve
from tests.security.test_webhooks import Capture


def answers(*rounds: list[str]):
    """A resolver that gives each round of answers in turn (the last one from then on), counting the calls."""
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return rounds[min(len(calls), len(rounds)) - 1]

    return resolve, calls


def _tls_for(name: str, directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A test CA and a server certificate for `name` alone: (the server's context, a client context trusting
    only that CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)

    def cert(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> x509.Certificate:
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("Yimen test CA", ca_key, "Yimen test CA", ca_key, True)
    leaf = cert(name, key, "Yimen test CA", ca_key, False)
    (directory / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (directory / "leaf.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(directory / "leaf.pem", directory / "leaf.key")
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


class Endpoint:
    """A department endpoint on loopback speaking raw HTTP/1.1, so each test says exactly what it answers:
    `answer(path, request)` returns the bytes to send back, or None to stay silent. Keeps every request's head
    (lower-cased header names) and the server names (SNI) TLS clients asked for."""

    def __init__(self, answer: Callable[[str, dict[str, str]], bytes | None], tls: ssl.SSLContext | None = None):
        self.answer, self.tls = answer, tls
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.server_names: list[str | None] = []
        self.server: asyncio.Server | None = None
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)  # type: ignore[assignment]

    async def __aenter__(self) -> Endpoint:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                path = head[0].split(" ")[1]
                headers = dict((k.strip().lower(), v.strip()) for k, v in (h.split(":", 1) for h in head[1:] if h))
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((path, headers))
                reply = self.answer(path, headers)
                if reply is None:
                    await asyncio.sleep(3600)
                writer.write(reply or b"")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


async def test_https_goes_to_the_checked_address_with_the_name_in_sni_and_in_the_certificate_check(tmp_path):
    """The connection is made to the address, TLS asks for the name and checks the certificate against it: a
    certificate for another name is refused, even at an address the sender already holds a verified
    connection to (connections are kept per address and name)."""
    server_tls, trusting = _tls_for("hooks.dept.test", tmp_path)
    async with Endpoint(lambda _p, _h: NO_CONTENT, server_tls) as endpoint:
        sender = WebhookSender(ssl_context=trusting)
        try:
            url = f"https://hooks.dept.test:{endpoint.port}/hooks?dept=LD-WJJ"
            assert await sender.post(url, "127.0.0.1", [("webhook-id", "m1")], b"{}", 5) == 204
            assert await sender.post(url, "127.0.0.1", [("webhook-id", "m2")], b"{}", 5) == 204
            assert [(p, h["host"]) for p, h in endpoint.requests] == [("/hooks?dept=LD-WJJ",
                                                                       f"hooks.dept.test:{endpoint.port}")] * 2
            assert endpoint.server_names == ["hooks.dept.test"]  # one handshake: the second send reused it
            with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED|certificate"):
                await sender.post(f"https://other.dept.test:{endpoint.port}/hooks", "127.0.0.1", [], b"{}", 5)
            assert len(endpoint.requests) == 2
        finally:
            await sender.aclose()


async def test_the_sender_follows_no_redirect_keeps_no_cookie_and_reads_a_bounded_answer():
    """An endpoint's answer is only its status: a redirect is not followed, a cookie it sets is never sent to
    anyone, and a body past `sender.MAX_BODY` is not read (the connection is dropped instead)."""
    endless = b"HTTP/1.1 200 OK\r\ncontent-length: 100000000\r\n\r\n" + b"x" * (4 * MAX_BODY)

    def answer(path: str, _headers: dict[str, str]) -> bytes:
        if path == "/moved":
            return (b"HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\nset-cookie: session=dept-a; Path=/\r\n"
                    b"content-length: 0\r\n\r\n")
        return endless if path == "/endless" else NO_CONTENT

    async with Endpoint(answer) as endpoint:
        sender = WebhookSender()
        try:
            base = f"http://hooks.dept.test:{endpoint.port}"
            assert await sender.post(f"{base}/moved", "127.0.0.1", [], b"{}", 5) == 302
            assert await sender.post(f"{base}/other-dept", "127.0.0.1", [], b"{}", 5) == 204
            assert await sender.post(f"{base}/endless", "127.0.0.1", [], b"{}", 5) == 200
            assert await sender.post(f"{base}/after", "127.0.0.1", [], b"{}", 5) == 204
        finally:
            await sender.aclose()
    assert [p for p, _ in endpoint.requests] == ["/moved", "/other-dept", "/endless", "/after"]
    assert not any("cookie" in h for _, h in endpoint.requests)


async def test_an_endpoint_that_never_answers_costs_one_timeout():
    async with Endpoint(lambda _p, _h: None) as endpoint:
        sender = WebhookSender()
        started = time.monotonic()
        try:
            with pytest.raises(TimeoutError):
                await sender.post(f"http://hooks.dept.test:{endpoint.port}/", "127.0.0.1", [], b"{}", 0.5)
        finally:
            await sender.aclose()
        assert time.monotonic() - started < 3


async def test_a_name_that_resolves_to_a_private_address_is_refused_and_resolved_once(monkeypatch):
    resolve, calls = answers(["8.8.8.8"], ["127.0.0.1"])
    monkeypatch.setattr(webhooks, "resolve", resolve)
    assert await webhooks.check_endpoint("https://hooks.dept.example/x", allow_private=False) == ["8.8.8.8"]
    assert calls == ["hooks.dept.example"]  # one resolution: the address checked is the one connected to
    with pytest.raises(ValidationProblem) as refused:  # the rebound answer is checked at the next attempt
        await webhooks.check_endpoint("https://hooks.dept.example/x", allow_private=False)
    assert refused.value.errors[0].rule == "public_address"
    resolve, _ = answers(["8.8.8.8", "10.0.0.7"])
    monkeypatch.setattr(webhooks, "resolve", resolve)
    with pytest.raises(ValidationProblem):  # any private answer among several
        await webhooks.check_endpoint("https://hooks.dept.example/x", allow_private=False)


async def test_a_delivery_connects_to_the_resolved_address_not_to_a_second_lookup(settings_for, tokens, monkeypatch):
    """The department's name exists only in the resolver we control (`.invalid` never resolves in DNS): the
    delivery can only arrive if the sender connected to the address its check produced."""
    capture = Capture()
    server = uvicorn.Server(uvicorn.Config(capture, host="127.0.0.1", port=capture.port, log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    resolve, calls = answers(["127.0.0.1"])
    monkeypatch.setattr(webhooks, "resolve", resolve)
    host = f"ld-wjj-hooks.invalid:{capture.port}"
    # Loopback stands in for the department's network here, so private addresses are allowed; the check that
    # refuses them is the test above.
    config = WorkflowConfig(webhook_allow_private=True, webhook_poll_seconds=0.05)
    try:
        await eventually(lambda: server.started)
        async with serve(create_app, settings_for("workflow"), tokens=tokens, config=config) as wf:
            r = await wf.client.put("/workflow/v1/departments/LD-WJJ/webhook", headers=system(tokens, "LD-WJJ"),
                                    json={"url": f"http://{host}/hooks"})
            assert r.status_code == 200, r.text
            code = "PIN-" + uuid.uuid4().hex[:6]
            await define_item(wf.client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"])])
            case = await start_case(wf.client, tokens, code)
            task_id = tasks_of(case)["LD-WJJ"]["id"]
            body, headers = await eventually(
                lambda: next((d for d in capture.deliveries if json.loads(d[0])["subject"] == task_id), None))
    finally:
        server.should_exit = True
        await serving
    assert headers["host"] == host
    assert set(calls) == {"ld-wjj-hooks.invalid"}


async def test_the_client_behind_every_webhook_keeps_no_cookie(settings_for, tokens):
    """One HTTP client sends every department's webhooks (and every call to another service): a cookie one
    endpoint set would go to another endpoint on the same host."""
    seen: list[str | None] = []

    async def endpoint(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        seen.append(dict(scope["headers"]).get(b"cookie", b"").decode() or None)
        await send({"type": "http.response.start", "status": 204,
                    "headers": [(b"set-cookie", b"session=dept-a; Path=/")]})
        await send({"type": "http.response.body", "body": b""})

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(endpoint, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started)
        async with serve(create_app, settings_for("workflow"), tokens=tokens) as wf:
            http = wf.client.app.state.http
            await http.post(f"http://127.0.0.1:{port}/dept-a/hooks")
            await http.post(f"http://127.0.0.1:{port}/dept-b/hooks")
        assert seen == [None, None] and not http.cookies
    finally:
        server.should_exit = True
        await serving


def test_the_sender_works_on_uvloop_as_the_services_run(tmp_path):
    """uvicorn runs the services on uvloop when it is installed, whose transports are not asyncio's classes."""
    import uvloop

    server_tls, trusting = _tls_for("hooks.dept.test", tmp_path)

    async def both() -> list[int]:
        async with Endpoint(lambda _p, _h: NO_CONTENT) as plain, Endpoint(lambda _p, _h: NO_CONTENT, server_tls) as tls:
            sender = WebhookSender(ssl_context=trusting)
            try:
                return [await sender.post(f"http://hooks.dept.test:{plain.port}/", "127.0.0.1", [], b"{}", 5),
                        await sender.post(f"https://hooks.dept.test:{tls.port}/", "127.0.0.1", [], b"{}", 5)]
            finally:
                await sender.aclose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(both()) == [204, 204]
