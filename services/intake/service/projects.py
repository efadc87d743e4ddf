"""Use cases of enterprise investment projects (issue 17): register a project (code checked or issued, negative
list screened), one stage application accepted once and dispatched to every item (统一受理、统一分派), the stage's
completion as the items are decided, and the owner's project page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import completeness, forms
from services.intake.domain import projects as domain
from services.intake.domain.applicants import NotAnApplicant, applicant_of
from services.intake.domain.completeness import Provided
from services.intake.domain.lifecycle import Status
from services.intake.events import contracts as ev

# NOTE(merge): `cases` is becoming the package `services.intake.service`; these names move with it.
from services.intake.service.applications import StageDispatch, hand_in
from services.intake.service.common import CALENDAR, Responder, note
from services.intake.store import projects as store
from services.intake.store import repository as repo
from services.intake.store.tables import Project
from shared.errors import Conflict, FieldError, Forbidden, NotFound, ValidationProblem
from shared.messaging import publish
from shared.principal import Principal
from shared.types import utcnow

CITY_TZ = ZoneInfo("Asia/Shanghai")
#: The centre that accepts every stage application once (统一受理).
CENTRE = Responder("centre", "罗定市政务服务中心（项目统一受理）", "LD-CENTRE")
#: Materials given by reference: a certificate's number, a document's number (e.g. 用地批准文号 or the dossier
#: number the centre's window gave for paper originals), or a written commitment (告知承诺).
MATERIAL_KINDS = {"certificate_ref": "certificate_ref", "reference": "certificate_ref", "commitment": "commitment"}


def clock_url(project_id: str) -> str:
    return f"/efficacy/v1/projects/{project_id}/clock"


def _today() -> date:
    return utcnow().astimezone(CITY_TZ).date()


def _due(start: date, days: int) -> date:
    return CALENDAR.add_workdays(start, days).value


# --- catalog's project types ---------------------------------------------------------------------------------


async def keep_project_type(session: AsyncSession, data: ev.ProjectTypePublished, payload: dict[str, Any]) -> None:
    await store.put_project_type(session, key=data.key, name=data.name, payload=payload,
                                 published_at=data.published_at)


# --- registration -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    type_key: str
    name: str
    site: str
    land_area_m2: Decimal
    total_investment_wan: Decimal
    industry_code: str
    project_code: str | None = None


def _owner(principal: Principal) -> str:
    """A project is registered by an organisation, through its agent's token (`org`)."""
    try:
        applicant = applicant_of(principal)
    except NotAnApplicant as exc:
        raise Forbidden(str(exc), slug="not-an-applicant") from exc
    if applicant.kind != "organisation":
        raise Forbidden("企业投资项目由企业（其经办人）登记：请以企业经办人身份登录。", slug="organisation-only")
    return applicant.id


async def register(session: AsyncSession, principal: Principal, body: Registration) -> Project:
    owner = _owner(principal)
    ptype = await store.project_type(session, body.type_key)
    if ptype is None:
        raise ValidationProblem(FieldError(field="body.type_key", rule="unknown_project_type",
                                           message=f"项目类型 {body.type_key} 不在事项目录中。"))
    now = utcnow()
    if body.project_code is not None:
        findings = domain.check_project_code(body.project_code, this_year=_today().year)
        if findings:
            raise ValidationProblem([FieldError(**f.as_dict()) for f in findings], detail="项目代码不符合 GB/T 40058-2021。")
        if await store.code_taken(session, body.project_code):
            raise Conflict(f"项目代码 {body.project_code} 已登记。", slug="project-code-taken")
        code = body.project_code
    else:
        code = domain.issue_project_code(_today().year)
        while await store.code_taken(session, code):
            code = domain.issue_project_code(_today().year)
    screening = domain.screen(body.industry_code)
    if screening.prohibited is not None:
        entry = screening.prohibited
        raise Forbidden(f"该项目属于市场准入负面清单禁止准入事项：{entry.title}（{entry.legal_basis}）。",
                        slug="negative-list-prohibited", title="Prohibited by the market-access negative list",
                        entry=entry.as_dict())
    stages = [s for s in ptype.payload.get("stages") or []]
    project = await store.add_project(
        session, project_code=code, type_key=ptype.key, owner_id=owner, agent_id=principal.subject, name=body.name,
        site=body.site, land_area_m2=str(body.land_area_m2), total_investment_wan=str(body.total_investment_wan),
        industry_code=body.industry_code, conditions=screening.conditions, stages=stages, registered_at=now)
    await publish(session, ev.PROJECT_REGISTERED, subject=project.id, data=ev.ProjectRegistered(
        project_id=project.id, project_code=code, owner_id=owner, name=body.name, registered_at=now))
    return project


# --- reading ------------------------------------------------------------------------------------------------------


def _may_see(principal: Principal, project: Project) -> bool:
    return project.owner_id in principal.applicant_ids or principal.is_staff


async def visible(session: AsyncSession, principal: Principal, project_id: str, *, for_update: bool = False) -> Project:
    project = await store.get_project(session, project_id, for_update=for_update)
    if project is None or not _may_see(principal, project):
        raise NotFound(f"项目 {project_id} 不存在。", slug="project-not-found")
    return project


