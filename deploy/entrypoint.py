"""Container entry point: `python -m deploy.entrypoint <service|simulator|console|gateway|migrate>`."""

from __future__ import annotations

import runpy
import sys

from shared.settings import SERVICES


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "gateway"
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    if what in SERVICES or what in ("simulator", "console"):
        runpy.run_module(f"services.{what}", run_name="__main__")
    elif what == "gateway":
        runpy.run_module("deploy.gateway", run_name="__main__")
    elif what == "migrate":
        from shared.migrate import main as migrate

        raise SystemExit(migrate(["upgrade", *sys.argv[1:]]))
    else:
        raise SystemExit(f"unknown process {what!r}: one of {', '.join(SERVICES)}, simulator, console, gateway, migrate")


if __name__ == "__main__":
    main()
