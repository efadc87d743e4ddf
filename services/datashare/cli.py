"""`python -m services.datashare.cli verify-log`: check the access log's hash chain from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from services.datashare.api.access_log import verify
from shared.db import Database
from shared.settings import load_service_settings


async def verify_log(url: str) -> int:
    db = Database(url)
    try:
        async with db.transaction() as session:
            result = await verify(session)
    finally:
        await db.dispose()
    print(json.dumps(result.model_dump(), ensure_ascii=False))
    if not result.intact:
        print(f"BROKEN at seq {result.first_broken_seq}: {result.reason}", file=sys.stderr)
    return 0 if result.intact else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.datashare.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify-log", help="Verify the access log's hash chain; exit 1 at the first broken row.")
    v.add_argument("--database-url", help="Defaults to YIMEN_DATASHARE_DATABASE_URL or the embedded SQLite file.")
    args = parser.parse_args(argv)
    url = args.database_url or load_service_settings("datashare").resolved_database_url()
    from shared.settings import normalise_database_url

    return asyncio.run(verify_log(normalise_database_url(url)))


if __name__ == "__main__":
    sys.exit(main())
