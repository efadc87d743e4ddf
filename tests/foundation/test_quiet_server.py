"""The platform's processes serve with `shared.serving.QuietServer`: at idle its main loop wakes once a second,
not ten times (uvicorn's own), and an exit is still seen at once."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import uvicorn
from fastapi import FastAPI, Request

from shared.serving import KEEP_ALIVE_SECONDS, QuietServer, server_config
from shared.testing import free_port


def _start(app: FastAPI, tick_seconds: float | None = None) -> tuple[QuietServer, threading.Thread, int]:
    port = free_port()
    server = QuietServer(server_config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    if tick_seconds is not None:
        server.tick_seconds = tick_seconds
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    return server, thread, port


def test_idle_server_ticks_once_a_second_and_still_sends_a_date() -> None:
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"ok": "yes"}

    server, thread, port = _start(app)
    try:
        before = server.ticks
        time.sleep(2.5)
        # uvicorn's own loop ticks every 0.1 s: 25 here.
        assert server.ticks - before <= 4, server.ticks - before
        response = httpx.get(f"http://127.0.0.1:{port}/")
        assert response.status_code == 200 and response.headers["date"].endswith(" GMT")
    finally:
        server.should_exit = True
        thread.join(10)


def test_exit_is_seen_at_once_not_at_the_next_tick() -> None:
    server, thread, _port = _start(FastAPI(), tick_seconds=30.0)  # an exit that waited for the tick: 30 s
    time.sleep(0.2)  # the loop is now waiting
    t = time.monotonic()
    server.should_exit = True
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - t < 3


def test_serve_runs_until_told_to_exit() -> None:
    async def scenario() -> None:
        server = QuietServer(uvicorn.Config(FastAPI(), host="127.0.0.1", port=free_port(), log_level="warning",
                                            lifespan="off"))
        task = asyncio.create_task(server.serve())
        for _ in range(1000):
            if server.started:
                break
            await asyncio.sleep(0.01)
        server.handle_exit(2, None)  # what uvicorn's SIGINT handler does
        await asyncio.wait_for(task, 5)

    # In the main thread uvicorn raises the signal it was handed again once it has stopped (for the process to end
    # as the signal asked), which here would be a KeyboardInterrupt in pytest whenever it outran Python 3.11's
    # wait_for: off the main thread it only stops, which is what is tested.
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(scenario())
        except BaseException as e:  # noqa: BLE001 - reported to the test's thread below
            failures.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and not failures, failures


def test_an_idle_connection_outlives_the_clients_keep_alive() -> None:
    """The server keeps an idle connection open longer than a client does (httpx: 5 s, uvicorn's own default too),
    so a client never sends on a connection the server is closing: the second request, 6 s later, comes on the
    same connection."""
    assert KEEP_ALIVE_SECONDS > 5
    app = FastAPI()
    ports: list[int] = []

    @app.get("/")
    async def root(request: Request) -> dict[str, str]:
        ports.append(request.client.port if request.client else 0)
        return {"ok": "yes"}

    server, thread, port = _start(app)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", limits=httpx.Limits(keepalive_expiry=30)) as client:
            assert client.get("/").status_code == 200
            time.sleep(6)
            assert client.get("/").status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)
    assert len(ports) == 2 and ports[0] == ports[1], ports
