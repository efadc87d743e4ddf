"""The bus's accounts (总线身份): who may connect to NATS and what each may publish and read.

One NATS user per service, one per department system and one for operators, each with a password of its own
(the servers' config holds only its bcrypt hash) and subject permissions; a connection without credentials
is refused. `make run` writes the bundle under
`var/nats-auth/` and starts its nats-server with it; for compose and Kubernetes an operator writes it once
(`python -m deploy.natsconfig --out DIR`) and hands it over as secrets (deploy/README or the repo README).

| user | publishes | reads |
|---|---|---|
| a service (`catalog` …) | `yimen.<service>.>`, its own dead letters `yimen-dlq.<service>.>`, the JetStream API for the two platform streams, its own durable consumers and its own rate-limit bucket (`$KV.<stream>_LIMITS_<SERVICE>.>`), acks of its consumers | every `yimen.>` event, its own `_INBOX.<service>.>` |
| a department system (`LD-WJJ` …) | `yimen.department.<code>.decision` only | `yimen.department.<code>.>` and its own `_INBOX.<code>.>` (the stream's acks) |
| `ops` (`python -m shared.ops`) | any `yimen.>` and `yimen-dlq.>` subject (a replay republishes on the original subject), the whole JetStream API | the same and `_INBOX.ops.>` |

Every user's replies come to an inbox of its own (`_INBOX.<user>.…`; `shared.bus.Bus` sets the prefix), so
no connection can read another's pull batches. Permissions follow the bus prefix (`<prefix>.yimen.…`, the
stream `YIMEN_<PREFIX>`), which is empty in production.

Adding a service is adding it to `shared.settings.SERVICE_PORTS`: its user, its subjects and the durable
consumers of its `services.<name>.app.SPEC` follow. Departments come from `YIMEN_NATS_DEPARTMENTS` (codes,
comma-separated) or, by default, the demo departments the simulator plays."""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt

from shared.bus import DEAD_LETTER_ROOT, BusNames
from shared.ops import OPS_USER
from shared.settings import ROOT, SERVICES

AUTH_FILE = "auth.conf"
CREDENTIALS_FILE = "credentials.json"
HASHES_FILE = "hashes.json"
#: nats-server checks the bcrypt hash at every connection, inside the client's connect timeout, and the
#: simulator alone opens eleven at once. The passwords are 32 random bytes, so the hash's work factor guards
#: nothing a guess could reach; it only has to keep the password out of the servers' file. Hence 8, not 11.
BCRYPT_COST = int(os.environ.get("YIMEN_NATS_BCRYPT_COST", "8"))
DEPARTMENTS_FILE = "departments.json"
ENV_FILE = "nats.env"
USERS_DIR = "users"


@dataclass(frozen=True)
class User:
    name: str
    kind: str  # service | department | ops
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]

    def entry(self, password_hash: str) -> dict[str, Any]:
        return {
            "user": self.name,
            "password": password_hash,
            "permissions": {"publish": {"allow": list(self.publish)}, "subscribe": {"allow": list(self.subscribe)}},
        }


def demo_departments() -> list[str]:
    """The departments the simulator plays (docs/CONTRACTS.md's demo departments)."""
    data = json.loads((ROOT / "services" / "simulator" / "departments.json").read_text())
    return [d["code"] for d in data["departments"]]


def departments_from_env(env: dict[str, str] | None = None) -> list[str]:
    raw = (env if env is not None else os.environ).get("YIMEN_NATS_DEPARTMENTS", "")
    codes = [c.strip() for c in raw.split(",") if c.strip()]
    return codes or demo_departments()


def durable_consumers(service: str) -> list[str]:
    """The durable consumers a service binds (its `SPEC.consumers`, or the `CONSUMERS` of an app that builds
    its spec inside `create_app`, as notify does), each named in its permissions."""
    module = f"services.{service}.app"
    try:
        app = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in (module, f"services.{service}"):
            raise  # a broken import inside the service, not a service without an app
        return []
    spec = getattr(app, "SPEC", None)
    consumers = spec.consumers if spec is not None else getattr(app, "CONSUMERS", [])
    names = BusNames()
    return [names.durable(c.name) for c in consumers]


