"""A department's own system is down for a while: workflow keeps the task's delivery, retries it with
backoff (every attempt recorded), and when the system comes back the delivery arrives, signed, once; the
department decides and the case completes. Nothing is lost."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from tests.chaos.cases import draft, exactly_once, expect, prepared, submit, wait_final
from tests.chaos.harness import ChaosLauncher, Patient

pytestmark = pytest.mark.chaos

DEPARTMENT = "LD-XFJ"
DOWN_ATTEMPTS = 4  # failed attempts to see before the system comes back …
DOWN_SECONDS = 8   # … and for at least this long


class Receiver:
    """The department's system: a small HTTP server on loopback that verifies each delivery's signature."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.received: list[dict] = []
        self.refused: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    event = outer.webhook.verify(body, dict(self.headers))
                    outer.received.append({"id": self.headers["webhook-id"], "event": event})
                    self.send_response(202)
                except Exception as exc:
                    outer.refused.append(repr(exc))
                    self.send_response(401)
                self.end_headers()

            def log_message(self, *_a: object) -> None:
                pass

        # Bound now (the port is ours), listening only from `start()`: until then a connection is refused,
        # as it is to a system that is down.
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.server_bind()
        self.port = self.server.server_address[1]
        self.running = False

    def start(self) -> None:
        self.server.server_activate()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.server.shutdown()
        self.server.server_close()


def test_deliveries_to_a_department_that_is_down_are_retried_then_delivered(chaos_platform: ChaosLauncher,
                                                                             figures: dict) -> None:
    launcher = chaos_platform
    base = f"http://127.0.0.1:{launcher.port}"
    path = prepared(base, launcher.admin, seed=3)
    admin = path.admin_headers = {"Authorization": f"Bearer {path.admin}"}
    http = path.http
    simulator_hook = expect(http.get(f"/workflow/v1/departments/{DEPARTMENT}/webhook", headers=admin), 200)
    receiver = Receiver("whsec_" + "A" * 32)  # nothing listens yet: the department's system is down
    try:
        hook = expect(http.put(f"/workflow/v1/departments/{DEPARTMENT}/webhook", headers=admin,
                               json={"url": f"http://127.0.0.1:{receiver.port}/hook", "enabled": True}), 200)
        receiver.webhook = Webhook(hook["secret"])
        figures.update(asyncio.run(_run(launcher, path, receiver)))
    finally:
        receiver.stop()
        # Give the department back to the simulator (same secret, which the simulator keeps).
        expect(http.put(f"/workflow/v1/departments/{DEPARTMENT}/webhook", headers=admin,
                        json={"url": simulator_hook["url"], "enabled": True}), 200)


async def _run(launcher: ChaosLauncher, path, receiver: Receiver) -> dict:
    base = f"http://127.0.0.1:{launcher.port}"
    admin = path.admin_headers
    p = Patient(base, budget=60)
    tag = secrets.token_hex(3)
    app_id = await draft(p, path, tag, 1)
    await submit(p, path, app_id, f"{tag}-submit")

    async def our_delivery() -> dict | None:
        page = (await p.call("GET", f"/workflow/v1/departments/{DEPARTMENT}/deliveries", headers=admin,
                             params={"limit": 50})).json()["items"]
        r = await p.call("GET", f"/workflow/v1/cases/{app_id}", headers=path.agent.headers, ok=(200, 404))
        if r.status_code == 404:
            return None  # the case is not in workflow yet
        case = r.json()
        tasks = {t["id"] for s in case["stages"] for t in s["tasks"] if t["department"] == DEPARTMENT}
        mine = [d for d in page if d["task_id"] in tasks]
        assert len(mine) <= 1, mine
        return mine[0] if mine else None

    down_since = time.monotonic()
    delivery = None
    for _ in range(300):  # ≤ 60 s
        delivery = await our_delivery()
        if delivery and delivery["attempts"] >= DOWN_ATTEMPTS and time.monotonic() - down_since >= DOWN_SECONDS:
            break
        await asyncio.sleep(0.2)
    assert delivery and delivery["attempts"] >= DOWN_ATTEMPTS, delivery
    assert delivery["state"] == "pending" and delivery["last_error"], delivery
    assert all(a.get("status_code") in (None, 0) or a["status_code"] >= 500 for a in delivery["attempt_log"]), delivery
    app = (await p.call("GET", f"/intake/v1/applications/{app_id}", headers=path.agent.headers)).json()
    assert app["status"] not in ("decided", "delivered"), "the case waits for the department"
    failed_attempts = delivery["attempts"]

    receiver.start()
    up_at = time.monotonic()
    for _ in range(300):  # ≤ 60 s
        delivery = await our_delivery()
        if delivery and delivery["state"] == "delivered":
            break
        await asyncio.sleep(0.2)
    assert delivery and delivery["state"] == "delivered", delivery
    arrived_after = time.monotonic() - up_at
    assert len(receiver.received) == 1 and not receiver.refused, (receiver.received, receiver.refused)
    got = receiver.received[0]
    assert got["id"] == delivery["event_id"] and got["event"]["data"]["task_id"] == delivery["task_id"]
    assert got["event"]["type"].endswith("workflow.task.assigned")

    # The department decides through the REST API with its own credentials; the case completes.
    client = (await p.call("POST", "/identity/v1/department-clients", headers=admin, ok=(201,),
                           json={"department": DEPARTMENT, "name": f"chaos {tag}"})).json()
    token = (await p.call("POST", "/identity/v1/token", data={
        "grant_type": "client_credentials", "client_id": client["client_id"],
        "client_secret": client["client_secret"]})).json()["access_token"]
    await p.call("POST", f"/workflow/v1/tasks/{delivery['task_id']}/decision", ok=(200, 201),
                 headers={"Authorization": f"Bearer {token}"}, json={"outcome": "approve", "reasons": ["消防检查合格"]})
    last = await wait_final(p, path, [app_id], timeout=60)
    assert last[app_id]["status"] in ("delivered", "closed"), last[app_id]["status"]
    checked: Counter[str] = Counter()
    problems = await exactly_once(p, path, [app_id], checked)
    assert not problems, problems
    await p.aclose()
    return {"department": DEPARTMENT, "down_seconds": round(up_at - down_since, 1),
            "failed_attempts": failed_attempts, "delivered_seconds_after_up": round(arrived_after, 1),
            "webhooks_received": len(receiver.received), "exactly_once_problems": len(problems),
            "exactly_once_checked": dict(checked)}
