"""The simulator's connections to the bus. A real department system holds credentials of its own that let it
publish only `yimen.department.<code>.decision`; the simulator plays every demo department, so it holds one
connection per department, each with that department's credentials (`{code: password}`, written by
`deploy.natsconfig`). On an open server (tests, CI's shared server) one shared connection serves them all,
as before."""

from __future__ import annotations

import asyncio
import contextlib

from shared.bus import Bus, BusNames
from shared.settings import PlatformSettings


class DepartmentBuses:
    def __init__(self, platform: PlatformSettings, passwords: dict[str, str] | None = None) -> None:
        self.names = BusNames(platform.bus_prefix)
        self.shared: Bus | None = None
        self.by_department: dict[str, Bus] = {}
        if passwords is None:
            self.shared = Bus(platform.nats_url, prefix=platform.bus_prefix, name="yimen-simulator")
            return
        for code, password in passwords.items():
            # A department system may not touch the streams, only publish its decisions (and read the acks).
            self.by_department[code] = Bus(platform.nats_url, prefix=platform.bus_prefix,
                                           name=f"yimen-simulator-{code}", user=code, password=password,
                                           manage_streams=False)

    def all(self) -> list[Bus]:
        return [self.shared] if self.shared is not None else list(self.by_department.values())

    def for_department(self, code: str) -> Bus:
        """The connection a department's decision goes out on; ConnectionError when there is none (a
        department without credentials cannot publish, which is the point)."""
        bus = self.shared or self.by_department.get(code)
        if bus is None:
            raise ConnectionError(f"no bus credentials for department {code}")
        if bus.nc is None:
            raise ConnectionError("bus not connected yet")
        return bus

    async def connect(self) -> None:
        await asyncio.gather(*(b.connect() for b in self.all()))

    async def ready(self) -> bool:
        return all(await asyncio.gather(*(b.ready() for b in self.all())))

    async def close(self) -> None:
        for b in self.all():
            with contextlib.suppress(Exception):
                await b.close()
