"""What the cluster fault tests share: the platform with two (or more) replicas of every service and the
launcher's three-node JetStream cluster on loopback, its routes passed through small TCP relays so that one
node can be cut off from the other two (a partition) and joined again, and what an operator sees meanwhile.

Why relays: no root and no `iptables` binary are needed, so the same test runs in CI. Every route passes a relay
(node i → node j through relay i→j, every node's `--routes` naming relays), and each node advertises a cluster
address nobody listens on, so the gossip cannot lead round the relays: closing a node's relays cuts it off
entirely (the test asserts the cut node's `/routez` shows no route)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deploy.launcher import NatsNode
from deploy.natsconfig import Bundle
from shared.bus import Bus
from shared.settings import ROOT, SERVICES
from shared.testing import free_port
from tests.chaos.harness import ChaosLauncher, consumer_names


class RouteRelays:
    """TCP relays on loopback, in a thread of their own; each is tagged with the two nodes it joins, and
    `cut(node)` closes every relay of that node's (open connections too) until `join(node)`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="route-relays", daemon=True)
        self.thread.start()
        self.relays: list[_Relay] = []

    def add(self, target_port: int, nodes: tuple[str, str]) -> int:
        relay = _Relay(target_port, set(nodes))
        asyncio.run_coroutine_threadsafe(relay.start(), self.loop).result(10)
        self.relays.append(relay)
        return relay.port

    def cut(self, node: str) -> int:
        mine = [r for r in self.relays if node in r.nodes]
        for relay in mine:
            asyncio.run_coroutine_threadsafe(relay.cut(), self.loop).result(10)
        return len(mine)

    def join(self, node: str) -> None:
        for relay in self.relays:
            if node in relay.nodes:
                relay.blocked = False

    def close(self) -> None:
        for relay in self.relays:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(relay.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class _Relay:
    target: int
    nodes: set[str]
    port: int = 0
    blocked: bool = False
    server: Any = None
    writers: set[Any] = field(default_factory=set)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if self.blocked:
                        break
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    async def cut(self) -> None:
        self.blocked = True
        for w in list(self.writers):
            w.close()

    async def stop(self) -> None:
        await self.cut()
        self.server.close()


class ClusterLauncher(ChaosLauncher):
    """The chaos launcher with replicas and the three-node cluster, its routes through `RouteRelays`."""

    def __init__(self, environ: dict[str, str], *, replicas: int = 2, quiet: bool = True) -> None:
        super().__init__(environ, quiet=quiet)
        self.replicas, self.nats_cluster = replicas, 3
        self.relays = RouteRelays()
        #: Each service's database (for the figures a test takes of what the cases cost).
        self.database_urls: dict[str, str] = {}

    def nats_node_command(self, node: NatsNode, routes: str, store: Path, bundle: Bundle) -> list[str]:
        via = ",".join(f"nats://127.0.0.1:{self.relays.add(o.cluster_port, (node.process, o.process))}"
                       for o in self.nats_nodes if o is not node)
        # Every route is explicit and passes a relay (a full mesh of three needs no gossip). The cluster address
        # a node tells its peers would let them dial round the relays after a cut, so it names a port nobody
        # listens on: a cut node then has no way back until its relays are joined again.
        return [*super().nats_node_command(node, via, store, bundle),
                "--cluster_advertise", f"127.0.0.1:{free_port()}"]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.instances[name][1]}" if name in self.instances else super().url(name)

    def service_of(self, name: str) -> str:
        return self.instances[name][0] if name in self.instances else name

    def wait_service_ready(self, name: str, timeout: float = 120) -> float:
        start = time.monotonic()
        url = f"{self.url(name)}/{self.service_of(name)}/readyz"
        while time.monotonic() - start < timeout:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    took = time.monotonic() - start
                    self.recoveries.setdefault(name, []).append(took)
                    return took
            if self.proc(name).poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc(name).returncode}; see {self.var / 'log'}")
            time.sleep(0.2)
        raise TimeoutError(f"{name} not ready {timeout}s after a restart")

    def node(self, server_name: str) -> NatsNode:
        return next(n for n in self.nats_nodes if n.server_name == server_name)

    def ops_bus(self) -> Bus:
        assert self.bus_accounts is not None
        # An observer: it reads the streams and never creates or updates them.
        return Bus(self.nats_url, prefix=self.environ.get("YIMEN_BUS_PREFIX", ""), name="chaos-ops",
                   manage_streams=False, **self.bus_accounts.credentials("ops"))

    def close(self) -> None:
        self.relays.close()


