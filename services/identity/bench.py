"""`python -m services.identity.bench`: what identity costs the platform.

* login: one argon2id verification with the production parameters (IdentitySettings);
* token verification in another service: a FastAPI route behind `CurrentPrincipal` (JWKSVerifier with a cached
  key set) against the same route without authentication, as a ratio, plus the bare `verify()` call."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from services.identity.config import IdentitySettings
from services.identity.domain.passwords import Passwords
from services.identity.domain.tokens import SigningKey, TokenSubject
from shared.auth import CurrentPrincipal, JWKSVerifier


def bench_login(rounds: int = 20) -> dict[str, Any]:
    s = IdentitySettings()
    pw = Passwords(time_cost=s.argon2_time_cost, memory_kib=s.argon2_memory_kib, parallelism=s.argon2_parallelism)
    stored = pw.hash("bench-pass-1")
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        pw.verify(stored, "bench-pass-1")
        times.append(time.perf_counter() - t)
    return {"argon2": f"argon2id t={s.argon2_time_cost} m={s.argon2_memory_kib} KiB p={s.argon2_parallelism}",
            "verify_ms_median": round(statistics.median(times) * 1000, 1)}


async def bench_verification(n: int = 2000) -> dict[str, Any]:
    key = SigningKey.generate()

    async def fetch() -> dict[str, Any]:
        return {"keys": [key.public_jwk()]}

    app = FastAPI()
    app.state.verifier = JWKSVerifier(fetch)

    @app.get("/bare")
    async def bare() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/auth")
    async def auth(principal: CurrentPrincipal) -> dict[str, str]:
        return {"ok": principal.subject}

    token = key.sign(TokenSubject(sub="p", kind="person", roles=["citizen"], name="n", hid="445381199001011230"),
                     now=datetime.now(UTC), ttl=timedelta(minutes=15))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as c:
        await c.get("/auth", headers=headers)  # warm the key cache

        async def run(path: str, h: dict[str, str]) -> float:
            t = time.perf_counter()
            for _ in range(n):
                await c.get(path, headers=h)
            return (time.perf_counter() - t) / n

        bare_s, auth_s = await run("/bare", {}), await run("/auth", headers)
    t = time.perf_counter()
    for _ in range(n):
        await app.state.verifier.verify(token)
    verify_s = (time.perf_counter() - t) / n
    # A token's first use in a process (or every use with remembering off): the signature and claims checked.
    uncached = JWKSVerifier(fetch, max_cached=0)
    await uncached.verify(token)
    t = time.perf_counter()
    for _ in range(n):
        await uncached.verify(token)
    first_s = (time.perf_counter() - t) / n
    return {"bare_request_us": round(bare_s * 1e6), "authenticated_request_us": round(auth_s * 1e6),
            "ratio": round(auth_s / bare_s, 2), "verify_call_us": round(verify_s * 1e6),
            "verify_call_first_use_us": round(first_s * 1e6)}


def main() -> None:
    print({"login": bench_login(), "token_verification": asyncio.run(bench_verification())})


if __name__ == "__main__":
    main()
