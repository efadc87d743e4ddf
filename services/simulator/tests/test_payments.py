"""The payment platform the simulator plays: a payment is confirmed to intake by a signed notification
(Standard Webhooks) that a real HTTP endpoint verifies; a retry keeps the webhook-id and is signed afresh."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from standardwebhooks import Webhook, WebhookVerificationError

from services.simulator.app import create_app
from services.simulator.config import SimulatorSettings
from shared.settings import PlatformSettings
from shared.testing import eventually, free_port, running_app

SECRET = "whsec_" + "cGF5bWVudC1wbGF0Zm9ybS1zZWNyZXQtMTIzNDU2Nzg="


class IntakeDouble:
    """Plays intake's `POST /intake/v1/payments/notifications`: verifies the signature, answers like intake."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.seen: set[str] = set()

    def app(self) -> FastAPI:
        api = FastAPI()

        @api.post("/intake/v1/payments/notifications")
        async def notified(request: Request) -> JSONResponse:
            raw = await request.body()
            try:
                body = Webhook(SECRET).verify(raw, dict(request.headers))
            except WebhookVerificationError:
                return JSONResponse({"title": "bad signature"}, status_code=401)
            self.received.append({"headers": dict(request.headers), "body": body})
            msg = request.headers["webhook-id"]
            status = "duplicate" if msg in self.seen else "paid"
            self.seen.add(msg)
            if body["amount"] != "20.00":
                return JSONResponse({"title": "amount"}, status_code=422, media_type="application/problem+json")
            return JSONResponse({"status": status})

        return api


@pytest_asyncio.fixture(scope="module")
async def intake_double() -> AsyncIterator[tuple[IntakeDouble, str]]:
    double = IntakeDouble()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(double.app(), host="127.0.0.1", port=port, log_level="warning",
                                          lifespan="off"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started)
    yield double, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest_asyncio.fixture(scope="module")
async def client(intake_double, nats_url, bus_prefix, var_dir, tmp_path_factory):
    _, url = intake_double
    settings = SimulatorSettings(
        intake_url=url, payment_secret=SECRET, register_on_start=False,
        state_file=tmp_path_factory.mktemp("sim-pay") / "simulator.json",
        platform=PlatformSettings(nats_url=nats_url, bus_prefix=bus_prefix, var_dir=var_dir))
    async with running_app(create_app, settings) as c:
        yield c


async def test_a_payment_is_confirmed_by_a_signed_notification_and_a_retry_keeps_its_id(client, intake_double):
    double, _ = intake_double
    code = "4417" + "1" * 16
    r = await client.post("/simulator/v1/payments", json={"payment_code": code, "amount": "20.00"})
    assert r.status_code == 201, r.text
    paid = r.json()
    assert paid["notified"] == "confirmed" and paid["intake_answer"] == {"status": "paid"}
    sent = double.received[-1]
    assert sent["body"]["payment_code"] == code and sent["body"]["transaction_id"] == paid["transaction_id"]
    again = (await client.post(f"/simulator/v1/payments/{paid['transaction_id']}/notify-again")).json()
    assert again["intake_answer"] == {"status": "duplicate"}
    assert double.received[-1]["headers"]["webhook-id"] == sent["headers"]["webhook-id"]
    listed = (await client.get("/simulator/v1/payments")).json()
    assert listed[0]["transaction_id"] == paid["transaction_id"]


async def test_intakes_refusal_is_reported_and_bad_input_is_422(client):
    r = await client.post("/simulator/v1/payments", json={"payment_code": "4417" + "2" * 16, "amount": "2.00"})
    assert r.status_code == 201 and r.json()["notified"] == "refused" and r.json()["intake_status"] == 422
    r = await client.post("/simulator/v1/payments", json={"payment_code": "12", "amount": "x"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert (await client.post("/simulator/v1/payments/PAY-NOPE/notify-again")).status_code == 404
