"""Intake, read with the caller's own token: intake decides what the caller may see of an application, so a
department that may not see the case gets no purpose out of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from shared.errors import Forbidden


@dataclass(frozen=True)
class IntakeClient:
    http: httpx.AsyncClient
    base_url: str
    #: The caller's `Authorization` header, forwarded as it came.
    authorization: str

    async def application(self, application_id: str) -> dict[str, Any]:
        """The application as intake shows it to the caller, or 403 `purpose-not-established`."""
        url = self.base_url.rstrip("/")
        try:
            r = await self.http.get(f"{url}/intake/v1/applications/{application_id}",
                                    headers={"Authorization": self.authorization})
        except httpx.HTTPError as exc:
            raise Forbidden("The application cannot be confirmed now (intake did not answer).",
                            slug="purpose-not-established") from exc
        if r.status_code != 200:
            raise Forbidden(f"Intake does not confirm the application (HTTP {r.status_code}).",
                            slug="purpose-not-established")
        try:
            data = r.json()
        except ValueError as exc:
            raise Forbidden("Intake's answer was unreadable.", slug="purpose-not-established") from exc
        if not isinstance(data, dict):
            return {}
        data.setdefault("id", application_id)
        return data
