"""What every use case of an application shares: the item version it cites, the timeline, who acts, the
transition check, and who may load it (the access rules applied to rows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import applicants, assurance, completeness, timeline
from services.intake.domain.applicants import is_staff_of, may_view
from services.intake.domain.completeness import Finding, Provided
from services.intake.domain.lifecycle import Action, IllegalTransition, ensure
from services.intake.domain.reuse import Earlier
from services.intake.events import contracts as ev
from services.intake.store import repository as repo
from services.intake.store.repository import PublishedItem
from services.intake.store.tables import Application, Attachment
from shared.errors import Conflict, FieldError, Forbidden, NotFound, ValidationProblem
from shared.principal import ADMIN, SUPERVISOR, WINDOW_CLERK, Principal
from shared.types import utcnow
from shared.workdays import WorkCalendar

CALENDAR = WorkCalendar()
CITY_TZ = ZoneInfo("Asia/Shanghai")
ONLINE_CHANNELS = frozenset({"online", "mobile"})
NOT_FOUND = "No application with this id that you may see."


@dataclass(frozen=True)
class Responder:
    """Who acts on an application: a window clerk (first responder 首问负责) or the system."""

    id: str
    name: str | None
    unit: str | None
    contact: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "unit": self.unit, "contact": self.contact}


SYSTEM = Responder("system", "网上自动受理", None)


def responder(principal: Principal) -> Responder:
    contact = principal.claims.get("phone") or principal.claims.get("contact")
    return Responder(principal.subject, principal.name, principal.service_point or principal.department,
                     str(contact) if contact else None)


def applicant_ref(app: Application) -> ev.ApplicantRef:
    return ev.ApplicantRef(
        kind=app.applicant_kind,  # type: ignore[arg-type]
        id=app.applicant_id, holder_id=app.applicant_holder_id, name=app.applicant_name, agent_id=app.agent_id,
    )


def provided_of(atts: Sequence[Attachment]) -> list[Provided]:
    return [Provided(a.material_code, a.kind) for a in atts]


def transition(status: str, action: Action) -> None:
    try:
        ensure(status, action)
    except (IllegalTransition, ValueError) as exc:
        raise Conflict(str(exc), slug="illegal-transition", status_now=status) from exc


async def item_of(session: AsyncSession, app: Application) -> PublishedItem:
    item = await repo.item_version(session, app.item_code, app.item_version)
    if item is None:  # cannot happen: an application is created only against a kept version
        raise Conflict("The item version this application cites is unknown.", slug="item-unknown")
    return item


def refuse_if_assurance_too_low(item: PublishedItem, level: int) -> None:
    """实名核验: the item's `min_assurance_level` against the applicant's level."""
    low = assurance.shortfall(item.payload, level)
    if low is not None:
        raise Forbidden(low.message, slug="assurance-level-too-low", title="Identity assurance level too low",
                        required_level=low.required, current_level=low.current)


def refuse_if_withdrawn(item: PublishedItem, withdrawn_at: datetime | None) -> None:
    if withdrawn_at is not None:
        raise ValidationProblem(
            FieldError(
                field="item_version", rule="item_withdrawn",
                message=f"事项 {item.code} 第 {item.version} 版已撤销，不能再提交；请按现行版本重新申请。",
            )
        )


async def completeness_findings(
    session: AsyncSession, app: Application, item: PublishedItem, failures: dict[str, str],
    atts: Sequence[Attachment] | None = None,
) -> tuple[list[Finding], Sequence[Attachment]]:
    if atts is None:
        atts = await repo.attachments(session, app.id)
    findings = completeness.check(item.payload, app.form or {}, provided_of(atts), failures)
    return findings, atts


async def earlier_of(session: AsyncSession, principal: Principal, exclude: str | None = None,
                     limit: int = 50) -> list[Earlier]:
    """The caller's earlier applications (newest first) with their item versions and attachments, for reuse."""
    apps = [a for a in await repo.earlier_applications(
        session, applicant_ids=principal.applicant_ids, subject=principal.subject, limit=limit) if a.id != exclude]
    atts = await repo.attachments(session, [a.id for a in apps])
    items: dict[tuple[str, int], dict[str, Any]] = {}
    out = []
    for a in apps:
        key = (a.item_code, a.item_version)
        if key not in items:
            iv = await repo.item_version(session, *key)
            items[key] = iv.payload if iv else {}
        out.append(Earlier(application_id=a.id, form=a.form or {}, item=items[key],
                           attachments=[x for x in atts if x.application_id == a.id]))
    return out