def service_user(service: str, names: BusNames, durables: list[str]) -> User:
    stream, dlq = names.stream, names.dead_letter_stream
    publish = [
        names.subject(f"yimen.{service}.>"),
        names.subject(f"{DEAD_LETTER_ROOT}.{service}.>"),
        # Every replica makes sure the two platform streams exist (shared.bus.Bus.ensure_streams).
        *(f"$JS.API.STREAM.{op}.{s}" for s in (stream, dlq) for op in ("INFO", "CREATE", "UPDATE")),
    ]
    # Its rate-limit bucket (shared/ratelimit.py: limits counted across replicas), a KV of its own: no
    # service can read or reset another's counts.
    bucket = names.limits_bucket(service)
    kv_stream = f"KV_{bucket}"
    publish += [
        f"$KV.{bucket}.>",
        *(f"$JS.API.STREAM.{op}.{kv_stream}" for op in ("INFO", "CREATE", "UPDATE")),
        f"$JS.API.STREAM.MSG.GET.{kv_stream}",
        f"$JS.API.DIRECT.GET.{kv_stream}",
        f"$JS.API.DIRECT.GET.{kv_stream}.>",
        # A watch on it (each replica's view of the keys over a limit): an ordered consumer, its flow control.
        f"$JS.API.CONSUMER.CREATE.{kv_stream}",
        f"$JS.API.CONSUMER.CREATE.{kv_stream}.>",
        f"$JS.API.CONSUMER.INFO.{kv_stream}.>",
        f"$JS.FC.{kv_stream}.>",
    ]
    for d in durables:
        publish += [
            f"$JS.API.CONSUMER.CREATE.{stream}.{d}",
            f"$JS.API.CONSUMER.CREATE.{stream}.{d}.>",  # the filter subject follows the name
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{d}",
            f"$JS.API.CONSUMER.INFO.{stream}.{d}",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{d}",
            f"$JS.ACK.{stream}.{d}.>",
        ]
    subscribe = [names.subject("yimen.>"), f"_INBOX.{service}.>"]
    return User(service, "service", tuple(publish), tuple(subscribe))


def department_user(code: str, names: BusNames) -> User:
    return User(
        code, "department",
        (names.subject(f"yimen.department.{code}.decision"),),
        (f"_INBOX.{code}.>", names.subject(f"yimen.department.{code}.>")),
    )


def ops_user(names: BusNames) -> User:
    platform = (names.subject("yimen.>"), names.subject(f"{DEAD_LETTER_ROOT}.>"))
    return User(OPS_USER, "ops", (*platform, "$JS.API.>", "$JS.ACK.>"), (*platform, f"_INBOX.{OPS_USER}.>"))


def platform_users(prefix: str = "", departments: list[str] | None = None,
                   services: tuple[str, ...] = SERVICES) -> list[User]:
    names = BusNames(prefix)
    users = [service_user(s, names, durable_consumers(s)) for s in services]
    users.append(ops_user(names))
    users += [department_user(c, names) for c in (departments if departments is not None else demo_departments())]
    taken: set[str] = set()
    for u in users:
        if u.name in taken:
            raise ValueError(f"two bus users named {u.name!r}")
        taken.add(u.name)
    return users


def render_authorization(users: list[User], hashes: dict[str, str]) -> str:
    """The `authorization` block for nats-server (its config accepts JSON), with bcrypt hashes of the
    passwords, so the servers' config gives away no credential. It is a whole config by itself
    (`nats-server -js -c auth.conf`, as `make run` does) or `include`d by a larger one (Kubernetes). No
    `no_auth_user`: a connection without credentials is refused."""
    block = {"users": [u.entry(hashes[u.name]) for u in users]}
    return ("# Generated by `python -m deploy.natsconfig`: the platform's bus users and their permissions.\n"
            "authorization: " + json.dumps(block, indent=2) + "\n")


def _hashes(passwords: dict[str, str], cached: dict[str, dict[str, str]], cost: int) -> dict[str, dict[str, str]]:
    """bcrypt hash per user, reused while the password is unchanged (hashing is deliberately slow)."""
    out = {}
    for user, password in passwords.items():
        digest = hashlib.sha256(password.encode()).hexdigest()
        old = cached.get(user, {})
        if old.get("sha256") == digest and old.get("bcrypt"):
            out[user] = old
        else:
            out[user] = {"sha256": digest,
                         "bcrypt": bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()}
    return out


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


