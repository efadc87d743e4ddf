"""Public reads against the bare request over loopback HTTP, side by side in one run: the floor's bare FastAPI
app (bench/floors.py, its uvicorn options), intake and catalog each under uvicorn as `shared.service.run` starts
them, and 10 clients (`floors.http_rate_light`, a load generator much cheaper than the server: with httpx the
rate was mostly the client's CPU) on intake's liveness route, the public status query and catalog's published
guide. The targets take turns, `rounds` times, so a change of load on the shared machine falls on all
of them alike; each figure is the median of its rounds, beside the server process's CPU per request.

Databases: PostgreSQL at `YIMEN_TEST_POSTGRES_URL`, else SQLite; the bus at `NATS_URL`.

usage: python -m bench.http_rates [seconds-per-turn] [rounds]"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import floors
from shared.testing import DatabaseProvider, free_port, wait_port

RECEIPT, CODE = "R123456789", "123456"


def serve(name: str, url: str, prefix: str, port: int) -> None:
    """The child: one service under uvicorn with `shared.service.run`'s options, its public status row seeded."""
    import uvicorn

    from shared.observability import configure_logging
    from shared.testing import make_settings

    configure_logging("WARNING", True)
    settings = make_settings(name, database_url=url, nats_url=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
                             bus_prefix=prefix, var_dir=Path(tempfile.mkdtemp(prefix="rates-")),
                             relay_interval_seconds=5, relay_idle_interval_seconds=5)
    if name == "intake":
        from services.intake.app import create_app
    else:
        from services.catalog.app import create_app
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, it offers no event to wait on
            await asyncio.sleep(0.05)
        if name == "intake":
            from services.intake.store.tables import PublicStatusRow

            async with app.state.db.transaction() as s:
                s.add(PublicStatusRow(receipt_number=RECEIPT, application_id="a1", verification_code=CODE,
                                      body=f'{{"receipt_number":"{RECEIPT}","status":"submitted","timeline":[]}}'))
        print("ready", flush=True)
        await task

    from uvicorn._compat import asyncio_run

    asyncio_run(main(), loop_factory=config.get_loop_factory())  # as `uvicorn.run` does: uvloop when installed


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(seconds: float, rounds: int) -> None:
    dbs = DatabaseProvider(Path(tempfile.mkdtemp()))
    prefix = "rates" + uuid.uuid4().hex[:6]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ports = {n: free_port() for n in ("bare", "intake", "catalog")}
    try:
        procs["bare"] = subprocess.Popen([sys.executable, "-c", floors.BARE_APP + "\nimport uvicorn; uvicorn.run(app, "
                                          f"port={ports['bare']}, log_level='warning', access_log=False)"])
        for name in ("intake", "catalog"):
            procs[name] = subprocess.Popen([sys.executable, "-m", "bench.http_rates", "--serve", name, dbs.url(name),
                                            prefix, str(ports[name])], stdout=subprocess.PIPE)
        for name, proc in procs.items():
            if proc.stdout is not None:
                assert proc.stdout.readline().strip() == b"ready", name
            wait_port("127.0.0.1", ports[name], 60)
        asyncio.run(measure(procs, ports, seconds, rounds))
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        dbs.cleanup()


async def measure(procs: dict[str, subprocess.Popen[bytes]], ports: dict[str, int], seconds: float,
                  rounds: int) -> None:
    import httpx

    async with httpx.AsyncClient() as c:
        r = await c.get(f"http://127.0.0.1:{ports['catalog']}/catalog/v1/items", params={"limit": 1})
        code = r.json()["items"][0]["code"]
    targets = {
        "bare": ("bare", "/ping"),
        "healthz": ("intake", "/intake/healthz"),
        "status": ("intake", f"/intake/v1/status/{RECEIPT}?code={CODE}"),
        "guide": ("catalog", f"/catalog/v1/items/{code}/guide"),
    }
    # What each server burns with no request (bus heartbeats, the relay's polls, the revocation sync), per
    # second: taken off its CPU per request, which at a few hundred requests a second it would otherwise skew.
    idle0 = {n: cpu_seconds(p.pid) for n, p in procs.items()}
    t_idle = time.perf_counter()
    await asyncio.sleep(3)
    idle = {n: (cpu_seconds(p.pid) - idle0[n]) / (time.perf_counter() - t_idle) for n, p in procs.items()}
    figures: dict[str, list[tuple[float, float]]] = {t: [] for t in targets}
    for name, (proc, path) in targets.items():  # warm-up, and every answer is a 200
        async with httpx.AsyncClient() as c:
            r = await c.get(f"http://127.0.0.1:{ports[proc]}{path}")
            assert r.status_code == 200, (name, r.status_code, r.text[:300])
        await floors.http_rate_light("127.0.0.1", ports[proc], [path], 0.5, 10)
    for _ in range(rounds):
        for name, (proc, path) in targets.items():
            pid = procs[proc].pid
            c0 = cpu_seconds(pid)
            t0 = time.perf_counter()
            rate, _ = await floors.http_rate_light("127.0.0.1", ports[proc], [path], seconds, 10)
            wall = time.perf_counter() - t0
            busy = cpu_seconds(pid) - c0 - idle[proc] * wall
            figures[name].append((rate, busy / (rate * wall) * 1e6 if rate else 0.0))
    bare = statistics.median(r for r, _ in figures["bare"])
    print(f"load average {os.getloadavg()}; {rounds} rounds of {seconds:g} s, 10 clients; idle CPU "
          + ", ".join(f"{n} {v * 1000:.0f} ms/s" for n, v in idle.items()))
    for name, runs in figures.items():
        rate = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name:8s} {rate:8.1f}/s  ×{rate / bare:5.3f} of bare   server CPU {cpu:6.0f} us/req   "
              f"rounds {[r for r, _ in runs]}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main(float(sys.argv[1]) if len(sys.argv) > 1 else 3, int(sys.argv[2]) if len(sys.argv) > 2 else 3)
