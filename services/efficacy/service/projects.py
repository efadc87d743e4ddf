"""Use cases of the project clock (项目审批计时): keep what intake says about projects and their stages, and count
a project's clock when asked, from those and the applications' own facts (their corrections and decisions, as the
application clocks see them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.domain import project_clock as pc
from services.efficacy.domain.clocks import build_clocks
from services.efficacy.events.contracts import (
    PROJECT_COMPLETED,
    PROJECT_REGISTERED,
    PROJECT_STAGE_ACCEPTED,
    PROJECT_STAGE_COMPLETED,
    ProjectCompleted,
    ProjectRegistered,
    ProjectStageAccepted,
    ProjectStageCompleted,
)
from services.efficacy.store import cases
from services.efficacy.store import projects as store
from services.efficacy.store.calendar import current_calendar
from shared.errors import NotFound
from shared.events import Event
from shared.principal import Principal


async def record_project_event(session: AsyncSession, event: Event) -> None:
    """One of intake's project events; each is idempotent (the first acceptance and completion win)."""
    if event.type == PROJECT_REGISTERED:
        r = ProjectRegistered.model_validate(event.data)
        await store.register(session, project_id=r.project_id, project_code=r.project_code, owner_id=r.owner_id,
                             name=r.name, registered_at=r.registered_at)
    elif event.type == PROJECT_STAGE_ACCEPTED:
        a = ProjectStageAccepted.model_validate(event.data)
        await store.accept_stage(session, project_id=a.project_id, stage_key=a.stage_key, stage_name=a.stage_name,
                                 total_limit_days=a.total_limit_days, accepted_at=a.accepted_at,
                                 applications=[x.model_dump() for x in a.applications])
    elif event.type == PROJECT_STAGE_COMPLETED:
        c = ProjectStageCompleted.model_validate(event.data)
        await store.complete_stage(session, project_id=c.project_id, stage_key=c.stage_key,
                                   completed_at=c.completed_at)
    elif event.type == PROJECT_COMPLETED:
        d = ProjectCompleted.model_validate(event.data)
        await store.complete_project(session, project_id=d.project_id, completed_at=d.completed_at)


def may_read(owner_id: str | None, principal: Principal) -> bool:
    """The owning organisation (its agents: token `org` = owner) and staff."""
    return principal.is_staff or (owner_id is not None and owner_id in principal.applicant_ids)


async def _application(session: AsyncSession, raw: dict[str, object]) -> pc.ApplicationRun:
    app_id = str(raw["application_id"])
    item_code = str(raw.get("item_code") or "")
    excluded, acceptance_days = await cases.item_rules(session, item_code)
    clock, _ = build_clocks(app_id, await cases.facts(session, app_id), excluded_steps=excluded,
                            acceptance_days=acceptance_days)
    outside = tuple(pc.Interval(p.start, p.end, pc.PAUSE_REASONS.get(p.reason, pc.INTERMEDIARY))
                    for p in clock.pauses)
    decided = clock.stopped_at if clock.stop_reason == "decided" else None
    return pc.ApplicationRun(app_id, item_code, str(raw.get("department") or ""), int(str(raw.get("limit_days") or 0)),
                             clock.started_at, decided, outside)


async def project_clock(session: AsyncSession, project_id: str, principal: Principal,
                        as_of: datetime) -> tuple[object, pc.ProjectClock]:
    """The project's clock at `as_of`, for its owner and staff (anyone else: 404, the project is not theirs)."""
    row = await store.get_project(session, project_id)
    if row is None or not may_read(row.owner_id, principal):
        raise NotFound(f"No project {project_id}.")
    stages = []
    for s in await store.stages_of(session, project_id):
        apps = tuple([await _application(session, a) for a in s.applications])
        stages.append(pc.StageRun(s.stage_key, s.stage_name, s.total_limit_days, s.accepted_at, s.completed_at, apps))
    clock = pc.project_clock(stages, completed_at=row.completed_at, cal=await current_calendar(session), as_of=as_of)
    return row, clock
