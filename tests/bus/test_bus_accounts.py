"""A bus that knows who speaks: on a nats-server with the platform's accounts, a connection without
credentials is refused, a department system publishes its own decision subject and nothing else, and a
service publishes its own subjects and binds only its own durable consumers."""

from __future__ import annotations

import secrets
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError

from shared.bus import Bus
from shared.events import new_event
from shared.testing import eventually
from tests.bus.conftest import SecuredNats


async def connect(secured: SecuredNats, user: str, password: str | None = None) -> tuple[Any, list[str]]:
    """A raw client as `user`, collecting the server's asynchronous errors (permission violations)."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    nc = await nats.connect(
        secured.url, user=user, password=password if password is not None else secured.bundle.passwords[user],
        inbox_prefix=f"_INBOX.{user}", error_cb=on_error, allow_reconnect=False, connect_timeout=2,
    )
    return nc, errors


def subject(secured: SecuredNats, event_type: str) -> str:
    return f"{secured.prefix}.{event_type}"


async def in_stream(secured: SecuredNats, subj: str, payload: bytes | None = None) -> bool:
    """Whether the stream's last message on `subj` is there (and is `payload`), as an operator sees it."""
    ops = secured.bus("ops")
    await ops.connect(attempts=3)
    try:
        msg = await ops.js.get_last_msg(ops.names.stream, subj)
        return payload is None or msg.data == payload
    except NotFoundError:
        return False
    finally:
        await ops.close()


async def assert_publish_refused(secured: SecuredNats, nc: Any, errors: list[str], subj: str) -> None:
    payload = secrets.token_hex(8).encode()
    with pytest.raises(nats.errors.TimeoutError):
        await nc.jetstream().publish(subj, payload, timeout=1)
    await eventually(lambda: any(f'publish to "{subj.lower()}"' in e for e in errors))
    assert not await in_stream(secured, subj, payload)


async def test_a_connection_without_credentials_is_refused(secured_nats: SecuredNats) -> None:
    # The streams exist (a service made them), so nothing but the missing credentials stands in the way.
    svc = secured_nats.bus("workflow")
    await svc.connect(attempts=3)
    await svc.close()
    with pytest.raises(nats.errors.Error, match="(?i)authorization violation"):
        await nats.connect(secured_nats.url, allow_reconnect=False, connect_timeout=2)
    with pytest.raises(nats.errors.Error, match="(?i)authorization violation"):
        await connect(secured_nats, "workflow", password="not-the-password")
    # One user's password does not open another's account.
    with pytest.raises(nats.errors.Error, match="(?i)authorization violation"):
        await connect(secured_nats, "workflow", password=secured_nats.bundle.passwords["LD-WJJ"])


async def test_a_department_publishes_its_own_decision_and_nothing_else(secured_nats: SecuredNats) -> None:
    svc = secured_nats.bus("workflow")  # creates the streams, as the services do on start-up
    await svc.connect(attempts=3)
    await svc.close()
    own = subject(secured_nats, "yimen.department.LD-WJJ.decision")
    nc, errors = await connect(secured_nats, "LD-WJJ")
    try:
        ack = await nc.jetstream().publish(own, b"{}", timeout=5)
        assert ack.stream == svc.names.stream and await in_stream(secured_nats, own)
        # Another department's decision, a workflow event, a dead letter, the stream's API: all refused.
        for other in ("yimen.department.LD-XFJ.decision", "yimen.workflow.task.decided",
                      "yimen.workflow.application.decided", "yimen.department.LD-WJJ.other"):
            await assert_publish_refused(secured_nats, nc, errors, subject(secured_nats, other))
        await assert_publish_refused(secured_nats, nc, errors, subject(secured_nats, "yimen-dlq.workflow.x"))
        with pytest.raises(nats.errors.TimeoutError):
            await nc.jetstream(timeout=1).stream_info(svc.names.stream)
        # It reads only what is addressed to it: not the platform's events, not another department's.
        for forbidden in ("yimen.workflow.>", "yimen.department.LD-XFJ.>", "yimen.>"):
            await nc.subscribe(subject(secured_nats, forbidden))
            await eventually(lambda f=forbidden: any(
                f'subscription to "{subject(secured_nats, f).lower()}"' in e for e in errors))
        await nc.subscribe("_INBOX.LD-XFJ.>")  # another user's replies
        await eventually(lambda: any('subscription to "_inbox.ld-xfj.>"' in e for e in errors))
        before = len(errors)
        await nc.subscribe(subject(secured_nats, "yimen.department.LD-WJJ.>"))
        await nc.flush()
        assert len(errors) == before
    finally:
        await nc.close()


