"""Datashare, read by intake: what a department holds for a material (a certificate, a registry record), asked
with the applicant's own token and the application as purpose. Pure I/O: the caller records the results."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("yimen.intake")


@dataclass
class FetchResult:
    material_code: str
    status: str  # found | no_match | refused | unavailable
    reference: str | None = None
    details: dict[str, Any] | None = None
    material_name: str | None = None


#: At most this many of one application's materials are asked for at once (an item lists a handful).
CONCURRENT = 8


async def fetch(http: httpx.AsyncClient, base_url: str, authorization: str | None, *, application_id: str,
                item_code: str, item_version: int, holder_id: str | None, holder_kind: str,
                materials: list[dict[str, Any]]) -> list[FetchResult]:
    """Ask datashare for each of `materials` (none is asked without the holder's ID number), concurrently: the
    answers are independent, and the submission waits for the slowest rather than for their sum. In the order of
    `materials`."""
    headers = {"Authorization": authorization} if authorization else {}
    gate = asyncio.Semaphore(CONCURRENT)

    async def one(m: dict[str, Any]) -> FetchResult:
        if not holder_id:
            return FetchResult(m["code"], "refused")  # nothing to ask by: no ID number in the token
        body = {"application_id": application_id, "item_code": item_code, "item_version": item_version,
                "material_code": m["code"], "holder_id": holder_id, "holder_kind": holder_kind}
        try:
            async with gate:
                r = await http.post(f"{base_url}/datashare/v1/requests", json=body, headers=headers, timeout=5)
            if r.status_code != 200:
                log.warning("datashare answered %s for material %s", r.status_code, m["code"])
                # A 4xx is datashare's refusal (the holder or the purpose not established): the applicant
                # uploads instead; anything else is an outage.
                return FetchResult(m["code"], "refused" if 400 <= r.status_code < 500 else "unavailable")
            data = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("datashare unreachable for material %s: %r", m["code"], exc)
            return FetchResult(m["code"], "unavailable")
        if data.get("status") == "found":
            cert = data.get("certificate") or {}
            record = data.get("record") or {}
            ref = cert.get("number") or record.get("id") or record.get("number")
            return FetchResult(m["code"], "found", str(ref) if ref else None,
                               {"source": data.get("source"), "certificate": cert or None, "record": record or None},
                               material_name=m.get("name"))
        return FetchResult(m["code"], "no_match")

    return list(await asyncio.gather(*(one(m) for m in materials)))
