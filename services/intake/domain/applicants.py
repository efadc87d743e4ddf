"""Who applies (申请人) and who may see an application: pure rules over the caller's token claims."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.principal import ADMIN, SUPERVISOR, Principal


@dataclass(frozen=True)
class Applicant:
    kind: str  # "person" | "organisation"
    id: str  # account id or credit code
    holder_id: str | None  # citizen ID number or credit code
    name: str | None
    agent_id: str | None  # the person acting for an organisation or under a delegation


class NotAnApplicant(Exception):
    pass


def applicant_of(principal: Principal, on_behalf_of: str | None = None) -> Applicant:
    """The applicant a token applies as: itself, the organisation it is the agent of (`org`), or the principal
    it acts for under a delegation (`act`). `on_behalf_of` picks one when the token carries several."""
    if principal.kind != "person":
        raise NotAnApplicant("Only a person's token can apply (staff record visits and decisions).")
    act, org = principal.acting_for, principal.organisation
    choices: dict[str, Applicant] = {}
    if act is not None:
        holder = act.holder_id or (act.subject if act.kind == "organisation" else None)
        choices[act.subject] = Applicant(act.kind, act.subject, holder, None, principal.subject)
    if org:
        choices[org] = Applicant("organisation", org, org, None, principal.subject)
    if on_behalf_of is not None:
        if on_behalf_of == principal.subject:
            return Applicant("person", principal.subject, principal.holder_id, principal.name, None)
        if on_behalf_of not in choices:
            raise NotAnApplicant("The token does not act for this applicant (no `org` or `act` naming it).")
        return choices[on_behalf_of]
    if act is not None:
        return choices[act.subject]
    if org:
        return choices[org]
    return Applicant("person", principal.subject, principal.holder_id, principal.name, None)


def is_staff_of(principal: Principal, *, service_point: str, department: str,
                co_departments: frozenset[str] = frozenset()) -> bool:
    """A staff member handles cases at their service point (通办: any case handed in there), of their department,
    or — for reading — of an item their department reviews in parallel (`co_departments`); supervisors and
    admins see all."""
    if principal.kind not in ("staff", "department_system"):
        return False
    if principal.has(ADMIN, SUPERVISOR):
        return True
    if principal.service_point is not None and principal.service_point == service_point:
        return True
    return principal.department is not None and (
        principal.department == department or principal.department in co_departments
    )


def may_view(principal: Principal, *, applicant_id: str, service_point: str, department: str,
             co_departments: frozenset[str] = frozenset()) -> bool:
    """An applicant sees the cases of the identities their token carries (itself, `org`, `act`), not those
    they once filed for someone else: a delegation that ends takes the view with it."""
    if principal.kind == "person":
        return applicant_id in principal.applicant_ids
    return is_staff_of(principal, service_point=service_point, department=department, co_departments=co_departments)


def delegation_refusal(
    *, agent_id: str, principal_id: str, item_code: str, now: datetime, known: bool, delegation_agent: str | None = None,
    delegation_principal: str | None = None, items: list[str] | None = None, valid_until: datetime | None = None,
    revoked_at: datetime | None = None,
) -> str | None:
    """Why a token acting under a delegation may not act for this item, or None. A delegation not (yet) known
    here is trusted as identity signed it; a known one is held to its agent, principal, items and term."""
    if not known:
        return None
    if revoked_at is not None and revoked_at <= now:
        return "The delegation has been revoked."
    if valid_until is not None and valid_until <= now:
        return "The delegation has expired."
    if delegation_agent != agent_id or delegation_principal != principal_id:
        return "The delegation does not name this agent and principal."
    if items is not None and item_code not in items:
        return "The delegation does not cover this item."
    return None
