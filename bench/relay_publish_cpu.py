"""CPU of the relay's publish of a batch to JetStream, this process's side: each event as a request of its own,
gathered (`Bus.publish_raw`, the relay before `Bus.publish_batch`), against the batch written in order with its
acks awaited together (`Bus.publish_batch`). Rounds of 1 to 6 events, like a case's transactions; both ways
alternate round by round, so that the machine's load weighs on both alike.

`python -m bench.relay_publish_cpu [ROUNDS]` (the NATS server at NATS_URL, else nats://127.0.0.1:4222; streams of
its own, deleted at the end)."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time

from shared.bus import Bus
from shared.events import new_event


async def main(rounds: int) -> None:
    bus = Bus(os.environ.get("NATS_URL") or "nats://127.0.0.1:4222", prefix="benchrelay" + secrets.token_hex(3))
    await bus.connect(attempts=3)
    subject = bus.names.subject("yimen.bench.thing.happened")

    def batch(i: int) -> list[tuple[str, bytes, str]]:
        evs = [new_event("yimen.bench.thing.happened", source="/bench", subject=str(i), data={"i": i})
               for _ in range(i % 6 + 1)]
        return [(subject, e.to_json(), e.id) for e in evs]

    async def one_by_one(msgs: list[tuple[str, bytes, str]]) -> None:
        await asyncio.gather(*(bus.publish_raw(s, p, m) for s, p, m in msgs))

    ways = {"requests gathered": one_by_one, "publish_batch": bus.publish_batch}
    cpu = dict.fromkeys(ways, 0.0)
    events = 0
    try:
        for i in range(rounds + 20):
            msgs = batch(i)
            for name, way in ways.items():
                t = time.process_time()
                await way(msgs)
                if i >= 20:  # after the warm-up
                    cpu[name] += time.process_time() - t
            events += len(msgs) if i >= 20 else 0
        for name, spent in cpu.items():
            print(f"{name}: {spent * 1e6 / events:.0f} µs CPU per event ({events} events in {rounds} rounds)")
    finally:
        await bus.js.delete_stream(bus.names.stream)
        await bus.js.delete_stream(bus.names.dead_letter_stream)
        await bus.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 600))