# --- timeline -----------------------------------------------------------------------------------------------------


async def note(
    session: AsyncSession, app: Application | Any, step: str, *, unit: str | None = None, staff_name: str | None = None,
    staff_contact: str | None = None, text: str | None = None, at: datetime | None = None, code: str | None = None,
    purpose: str | None = None, status: str | None = None,
) -> None:
    """A timeline step, in the application's status unless `status` names the one the step was taken in."""
    # Names and contacts come from other services' events: clip them to the columns rather than fail the step.
    await repo.add_timeline(
        session, app.id, status=status or app.status, step=step[:200], unit=(unit or app.department)[:64],
        staff_name=staff_name[:200] if staff_name else None,
        staff_contact=staff_contact[:200] if staff_contact else None, note=text, at=at,
        code=code or timeline.code_for(step), purpose=purpose[:300] if purpose else None,
    )


def staff_label(name: str | None, unit: str | None) -> str | None:
    """A handler as the applicant reads it: 周审查（行政审批股）."""
    if not name:
        return None
    return f"{name}（{unit}）" if unit else name


async def department_contact(session: AsyncSession, app: Application | Any, department: str) -> str | None:
    """The item's published consultation phone for its own department's steps, else the department's phone (as
    catalog announces it), shown when the handler left none (事中告知: the applicant always has someone to call)."""
    if department != app.department:
        return await repo.department_phone(session, department)
    key = (app.item_code, app.item_version)
    if key in _consultation_phones:
        phone = _consultation_phones[key]
    else:
        item = await repo.item_version(session, app.item_code, app.item_version)
        phone = next((str(c["value"]) for c in ((item.payload.get("guide") or {}).get("consultation") or [])
                      if isinstance(c, dict) and c.get("channel") == "phone" and c.get("value")), None) if item else None
        if item is not None:
            if len(_consultation_phones) >= 10_000:
                _consultation_phones.clear()
            _consultation_phones[key] = phone
    return phone or await repo.department_phone(session, department)


#: A published item version never changes: its consultation phone is read once per process, not on every step of
#: every case (each read loads the version's whole content).
_consultation_phones: dict[tuple[str, int], str | None] = {}


# --- who may load an application --------------------------------------------------------------------------------


def visible(principal: Principal, app: Application) -> bool:
    return may_view(principal, applicant_id=app.applicant_id, service_point=app.service_point,
                    department=app.department)


def is_applicant(principal: Principal | None, app: Application) -> bool:
    return principal is not None and principal.kind == "person" and app.applicant_id in principal.applicant_ids


def serving_clerk(principal: Principal | None, app: Application) -> bool:
    """The window clerk of the application's own service point (not any clerk of the city)."""
    return (principal is not None and principal.kind == "staff" and principal.has(WINDOW_CLERK)
            and principal.service_point is not None and principal.service_point == app.service_point)


async def delegation_refusal(session: AsyncSession, principal: Principal, *, applicant_id: str,
                             item_code: str) -> str | None:
    """When the caller reaches this applicant only through `act`, the delegation must still cover it."""
    act = principal.acting_for
    if act is None or applicant_id != act.subject or applicant_id in (principal.subject, principal.organisation):
        return None
    row = await repo.get_delegation(session, act.delegation) if act.delegation else None
    return applicants.delegation_refusal(
        agent_id=principal.subject, principal_id=act.subject, item_code=item_code, now=utcnow(), known=row is not None,
        delegation_agent=row.agent_id if row else None, delegation_principal=row.principal_id if row else None,
        items=row.items if row else None, valid_until=row.valid_until if row else None,
        revoked_at=row.revoked_at if row else None,
    )


