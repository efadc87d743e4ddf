"""Identity, asked by intake with the window clerk's own token who the person holding an ID card is
(`POST /identity/v1/walk-ins`). Identity's refusals reach the clerk as they are, fields under `body.person`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from shared.errors import FieldError, Problem, ValidationProblem

log = logging.getLogger("yimen.intake.walkins")


@dataclass(frozen=True)
class WalkInPerson:
    """The person at the counter as identity answered the clerk: account id, level, whether opened now."""

    id: str
    name: str
    id_number: str
    assurance_level: int
    account_created: bool
    claim_code: str | None = None
    claim_expires_at: datetime | None = None


class IdentityUnavailable(Problem):
    status, slug, title = 503, "identity-unavailable", "Identity cannot be reached"

    def __init__(self) -> None:
        super().__init__("身份核验暂时无法完成，请稍后再试；没有创建任何申请。Identity could not be asked who the person "
                         "is; nothing was filed.", headers={"Retry-After": "30"}, retry_after=30)


async def identify(http: httpx.AsyncClient, base_url: str, authorization: str, *, id_number: str,
                   person: dict[str, Any]) -> WalkInPerson:
    body = {"id_number": id_number, "name": person["name"], "phone": person["phone"], "document": person["document"]}
    try:
        r = await http.post(f"{base_url}/identity/v1/walk-ins", json=body, timeout=10,
                            headers={"Authorization": authorization})
    except httpx.HTTPError as exc:
        log.warning("identity unreachable for a walk-in: %r", exc)
        raise IdentityUnavailable() from exc
    if r.status_code in (200, 201):
        data = r.json()
        p = data["person"]
        expires = data.get("claim_expires_at")
        return WalkInPerson(
            id=p["id"], name=p["name"], id_number=id_number, assurance_level=int(p["assurance_level"]),
            account_created=bool(data.get("created")), claim_code=data.get("claim_code"),
            claim_expires_at=datetime.fromisoformat(expires) if expires else None)
    try:
        problem = r.json()
    except ValueError:
        problem = {}
    if r.status_code == 422 and problem.get("errors"):
        raise ValidationProblem([
            FieldError(field="body.person." + str(e.get("field", "")).removeprefix("body."),
                       rule=str(e.get("rule", "invalid")), message=str(e.get("message", "")))
            for e in problem["errors"]], detail=problem.get("detail"))
    if r.status_code in (401, 403, 409):
        raise Problem(problem.get("detail") or "Identity refused the walk-in.", status=r.status_code,
                      slug=str(problem.get("type", "")).rsplit("/", 1)[-1] or "identity-refused",
                      title=problem.get("title") or "Identity refused the walk-in")
    log.warning("identity answered %s to a walk-in: %s", r.status_code, r.text[:200])
    raise IdentityUnavailable()
