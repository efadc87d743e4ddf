"""Wiring of the intake service: its routers, tables, consumers and background jobs."""

from __future__ import annotations

import dataclasses

from fastapi import FastAPI

from services.intake.api import progress
from services.intake.api.routes import router
from services.intake.config import IntakeConfig
from services.intake.events.handlers import CONSUMERS
from services.intake.store.tables import Base, messaging
from shared.service import Hook, ServiceContext, ServiceSpec, create_service_app
from shared.settings import ServiceSettings

SPEC = ServiceSpec(
    name="intake",
    title="Yimen intake",
    description="""Applications (办件): one-window acceptance online and at any window, one-time notice, reuse, receipts, status, appointments, consultations.""",
    metadata=Base.metadata,
    messaging=messaging,
    routers=[router],
    fast=progress.FAST,
    consumers=CONSUMERS,
    openapi_tags=[
        {"name": "applications", "description": "办件: drafts, materials, the one-time notice (一次性告知), submission, "
                                                "acceptance at the window (首问负责), corrections, delivery, visits."},
        {"name": "reuse", "description": "Copy an earlier application or prefill from what earlier ones collected."},
        {"name": "progress", "description": "The public status query, my applications, a clerk's queue."},
        {"name": "appointments and consultations", "description": "预约办理 and 咨询."},
        {"name": "commitments", "description": "Post-verification of commitments (告知承诺核查) by the department."},
        {"name": "counter", "description": "At the counter and after: the receipt slip (受理回执), the delivery "
                                           "choice (出件, 异地领取, 邮寄), a point's collections, fees (收费) and "
                                           "the payment platform's signed confirmations."},
        {"name": "projects", "description": "企业投资项目: registration (project code, negative list), the project "
                                            "page, one stage application accepted once and dispatched to every "
                                            "department's item (统一受理、统一分派)."},
    ],
)


def _install(config: IntakeConfig) -> Hook:
    async def install_config(ctx: ServiceContext) -> None:
        ctx.extras["config"] = config

    return install_config


def create_app(settings: ServiceSettings | None = None, *, config: IntakeConfig | None = None,
               **kwargs: object) -> FastAPI:
    spec = dataclasses.replace(SPEC, on_startup=[_install(config or IntakeConfig()), *SPEC.on_startup])
    return create_service_app(spec, settings, **kwargs)  # type: ignore[arg-type]
