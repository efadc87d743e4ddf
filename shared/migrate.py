"""Alembic per service: `services/<name>/migrations`, driven from code (start-up, `make migrate`, tests).

Usage: `python -m shared.migrate upgrade [service…]`, `python -m shared.migrate revision <service> -m "…"`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.ext.asyncio import async_engine_from_config

from shared.settings import ROOT, SERVICES, load_service_settings


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(slug)s")
    cfg.attributes["url"] = url
    return cfg


def upgrade(service: str, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, url), revision)


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's `migrations/env.py`."""
    config = context.config
    url = config.attributes.get("url") or load_service_settings("unknown").resolved_database_url()
    opts: dict[str, Any] = {
        "target_metadata": target_metadata,
        "render_as_batch": url.startswith("sqlite"),
        "compare_type": True,
    }
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **opts)
        with context.begin_transaction():
            context.run_migrations()
        return

    def _run(connection: Any) -> None:
        context.configure(connection=connection, **opts)
        with context.begin_transaction():
            context.run_migrations()

    async def _main() -> None:
        engine = async_engine_from_config({"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(_main())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.migrate")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("upgrade", help="migrate services to head (all when none named)")
    up.add_argument("services", nargs="*")
    rev = sub.add_parser("revision", help="autogenerate a migration for one service")
    rev.add_argument("service", choices=SERVICES)
    rev.add_argument("-m", "--message", required=True)
    args = p.parse_args(argv)
    if args.cmd == "upgrade":
        for s in args.services or SERVICES:
            url = load_service_settings(s).resolved_database_url()
            upgrade(s, url)
            print(f"{s}: migrated to head", file=sys.stderr)
    else:
        url = load_service_settings(args.service).resolved_database_url()
        upgrade(args.service, url)
        command.revision(alembic_config(args.service, url), message=args.message, autogenerate=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