async def test_the_department_bus_of_shared_bus_publishes_as_its_department(secured_nats: SecuredNats) -> None:
    """`shared.bus.Bus` as a department system uses it (no stream management, its own inbox)."""
    dept = secured_nats.bus("LD-STHJJ")
    await dept.connect(attempts=3)
    try:
        assert await dept.ready()
        event = new_event("yimen.department.LD-STHJJ.decision", source="/department/LD-STHJJ", subject="t-1",
                          data={"task_id": "t-1", "outcome": "approve", "decided_by": {"name": "系统"}})
        assert await dept.publish(event)
        forged = new_event("yimen.department.LD-GAJ.decision", source="/department/LD-GAJ", subject="t-1",
                           data={"task_id": "t-1", "outcome": "approve", "decided_by": {"name": "系统"}})
        with pytest.raises(nats.errors.TimeoutError):
            await dept.publish(forged)
        assert not await in_stream(secured_nats, subject(secured_nats, forged.type))
    finally:
        await dept.close()


async def test_a_service_publishes_only_its_own_subjects_and_binds_only_its_own_consumers(
    secured_nats: SecuredNats,
) -> None:
    intake = secured_nats.bus("intake", service="intake")
    await intake.connect(attempts=3)
    await intake.close()
    nc, errors = await connect(secured_nats, "intake")
    try:
        own = subject(secured_nats, "yimen.intake.application.accepted")
        await nc.jetstream().publish(own, b"{}", timeout=5)
        assert await in_stream(secured_nats, own)
        await nc.jetstream().publish(subject(secured_nats, "yimen-dlq.intake.intake-task-assigned"), b"{}",
                                     timeout=5)
        for other in ("yimen.workflow.task.decided", "yimen.catalog.item.published",
                      "yimen.department.LD-WJJ.decision", "yimen.identity.account.tokens_revoked",
                      "yimen-dlq.workflow.workflow-department-decision"):
            await assert_publish_refused(secured_nats, nc, errors, subject(secured_nats, other))
        # Another service's durable consumer: neither its state nor its messages.
        js = nc.jetstream()
        with pytest.raises(nats.errors.TimeoutError):
            await js.consumer_info(intake.names.stream, "workflow-department-decision", timeout=1)
        with pytest.raises(nats.errors.TimeoutError):
            await nc.request(f"$JS.API.CONSUMER.MSG.NEXT.{intake.names.stream}.workflow-department-decision",
                             b'{"batch": 1}', timeout=1)
        # It may read every platform event (services consume each other's), but not another's inbox.
        before = len(errors)
        await nc.subscribe(subject(secured_nats, "yimen.>"))
        await nc.flush()
        assert len(errors) == before
        await nc.subscribe("_INBOX.workflow.>")
        await eventually(lambda: any('subscription to "_inbox.workflow.>"' in e for e in errors))
    finally:
        await nc.close()


async def test_a_refused_login_is_reported_not_retried_in_silence(secured_nats: SecuredNats, caplog) -> None:
    """A service with a wrong password keeps retrying (its /readyz says the bus is down), and says why; an
    operator's bounded command gives up with the reason."""
    bus = Bus(secured_nats.url, prefix=secured_nats.prefix, user="workflow", password="wrong")
    with caplog.at_level("ERROR", logger="yimen.bus"), pytest.raises(ConnectionError, match="Authorization"):
        await bus.connect(attempts=1)
    assert any("as workflow" in r.getMessage() and "Authorization" in r.getMessage() for r in caplog.records)
    assert not await bus.ready()
