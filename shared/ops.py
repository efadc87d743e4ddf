"""Operator commands for the bus and the outbox.

    python -m shared.ops dead-letters <consumer>          list what a consumer parked
    python -m shared.ops replay <consumer>                publish its dead letters again
    python -m shared.ops republish <service> --since ISO --until ISO
                                                          re-publish a time range of a service's outbox

On a bus with the platform's accounts they sign in as the `ops` user: `YIMEN_NATS_USER`/`YIMEN_NATS_PASSWORD`
when set, else the password `make run` wrote to `var/nats-auth/credentials.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime

from shared.bus import Bus
from shared.settings import SERVICES, NatsCredentials, PlatformSettings, load_service_settings

OPS_USER = "ops"


def ops_credentials(p: PlatformSettings) -> NatsCredentials:
    if p.nats_user:
        return p.nats_credentials()
    # Where `make run`'s launcher keeps the bus accounts (deploy.natsconfig); absent on an open server.
    path = p.var_dir / "nats-auth" / "credentials.json"
    if path.exists():
        password = json.loads(path.read_text()).get(OPS_USER)
        if password:
            return {"user": OPS_USER, "password": password}
    return {}


async def _bus() -> Bus:
    p = PlatformSettings()
    bus = Bus(p.nats_url, prefix=p.bus_prefix, name="yimen-ops", **ops_credentials(p))
    await bus.connect(attempts=3)
    return bus


async def dead_letters(consumer: str) -> None:
    bus = await _bus()
    try:
        for letter in await bus.dead_letters(consumer):
            print(json.dumps(letter, ensure_ascii=False))
    finally:
        await bus.close()


async def replay(consumer: str) -> None:
    bus = await _bus()
    try:
        print(f"replayed {await bus.replay_dead_letters(consumer)} dead letters of {consumer}")
    finally:
        await bus.close()


async def republish(service: str, since: datetime, until: datetime) -> None:
    import importlib

    from shared.db import Database
    from shared.messaging import OutboxRelay

    messaging = importlib.import_module(f"services.{service}.store.tables").messaging
    db = Database(load_service_settings(service).resolved_database_url())
    bus = await _bus()
    try:
        relay = OutboxRelay(db, bus, messaging)
        n = await relay.republish(since, until)
        published = 0
        while (k := await relay.publish_pending()) > 0:
            published += k
        print(f"{service}: {n} events marked, {published} published again")
    finally:
        await bus.close()
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.ops")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("dead-letters").add_argument("consumer")
    sub.add_parser("replay").add_argument("consumer")
    rp = sub.add_parser("republish")
    rp.add_argument("service", choices=SERVICES)
    rp.add_argument("--since", type=datetime.fromisoformat, required=True)
    rp.add_argument("--until", type=datetime.fromisoformat, required=True)
    a = p.parse_args(argv)
    if a.cmd == "dead-letters":
        asyncio.run(dead_letters(a.consumer))
    elif a.cmd == "replay":
        asyncio.run(replay(a.consumer))
    else:
        asyncio.run(republish(a.service, a.since, a.until))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