async def load_visible(session: AsyncSession, principal: Principal, application_id: str, *,
                       for_update: bool = False, found: Application | None = None) -> Application:
    """Another person's or another unit's application is a 404, so ids cannot be probed. `found`: the caller
    has read (and locked) the application already."""
    app = found or await repo.get_application(session, application_id, for_update=for_update)
    if app is None:
        raise NotFound(NOT_FOUND)
    if not visible(principal, app):
        # Staff of a department reviewing the item in parallel read the case too (not accept it).
        item = await repo.item_version(session, app.item_code, app.item_version) if principal.kind != "person" else None
        co = completeness.reviewing_departments(item.payload) if item else frozenset()
        if not co or not may_view(principal, applicant_id=app.applicant_id, service_point=app.service_point,
                                  department=app.department, co_departments=co):
            raise NotFound(NOT_FOUND)
    if await delegation_refusal(session, principal, applicant_id=app.applicant_id, item_code=app.item_code):
        raise NotFound(NOT_FOUND)
    return app


async def is_filing_clerk(session: AsyncSession, principal: Principal, app: Application) -> bool:
    """A window clerk of the application's point, for a case filed at a window for the person there."""
    return serving_clerk(principal, app) and await repo.walk_in(session, app.id) is not None


async def load_as_applicant(session: AsyncSession, principal: Principal, application_id: str, *,
                            for_update: bool = False, filing_clerk: bool = False,
                            found: Application | None = None) -> Application:
    """The applicant (or their agent); with `filing_clerk`, also the window clerk of the point where the case was
    filed for the person at the counter (窗口代录): they fill, attach, submit and withdraw for that person."""
    app = await load_visible(session, principal, application_id, for_update=for_update, found=found)
    if not is_applicant(principal, app) and not (filing_clerk and await is_filing_clerk(session, principal, app)):
        raise Forbidden("Only the applicant (or their agent) may do this.")
    return app


async def applicant_level(session: AsyncSession, principal: Principal, app: Application) -> int:
    """The applicant's identity assurance: their token's, or, for a walk-in the clerk submits, the level identity
    gave the person when the clerk checked the card."""
    if is_applicant(principal, app):
        return principal.applicant_assurance_level
    row = await repo.walk_in(session, app.id)
    return row.assurance_level if row is not None else principal.applicant_assurance_level


async def load_as_clerk(session: AsyncSession, principal: Principal, application_id: str, *,
                        for_update: bool = False) -> Application:
    """A window clerk of the application's service point or of the item's department (首问负责)."""
    app = await load_visible(session, principal, application_id, for_update=for_update)
    if not (principal.has(WINDOW_CLERK, ADMIN, SUPERVISOR)
            and is_staff_of(principal, service_point=app.service_point, department=app.department)):
        raise Forbidden("Only a window clerk of this service point or of the item's department may do this.")
    return app


async def load_as_handing_clerk(session: AsyncSession, principal: Principal, application_id: str) -> Application:
    """Who hands a result over: for pick-up, a window clerk of the point the applicant chose (异地领取 reaches
    points that otherwise never see the case); otherwise a clerk of the application's point or department."""
    app = await repo.get_application(session, application_id, for_update=True)
    if app is None:
        raise NotFound(NOT_FOUND)
    at_point = (app.delivery_method == "pickup" and app.delivery_point is not None
                and principal.kind == "staff" and principal.has(WINDOW_CLERK)
                and principal.service_point == app.delivery_point)
    if at_point:
        return app
    return await load_as_clerk(session, principal, application_id, for_update=True)
