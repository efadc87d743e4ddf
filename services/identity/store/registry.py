"""Identity's calls to datashare's base registries (实名核验): name and ID number against the population
registry, credit code, name and legal representative against the legal-person registry.

Identity calls with a short-lived token it signs for itself (`kind=service`, `sub=identity`, `roles=[service]`),
never with the applicant's token: the applicant is not yet anyone datashare would answer, and datashare accepts
exactly the match queries from this token. Datashare writes each match with its purpose into the holder's access
log. The answer is a verdict only; no registry record comes back."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import httpx

from services.identity.domain.tokens import TokenSubject
from services.identity.runtime import IdentityRuntime
from shared.db import Database
from shared.errors import Problem
from shared.types import utcnow

log = logging.getLogger("yimen.identity.registry")

SERVICE_SUBJECT = TokenSubject(sub="identity", kind="service", roles=["service"], name="identity")
SERVICE_TOKEN_TTL = timedelta(minutes=5)


class RegistryUnavailable(Problem):
    status, slug, title = 503, "registry-unavailable", "The base registry cannot be reached"

    def __init__(self) -> None:
        super().__init__("实名核验暂时无法完成（人口库/法人库不可用），请稍后再试。The registry check could not be done; "
                         "nothing was created. Try again shortly.", headers={"Retry-After": "30"}, retry_after=30)


class RegistryClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str, db: Database, runtime: IdentityRuntime) -> None:
        self.http, self.base_url, self.db, self.runtime = http, base_url.rstrip("/"), db, runtime

    async def _token(self) -> str:
        cached = self.runtime.service_token
        if cached and cached[1] > time.monotonic() + 30:
            return cached[0]
        now = utcnow()
        async with self.db.transaction() as session:
            key = await self.runtime.keyring.signing_key(session, now)
        token = key.sign(SERVICE_SUBJECT, now=now, ttl=SERVICE_TOKEN_TTL)
        self.runtime.service_token = (token, time.monotonic() + SERVICE_TOKEN_TTL.total_seconds())
        return token

    async def _match(self, path: str, body: dict[str, str]) -> str:
        try:
            r = await self.http.post(f"{self.base_url}/datashare/v1/registries/{path}/matches", json=body,
                                     headers={"Authorization": f"Bearer {await self._token()}"}, timeout=5)
        except httpx.HTTPError as exc:
            log.warning("registry match %s unreachable: %r", path, exc)
            raise RegistryUnavailable() from exc
        if r.status_code == 401:
            # A key datashare has not fetched yet, or a withdrawn one: the next call signs a fresh token.
            self.runtime.service_token = None
        if r.status_code != 200:
            log.warning("registry match %s answered %s: %s", path, r.status_code, r.text[:200])
            raise RegistryUnavailable()
        result = r.json().get("result")
        if not isinstance(result, str):
            raise RegistryUnavailable()
        return result

    async def match_person(self, *, id_number: str, name: str) -> str:
        """`match`, `name_mismatch` or `not_found`."""
        return await self._match("population", {"id_number": id_number, "name": name})

    async def match_organisation(self, *, credit_code: str, name: str, representative_id_number: str) -> str:
        """`match`, `name_mismatch`, `not_found`, `not_legal_representative` or `inactive`."""
        return await self._match("legal-persons", {"credit_code": credit_code, "name": name,
                                                   "legal_representative_id_number": representative_id_number})
