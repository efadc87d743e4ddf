"""`python -m services.datashare.cli verify-log`: check the access log's hash chain from the command line."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys

from sqlalchemy.exc import SQLAlchemyError

from services.datashare.service import verify_access_log
from shared.db import Database
from shared.settings import load_service_settings


async def verify_log(url: str) -> int:
    db = Database(url)
    try:
        async with db.transaction() as session:
            report, head_seq = await verify_access_log(session)
    except SQLAlchemyError as exc:
        print(f"cannot read the access log at {url}: {type(exc).__name__} (is the database migrated?)",
              file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    print(json.dumps({**dataclasses.asdict(report), "head_seq": head_seq}, ensure_ascii=False))
    if not report.intact:
        print(f"BROKEN at seq {report.first_broken_seq}: {report.reason}", file=sys.stderr)
    return 0 if report.intact else 1


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