@dataclass
class Bundle:
    directory: Path
    users: list[User]
    passwords: dict[str, str]

    @property
    def auth_file(self) -> Path:
        return self.directory / AUTH_FILE

    def credentials(self, user: str) -> dict[str, str]:
        return {"user": user, "password": self.passwords[user]}

    def departments(self) -> dict[str, str]:
        return {u.name: self.passwords[u.name] for u in self.users if u.kind == "department"}


def write_bundle(directory: Path, *, prefix: str = "", departments: list[str] | None = None,
                 services: tuple[str, ...] = SERVICES, bcrypt_cost: int = BCRYPT_COST) -> Bundle:
    """Write (or refresh) the bus's accounts into `directory` (mode 0700, every file 0600):

    - `auth.conf`: the server's `authorization` block (bcrypt hashes, no password);
    - `credentials.json`: `{user: password}` for every user (the launcher and operators);
    - `users/<user>`: one password per file (mounted as secrets by compose and Kubernetes);
    - `departments.json`: `{code: password}` of the department systems (the simulator plays them all);
    - `hashes.json`: the bcrypt hash of each password (kept while the password is unchanged: hashing is slow);
    - `nats.env`: the same as variables for `docker compose --env-file` (`YIMEN_NATS_PASSWORD_<USER>`,
      `YIMEN_SIMULATOR_NATS_CREDENTIALS`).

    Passwords already in `credentials.json` are kept (a second `make run` continues); a new user gets a new
    one. The permissions are written afresh each time, so they follow the code."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    users = platform_users(prefix, departments, services)
    known: dict[str, str] = {}
    cred_path = directory / CREDENTIALS_FILE
    if cred_path.exists():
        known = json.loads(cred_path.read_text())
    # 32 random bytes each: out of reach of guessing.
    passwords = {u.name: known.get(u.name) or secrets.token_urlsafe(32) for u in users}
    hashes_path = directory / HASHES_FILE
    hashes = _hashes(passwords, json.loads(hashes_path.read_text()) if hashes_path.exists() else {}, bcrypt_cost)
    _write_private(hashes_path, json.dumps(hashes, indent=2) + "\n")
    _write_private(directory / AUTH_FILE, render_authorization(users, {u: h["bcrypt"] for u, h in hashes.items()}))
    _write_private(cred_path, json.dumps(passwords, indent=2) + "\n")
    users_dir = directory / USERS_DIR
    users_dir.mkdir(exist_ok=True)
    users_dir.chmod(0o700)
    for name, password in passwords.items():
        _write_private(users_dir / name, password)
    bundle = Bundle(directory, users, passwords)
    _write_private(directory / DEPARTMENTS_FILE, json.dumps(bundle.departments(), indent=2) + "\n")
    _write_private(directory / ENV_FILE, compose_env(bundle))
    return bundle


def env_name(user: str) -> str:
    return "YIMEN_NATS_PASSWORD_" + user.upper().replace("-", "_")


def compose_env(bundle: Bundle) -> str:
    """Variables `deploy/compose.yaml` interpolates: each service's and the operator's password, and the
    departments' passwords for the simulator (JSON, single-quoted: compose takes it literally)."""
    lines = [f"{env_name(u.name)}={bundle.passwords[u.name]}" for u in bundle.users if u.kind != "department"]
    lines.append(f"YIMEN_SIMULATOR_NATS_CREDENTIALS='{json.dumps(bundle.departments())}'")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.natsconfig", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="directory for auth.conf, credentials and users/")
    p.add_argument("--prefix", default=os.environ.get("YIMEN_BUS_PREFIX", ""), help="bus prefix (empty)")
    a = p.parse_args(argv)
    bundle = write_bundle(a.out, prefix=a.prefix, departments=departments_from_env())
    print(f"wrote {len(bundle.users)} bus users to {a.out} ({AUTH_FILE}, {CREDENTIALS_FILE}, {USERS_DIR}/, "
          f"{DEPARTMENTS_FILE}, {ENV_FILE})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
