"""`python -m services.identity.cli create-admin [--username admin] [--name …]`: create the first admin. The
password comes from `YIMEN_ADMIN_PASSWORD` or is asked for (never a default, never an argument in shell
history)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from services.identity.bootstrap import create_admin
from services.identity.config import IdentitySettings
from services.identity.runtime import IdentityRuntime
from shared.db import Database
from shared.migrate import upgrade
from shared.settings import load_service_settings


async def _create_admin(username: str, name: str, password: str, department: str | None) -> str:
    url = load_service_settings("identity").resolved_database_url()
    await asyncio.to_thread(upgrade, "identity", url)
    db = Database(url, info={"service": "identity"})
    try:
        return await create_admin(db, IdentityRuntime.build(IdentitySettings()), username=username, password=password,
                                  name=name, department=department)
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.identity.cli")
    sub = p.add_subparsers(dest="cmd", required=True)
    ca = sub.add_parser("create-admin", help="create an admin account unless the login name exists")
    ca.add_argument("--username", default=os.environ.get("YIMEN_ADMIN_USERNAME", "admin"))
    ca.add_argument("--name", default="Administrator")
    ca.add_argument("--department", default=None)
    args = p.parse_args(argv)
    password = os.environ.get("YIMEN_ADMIN_PASSWORD") or getpass.getpass("Password for the new admin: ")
    try:
        print(asyncio.run(_create_admin(args.username, args.name, password, args.department)))
    except Exception as exc:  # a rule broken by the input: say which, exit non-zero
        print(f"create-admin failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