async def stream_leader(launcher: ClusterLauncher, stream: str) -> str:
    bus = launcher.ops_bus()
    await bus.connect(attempts=10)
    try:
        info = await bus.js.stream_info(stream)
        return str(info.cluster.leader) if info.cluster else ""
    finally:
        await bus.close()


async def cluster_healed(launcher: ClusterLauncher, timeout: float = 120) -> dict[str, Any]:
    """Wait until the cluster is whole again: a meta leader, and both platform streams with a leader and
    every peer current (none offline, none lagging); returns what was seen."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        bus = launcher.ops_bus()
        try:
            await bus.connect(attempts=3)
            streams = {}
            for name in (bus.names.stream, bus.names.dead_letter_stream):
                info = await asyncio.wait_for(bus.js.stream_info(name), 5)
                c = info.cluster
                streams[name] = {"leader": c.leader if c else None,
                                 "replicas": [(r.name, r.current, r.offline, r.lag) for r in (c.replicas or [])]
                                 if c else []}
            last = {"meta_leader": launcher.meta_leader(), "streams": streams}
            whole = last["meta_leader"] and all(
                s["leader"] and len(s["replicas"]) == 2 and all(cur and not off for _n, cur, off, _l in s["replicas"])
                for s in streams.values())
            if whole:
                return last
        except Exception as exc:  # noqa: BLE001 - a node restarting: look again
            last = {"error": repr(exc)}
        finally:
            await bus.close()
        await asyncio.sleep(1)
    raise AssertionError(f"the cluster did not heal within {timeout}s: {last}")


async def backlog(launcher: ClusterLauncher) -> dict[str, Any]:
    """Each durable consumer's pending and unacknowledged messages, and its leader (for a failure's message)."""
    bus = launcher.ops_bus()
    out: dict[str, Any] = {}
    try:
        await bus.connect(attempts=3)
        for names in consumer_names().values():
            for name in names:
                try:
                    info = await bus.js.consumer_info(bus.names.stream, bus.names.durable(name))
                    out[name] = (info.num_pending, info.num_ack_pending, info.num_redelivered,
                                 info.cluster.leader if info.cluster else None)
                except Exception as exc:  # noqa: BLE001
                    out[name] = repr(exc)
    finally:
        await bus.close()
    return out


async def dead_letters(launcher: ClusterLauncher, timeout: float = 60) -> dict[str, list[dict[str, Any]]]:
    """Every consumer's dead letters (only the non-empty ones). Reading them makes a consumer on the
    dead-letter stream, which a cluster that just changed leaders may refuse for a moment (503): tried again."""
    deadline = time.monotonic() + timeout
    while True:
        bus = launcher.ops_bus()
        out: dict[str, list[dict[str, Any]]] = {}
        try:
            await bus.connect(attempts=10)
            # No dead letter at all is an empty dead-letter stream; only when there are some is each
            # consumer's read (that makes a consumer per name, which a busy cluster may refuse for a moment).
            if not (await bus.js.stream_info(bus.names.dead_letter_stream)).state.messages:
                return {}
            for names in consumer_names().values():
                for name in names:
                    if letters := await bus.dead_letters(name):
                        out[name] = letters
            return out
        except Exception:
            if time.monotonic() > deadline:
                raise
        finally:
            await bus.close()
        await asyncio.sleep(1)


async def operator_view(launcher: ClusterLauncher, http: httpx.AsyncClient) -> dict[str, Any]:
    """What an operator sees at this moment: each service's /readyz through the gateway, the gateway's
    replicas, each NATS node's JetStream view (`/jsz`: meta leader, reachable or not) and the handled-event
    counters of every replica's /metrics (retries and 'unavailable' rise while a leader is elected)."""
    view: dict[str, Any] = {"at": round(time.monotonic(), 1), "readyz": {}, "nodes": {}, "events": {}}
    for s in SERVICES:
        try:
            r = await http.get(f"/{s}/readyz", timeout=3)
            view["readyz"][s] = r.status_code if r.status_code == 200 else f"{r.status_code} {r.json().get('checks')}"
        except (httpx.HTTPError, ValueError) as exc:
            view["readyz"][s] = repr(exc)
    with contextlib.suppress(httpx.HTTPError, ValueError):
        view["gateway_out"] = {s: [b for b, st in reps.items() if st == "out"]
                               for s, reps in (await http.get("/_gateway/replicas", timeout=3)).json().items()
                               if "out" in reps.values()}
    for node in launcher.nats_nodes:
        try:
            r = await http.get(f"http://127.0.0.1:{node.monitor_port}/jsz", timeout=2)
            meta = r.json().get("meta_cluster") or {}
            view["nodes"][node.process] = {"leader": meta.get("leader"), "peers": len(meta.get("replicas") or [])}
        except (httpx.HTTPError, ValueError):
            view["nodes"][node.process] = "down"
    results: dict[str, float] = {}
    for svc, port in launcher.instances.values():
        with contextlib.suppress(httpx.HTTPError):
            text = (await http.get(f"http://127.0.0.1:{port}/{svc}/metrics", timeout=2)).text
            for line in text.splitlines():
                if line.startswith("events_handled_total{"):
                    result = line.split('result="', 1)[1].split('"', 1)[0]
                    results[result] = results.get(result, 0) + float(line.rsplit(" ", 1)[1])
    view["events"] = results
    return view


