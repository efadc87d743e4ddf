"""Wiring of the workflow service: its routers, tables, consumers and background jobs."""

from __future__ import annotations

import dataclasses
import logging

from fastapi import FastAPI

from services.workflow import service
from services.workflow.api.joint_reviews import router as joint_review_router
from services.workflow.api.routes import FAST, router
from services.workflow.config import WorkflowConfig
from services.workflow.events.handlers import CONSUMERS
from services.workflow.store.tables import Base, messaging
from services.workflow.webhooks import dispatcher
from shared.jobs import periodic
from shared.service import Hook, ServiceContext, ServiceSpec, create_service_app
from shared.settings import ServiceSettings
from shared.types import utcnow

log = logging.getLogger("yimen.workflow")


async def deem_overdue_round(ctx: ServiceContext) -> None:
    """Overdue tasks of stages whose legal basis deems silence approval are approved as `deemed` (逾期视为同意)."""
    async with ctx.db.transaction() as s:
        await service.reload_calendar(s)  # another replica may have received a year's table
        await service.deem_overdue(s, utcnow())


def _deemed_check_seconds(ctx: ServiceContext) -> float:
    config: WorkflowConfig = ctx.extras["config"]
    return config.deemed_check_seconds


#: Background job: the deemed approvals, every `deemed_check_seconds`.
deemed_approvals = periodic(deem_overdue_round, interval=_deemed_check_seconds, name="deemed_approvals")


SPEC = ServiceSpec(
    name="workflow",
    title="Yimen workflow",
    description="""Process instances and department tasks; parallel approval (并联审批) by events and signed webhooks; corrections (补正); decisions.""",
    metadata=Base.metadata,
    messaging=messaging,
    routers=[router, joint_review_router],
    fast=FAST,
    consumers=CONSUMERS,
    background=[dispatcher, deemed_approvals],
    openapi_tags=[
        {"name": "tasks", "description": "Department tasks: inbox, decisions, reassignment."},
        {"name": "cases", "description": "A case's process instance."},
        {"name": "webhooks", "description": "Department webhooks (Standard Webhooks) and their deliveries."},
        {"name": "joint reviews", "description": "Joint drawing review (联合审图) and joint acceptance (联合验收): "
                                                 "schedule, opinions, consolidation, re-inspection."},
    ],
)


def _install(config: WorkflowConfig) -> Hook:
    async def install_config(ctx: ServiceContext) -> None:
        ctx.extras["config"] = config

    return install_config


def create_app(settings: ServiceSettings | None = None, *, config: WorkflowConfig | None = None,
               **kwargs: object) -> FastAPI:
    spec = dataclasses.replace(SPEC, on_startup=[_install(config or WorkflowConfig()), *SPEC.on_startup])
    return create_service_app(spec, settings, **kwargs)  # type: ignore[arg-type]