async def mine(session: AsyncSession, principal: Principal) -> list[Project]:
    return list(await store.projects_of(session, sorted(principal.applicant_ids)))


async def _progress(session: AsyncSession, project: Project) -> tuple[
        list[domain.Stage], dict[str, domain.StageProgress], list[tuple[Any, Any]]]:
    stages = domain.stages_of({"stages": project.stages})
    progress = {r.stage_key: domain.StageProgress(accepted_at=r.accepted_at, completed_at=r.completed_at)
                for r in await store.stages(session, project.id)}
    rows = list(await store.applications(session, project.id))
    for link, app in rows:
        progress.setdefault(link.stage_key, domain.StageProgress()).outcomes[app.id] = (
            app.outcome if app.outcome in ("approved", "rejected") else None)
    return stages, progress, rows


async def page(session: AsyncSession, project: Project) -> dict[str, Any]:
    """The owner's one page: every stage with its status, applications, who holds each, and the clocks."""
    stages, progress, rows = await _progress(session, project)
    stage_rows = {r.stage_key: r for r in await store.stages(session, project.id)}
    held = await store.latest_steps(session, [app.id for _, app in rows])
    handled = await store.handlers(session, [app.id for _, app in rows])
    units = {u for _, app in rows for u in (app.department, held[app.id].unit if app.id in held else None) if u}
    units |= {e.unit for entries in handled.values() for e in entries if e.unit}
    units |= {i.department for s in stages for i in s.items}
    names = await repo.department_names(session, units)

    def who(e: Any) -> dict[str, Any]:
        return {"unit": e.unit, "unit_name": names.get(e.unit or ""), "step": e.step, "staff_name": e.staff_name,
                "staff_contact": e.staff_contact, "since": e.at}

    out_stages = []
    for s in stages:
        row = stage_rows.get(s.key)
        apps = []
        for link, app in rows:
            if link.stage_key != s.key:
                continue
            step = held.get(app.id)
            apps.append({
                "application_id": app.id, "receipt_number": app.receipt_number, "item_code": app.item_code,
                "item_name": app.item_name, "department": app.department,
                "department_name": names.get(app.department), "status": app.status, "outcome": app.outcome,
                "limit_days": link.limit_days, "due_on": link.due_on, "accepted_at": app.accepted_at,
                "decided_at": app.decided_at,
                "held_by": None if step is None else who(step),
                "handled_by": [who(e) for e in handled.get(app.id, [])],
            })
        out_stages.append({
            "key": s.key, "name": s.name, "order": s.order, "total_limit_days": s.total_limit_days,
            "status": domain.status_of(stages, progress, s.key).value,
            "accepted_at": row.accepted_at if row else None, "due_on": row.due_on if row else None,
            "completed_at": row.completed_at if row else None,
            "items": [{"item_code": i.item_code, "item_name": i.name, "department": i.department,
                       "department_name": names.get(i.department), "limit_days": i.limit_days} for i in s.items],
            "applications": apps,
        })
    status = "completed" if project.completed_at else ("in_progress" if stage_rows else "registered")
    return {
        "id": project.id, "project_code": project.project_code, "type_key": project.type_key, "name": project.name,
        "site": project.site, "land_area_m2": project.land_area_m2, "total_investment_wan": project.total_investment_wan,
        "industry_code": project.industry_code, "owner_id": project.owner_id, "status": status,
        "registered_at": project.registered_at, "completed_at": project.completed_at,
        "conditions": project.conditions, "clock_url": clock_url(project.id), "stages": out_stages,
    }


# --- one stage application (一表申请) -------------------------------------------------------------------------


@dataclass(frozen=True)
class StageMaterial:
    code: str
    kind: str  # certificate_ref | reference | commitment
    reference: str | None = None
    statement: str | None = None


def _stage_findings(item: dict[str, Any], form: dict[str, Any], given: list[StageMaterial]) -> list[FieldError]:
    """The item's share of the one form and the materials gathered once. Materials the system obtains through
    data sharing (registries, e-certificates) are verified by the department and not asked of the owner."""
    names = {f.get("name") for f in item.get("form_fields") or []}
    findings = forms.check_values(item, {k: v for k, v in form.items() if k in names})
    provided = [Provided(m.code, MATERIAL_KINDS[m.kind]) for m in given]
    for f in completeness.check_materials(item, provided):
        m = completeness.material(item, f.field.removeprefix("materials."))
        if m is not None and m.get("source") in completeness.FETCHED_SOURCES and f.rule == "required":
            continue
        findings.append(f)
    return [FieldError(field=f"body.{f.field}", rule=f.rule, message=f.message) for f in findings]