def cpu_seconds(launcher: ClusterLauncher) -> dict[str, float]:
    """CPU seconds (user + system, /proc) each kind of platform process has used so far: every service
    summed over its replicas, NATS over its nodes. A process killed meanwhile takes its count with it."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for name, proc in launcher.procs:
        if proc.poll() is not None:
            continue
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kind = "nats" if name.startswith("nats") else launcher.service_of(name)
        out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


async def postgres_figures(urls: dict[str, str]) -> dict[str, dict[str, int]] | None:
    """Per service database: committed transactions, rows written and its size (PostgreSQL only)."""
    if not all(u.startswith("postgresql") for u in urls.values()):
        return None
    import asyncpg

    out = {}
    for service, url in urls.items():
        try:
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        except (OSError, asyncpg.PostgresError):
            return None  # a figure, not a check: a full server (max_connections, shared) gives none
        try:
            row = await conn.fetchrow(
                "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted AS written,"
                " pg_database_size(datname) AS bytes FROM pg_stat_database WHERE datname = current_database()")
            out[service] = {k: int(row[k]) for k in ("xact_commit", "written", "bytes")}
        finally:
            await conn.close()
    return out


async def jetstream_figures(launcher: ClusterLauncher) -> dict[str, int]:
    bus = launcher.ops_bus()
    await bus.connect(attempts=10)
    try:
        info = await bus.js.stream_info(bus.names.stream)
        return {"messages": int(info.state.messages), "bytes": int(info.state.bytes)}
    finally:
        await bus.close()


def ops_command(launcher: ClusterLauncher, *args: str, attempts: int = 3) -> tuple[int, str]:
    """`python -m shared.ops …` as an operator runs it on this platform (it signs in as `ops` from var/);
    tried again, as an operator would, when the cluster answers 503 for a moment."""
    env = {**launcher.environ, "NATS_URL": launcher.nats_url}
    env.pop("YIMEN_NATS_USER", None)
    for _ in range(attempts):
        r = subprocess.run([sys.executable, "-m", "shared.ops", *args], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=60)
        if r.returncode == 0:
            break
        time.sleep(2)
    return r.returncode, (r.stdout + r.stderr).strip()[-400:]


__all__ = ["ClusterLauncher", "RouteRelays", "cluster_healed", "dead_letters", "operator_view", "ops_command",
           "stream_leader"]
