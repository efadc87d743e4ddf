"""Helpers the datashare routes share: who a principal may read as, and staff checks."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Request

from services.datashare import operations
from shared.auth import ADMIN, Principal
from shared.errors import Forbidden
from shared.ratelimit import SharedRateLimiter, limiter_for


def own_holder_ids(principal: Principal) -> set[str]:
    """The holders whose data this token may read as itself: its person, its organisation, its principal."""
    ids = {principal.holder_id, principal.organisation}
    if principal.acting_for:
        ids.add(principal.acting_for.holder_id)
    return {i for i in ids if i}


def is_department_actor(principal: Principal) -> bool:
    return principal.kind in ("staff", "department_system") and bool(principal.department)


def acts_for_department(principal: Principal, department: str) -> bool:
    return principal.has(ADMIN) or (is_department_actor(principal) and principal.department == department)


def check_holder_level(principal: Principal) -> None:
    """A holder's data is released only to a person whose token is of assurance level 2 or more (实名核验);
    under a delegation the lower of agent's and principal's level counts. Staff and systems are not graded."""
    if principal.kind != "person":
        return
    level = principal.applicant_assurance_level
    minimum = operations.current_config().holder_min_level
    if level < minimum:
        raise Forbidden(f"This token's assurance level is {level}; a holder's data needs level {minimum} or more. "
                        "Have your name and ID number matched against the population registry, or have them "
                        "checked in person at a window.", slug="assurance-level-too-low")


async def fetch_application(request: Request, application_id: str) -> dict[str, Any]:
    """Ask intake about the application with the caller's own token: intake decides what the caller may see,
    and a department that may not see the case gets no purpose out of it."""
    url = request.app.state.settings.platform.service_urls["intake"].rstrip("/")
    headers = {"Authorization": request.headers.get("Authorization", "")}
    try:
        r = await request.app.state.http.get(f"{url}/intake/v1/applications/{application_id}", headers=headers)
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


def limiter(request: Request, name: str, limit: int, per_seconds: float) -> SharedRateLimiter:
    """The running app's limiter `name` (shared/ratelimit.py: counted across every replica), made on first use."""
    return limiter_for(request.app.state, name, limit, per_seconds=per_seconds)


async def check_reasoned_lookup(request: Request, principal: Principal) -> None:
    """Look-ups without an application (admin, supervisor): at most so many per account per hour, registry and
    certificate look-ups together."""
    await limiter(request, "reasoned", operations.current_config().reasoned_lookups_per_hour, 3600.0).check(
        principal.subject, "look-ups without an application")