async def apply_for_stage(session: AsyncSession, principal: Principal, project_id: str, stage_key: str, *,
                          form: dict[str, Any], materials: list[StageMaterial],
                          service_point: str = "LD-CENTRE") -> Project:
    project = await visible(session, principal, project_id, for_update=True)
    if project.owner_id not in principal.applicant_ids or principal.kind != "person":
        raise Forbidden("只有项目单位（其经办人）可以提交阶段申请。", slug="not-the-owner")
    stages, progress, _ = await _progress(session, project)
    if stage_key not in {s.key for s in stages}:
        raise NotFound(f"项目没有阶段 {stage_key}。", slug="stage-not-found")
    try:
        stage = domain.gate(stages, progress, stage_key)
    except domain.GateRefusal as exc:
        raise Conflict(str(exc), slug=exc.slug, stage_key=stage_key) from exc
    items = []
    for si in stage.items:
        item = await repo.current_item(session, si.item_code)
        if item is None:
            raise Conflict(f"阶段事项 {si.name or si.item_code} 暂未发布或已撤销，阶段暂不能受理。",
                           slug="stage-item-unavailable", item_code=si.item_code)
        items.append((si, item))
    errors: dict[tuple[str, str], FieldError] = {}
    # The one form holds only fields some item of the stage asks for, each within its length, the whole bounded.
    union: dict[str, dict[str, Any]] = {}
    for _, item in items:
        for f in item.payload.get("form_fields") or []:
            union.setdefault(f.get("name"), f)
    for f in forms.check_shape({"form_fields": list(union.values())}, form):
        errors.setdefault((f.field, f.rule), FieldError(field=f"body.{f.field}", rule=f.rule, message=f.message))
    for _, item in items:
        for e in _stage_findings(item.payload, form, materials):
            errors.setdefault((e.field, e.rule), e)
    if errors:
        raise ValidationProblem(list(errors.values()), detail="阶段申请材料不齐全或表单有误（一次性告知）。")
    now, today = utcnow(), _today()
    await store.add_stage(session, project_id=project.id, stage_key=stage.key, form=form,
                          materials=[m.__dict__ for m in materials], accepted_at=now, accepted_by=CENTRE.id,
                          due_on=_due(today, stage.total_limit_days))
    refs = []
    for si, item in items:
        payload = item.payload
        names = {f.get("name") for f in payload.get("form_fields") or []}
        channel = "online" if "online" in (payload.get("channels") or []) else "window"
        app = await repo.add_application(
            session, item_code=item.code, item_version=item.version, item_name=item.name, department=item.department,
            status=Status.DRAFT.value, applicant_kind="organisation", applicant_id=project.owner_id,
            applicant_holder_id=project.owner_id, applicant_name=None, agent_id=principal.subject,
            created_by=principal.subject, channel=channel, service_point=service_point,
            form={k: v for k, v in form.items() if k in names}, delivery_method="electronic")
        codes = {m.get("code") for m in completeness.materials_of(payload)}
        for m in materials:
            if m.code in codes:
                await repo.put_attachment(session, application_id=app.id, material_code=m.code,
                                          kind=MATERIAL_KINDS[m.kind], reference=m.reference,
                                          details={"statement": m.statement} if m.statement else {})
        await note(session, app, f"项目“{project.name}”阶段“{stage.name}”一表申请", unit=service_point)
        await store.link_application(session, application_id=app.id, project_id=project.id, stage_key=stage.key,
                                     department=si.department, limit_days=si.limit_days,
                                     due_on=_due(today, si.limit_days))
        await hand_in(session, app, item, accept_by=CENTRE,
                           dispatch=StageDispatch(project.id, stage.key, si.limit_days))
        refs.append(ev.StageApplicationRef(application_id=app.id, item_code=item.code, department=si.department,
                                           limit_days=si.limit_days))
    await publish(session, ev.PROJECT_STAGE_ACCEPTED, subject=project.id, data=ev.ProjectStageAccepted(
        project_id=project.id, stage_key=stage.key, stage_name=stage.name, total_limit_days=stage.total_limit_days,
        accepted_at=now, applications=refs))
    # An immediate item (即办件) is decided at acceptance: the stage may be complete already.
    await _complete_if_decided(session, project, stage.key)
    return project


# --- decisions move the stages ------------------------------------------------------------------------------


async def application_decided(session: AsyncSession, application_id: str) -> None:
    """An application was decided: if it belongs to a project's stage, the stage (and the project) may complete."""
    link = await store.link_of(session, application_id)
    if link is None:
        return
    project = await store.get_project(session, link.project_id, for_update=True)
    if project is not None:
        await _complete_if_decided(session, project, link.stage_key)


async def _complete_if_decided(session: AsyncSession, project: Project, stage_key: str) -> None:
    stages, progress, _ = await _progress(session, project)
    mine = progress.get(stage_key)
    if mine is None or not domain.stage_completed(mine):
        return
    now = utcnow()
    row = next(r for r in await store.stages(session, project.id) if r.stage_key == stage_key)
    row.completed_at = mine.completed_at = now
    await session.flush()
    await publish(session, ev.PROJECT_STAGE_COMPLETED, subject=project.id, data=ev.ProjectStageCompleted(
        project_id=project.id, stage_key=stage_key, completed_at=now))
    if project.completed_at is None and domain.project_completed(stages, progress):
        project.completed_at = now
        await session.flush()
        await publish(session, ev.PROJECT_COMPLETED, subject=project.id,
                      data=ev.ProjectCompleted(project_id=project.id, completed_at=now))
