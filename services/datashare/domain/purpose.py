"""Purpose binding for staff and department systems (用途绑定): a registry record or a certificate is read only
for a live application in which the reader's department holds an open task, or which the reader's window is
accepting; only from a source the application's item version names; only the fields its materials need; and
phone and ID numbers stay masked except where the reader's role needs them. Admins and supervisors may look a
record up without an application only with a written reason.

Rules only: the callers bring the application (from intake), the item (datashare's copy) and the departments
holding open tasks (datashare's projection of workflow's task events)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.datashare.domain.sharing import application_problem
from shared.errors import Forbidden, invalid
from shared.principal import ADMIN, SUPERVISOR, WINDOW_CLERK, Principal
from shared.privacy import mask_id_number, mask_text

#: Intake statuses in which a window is accepting the application (受理).
WINDOW_ACCEPTING = frozenset({"submitted"})
#: Statuses in which a window clerk is still filling in a walk-in (窗口代录) for the person at the counter: intake
#: shows the case's `walk_in` to the clerk of its point, who fetches what the registries hold, as the person would.
WINDOW_FILING = frozenset({"draft", "returned"})
#: A written reason (look-ups without an application) has at least this many characters.
MIN_REASON = 4


@dataclass(frozen=True)
class Grant:
    """Why a read is allowed and what it may show."""

    basis: str  # "department" | "window" | "reason"
    fields: tuple[str, ...] | None  # None: the whole record
    material_codes: tuple[str, ...] = ()
    #: Phone and ID numbers in the granted fields are shown in full (a department system reading the fields a
    #: material needs, the window clerk serving the case); every other reader sees them masked.
    unmasked: bool = False


def is_reader(principal: Principal) -> bool:
    """Staff and department systems: the readers this module binds to a purpose."""
    return principal.kind in ("staff", "department_system")


def may_look_up_by_reason(principal: Principal) -> bool:
    return principal.kind == "staff" and principal.has(ADMIN, SUPERVISOR)


def check_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if len(text) < MIN_REASON:
        raise invalid("query.reason", "required",
                      f"A look-up without an application needs a written reason (at least {MIN_REASON} characters).")
    return text


def task_basis(principal: Principal, application: dict[str, Any], task_departments: Iterable[str]) -> str:
    """How the reader takes part in this application, or 403: its department holds an open task in it, or it is
    the window clerk of the application's service point while the application awaits acceptance, or while the
    clerk fills in a walk-in there for the person at the counter."""
    if problem := application_problem(application, str(application.get("item_code") or "")):
        raise Forbidden(f"Refused: {problem}.", slug="purpose-not-established")
    if principal.department and principal.department in set(task_departments):
        return "department"
    status = str(application.get("status"))
    if (principal.kind == "staff" and principal.has(WINDOW_CLERK) and principal.service_point
            and principal.service_point == application.get("service_point")
            and (status in WINDOW_ACCEPTING or (status in WINDOW_FILING and application.get("walk_in")))):
        return "window"
    raise Forbidden("Your department holds no open task in this application, and no window of yours is accepting "
                    "it: it is no purpose for reading this data.", slug="no-open-task")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def holder_in_application(holder_id: str, application: dict[str, Any]) -> bool:
    """The holder is the applicant or is named in the form. Intake shows other staff ID numbers masked, so a
    masked value that keeps the same prefix and suffix counts as naming the holder too."""
    masked = {mask_id_number(holder_id), mask_text(holder_id)}
    seen = set(_strings(application.get("applicant") or {})) | set(_strings(application.get("form") or {}))
    return holder_id in seen or bool(masked & seen)


def sources_named(item: dict[str, Any], *, registry: str | None = None, certificate_type: str | None = None,
                  material_code: str | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(material codes, fields) of the item's materials that name this registry or certificate type; the fields
    are those materials' together. 403 when none does (or not the one asked for)."""
    codes: list[str] = []
    fields: list[str] = []
    for m in item.get("materials") or []:
        if registry and not (m.get("source") == "registry" and m.get("registry") == registry):
            continue
        if certificate_type and not (m.get("source") in ("certificate", "own_certificate")
                                     and m.get("certificate_type") == certificate_type):
            continue
        if material_code and m.get("code") != material_code:
            continue
        codes.append(str(m.get("code")))
        fields.extend(f for f in m.get("fields") or () if f not in fields)
    if not codes:
        what = f"the {registry} registry" if registry else f"certificate type {certificate_type}"
        raise Forbidden(f"The application's item names {what} for no material"
                        + (f" (not for {material_code})" if material_code else "") + ".", slug="source-not-named")
    return tuple(codes), tuple(fields)


def grant_for_application(principal: Principal, basis: str, codes: tuple[str, ...],
                          fields: tuple[str, ...]) -> Grant:
    unmasked = basis == "window" or principal.kind == "department_system"
    return Grant(basis=basis, fields=fields, material_codes=codes, unmasked=unmasked)


def reason_grant() -> Grant:
    return Grant(basis="reason", fields=None)


def release(values: dict[str, Any], grant: Grant) -> dict[str, Any]:
    """The fields the grant covers, with phone and ID numbers masked unless the grant shows them in full."""
    out = values if grant.fields is None else {f: values[f] for f in grant.fields if f in values}
    return out if grant.unmasked else mask_values(out)


def mask_values(value: Any) -> Any:
    """Every phone and ID number inside strings masked (keys and structure kept)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_values(v) for v in value]
    return value


def own_holder_ids(principal: Principal) -> set[str]:
    """The holders whose data this token may read as itself: its person, its organisation, its principal."""
    ids = {principal.holder_id, principal.organisation}
    if principal.acting_for:
        ids.add(principal.acting_for.holder_id)
    return {i for i in ids if i}


def is_department_actor(principal: Principal) -> bool:
    return principal.kind in ("staff", "department_system") and bool(principal.department)


def acts_for_department(principal: Principal, department: str) -> bool:
    """Staff or a system of `department`, or an admin: who issues, revokes and imports for that department."""
    return principal.has(ADMIN) or (is_department_actor(principal) and principal.department == department)


def holder_level_problem(principal: Principal, minimum: int) -> str | None:
    """A holder's data is released only to a person whose token is of assurance level `minimum` or more
    (实名核验); under a delegation the lower of agent's and principal's level counts. Staff and systems are not
    graded. Why not, or None."""
    if principal.kind != "person":
        return None
    level = principal.applicant_assurance_level
    if level < minimum:
        return (f"This token's assurance level is {level}; a holder's data needs level {minimum} or more. "
                "Have your name and ID number matched against the population registry, or have them "
                "checked in person at a window.")
    return None
