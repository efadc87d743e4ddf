"""Application facts for the KPIs, our copy of ratings' scores, and the certificates for reminders."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.domain.kpis import ApplicationFacts
from services.efficacy.store.tables import application_fact, certificate, rating


async def load_facts(session: AsyncSession, application_id: str) -> ApplicationFacts:
    row = (await session.execute(
        select(application_fact.c.body).where(application_fact.c.application_id == application_id))).first()
    return ApplicationFacts(**row.body) if row else ApplicationFacts(application_id)


async def save_facts(session: AsyncSession, f: ApplicationFacts) -> None:
    values = dict(body=f.to_json(), anchor_on=f.anchor_on, department=f.department, item_code=f.item_code,
                  service_point=f.service_point)
    exists = (await session.execute(select(application_fact.c.application_id)
                                    .where(application_fact.c.application_id == f.application_id))).first()
    if exists:
        await session.execute(application_fact.update()
                              .where(application_fact.c.application_id == f.application_id).values(**values))
    else:
        await session.execute(application_fact.insert().values(application_id=f.application_id, **values))


async def facts_in(session: AsyncSession, *, start: date, end: date, department: str | None, item: str | None,
                   service_point: str | None) -> list[ApplicationFacts]:
    q = select(application_fact.c.body).where(application_fact.c.anchor_on >= start, application_fact.c.anchor_on <= end)
    if department:
        q = q.where(application_fact.c.department == department)
    if item:
        q = q.where(application_fact.c.item_code == item)
    if service_point:
        q = q.where(application_fact.c.service_point == service_point)
    return [ApplicationFacts(**b) for b in (await session.execute(q)).scalars()]


async def rating_scores(session: AsyncSession, application_ids: list[str]) -> list[int]:
    out: list[int] = []
    for i in range(0, len(application_ids), 500):
        chunk = application_ids[i:i + 500]
        out += list((await session.execute(select(rating.c.score).where(rating.c.application_id.in_(chunk)))).scalars())
    return out


async def upsert_certificate(session: AsyncSession, **values: Any) -> None:
    exists = (await session.execute(select(certificate.c.certificate_number).where(
        certificate.c.certificate_number == values["certificate_number"]))).first()
    if exists:
        await session.execute(certificate.update().where(
            certificate.c.certificate_number == values["certificate_number"]).values(**values))
    else:
        await session.execute(certificate.insert().values(revoked=False, **values))


async def revoke_certificate(session: AsyncSession, number: str) -> None:
    await session.execute(certificate.update().where(certificate.c.certificate_number == number).values(revoked=True))


async def expiring(session: AsyncSession, holder_ids: set[str], until: date) -> list[Any]:
    return list((await session.execute(select(certificate).where(
        certificate.c.holder_id.in_(holder_ids), certificate.c.revoked.is_(False),
        certificate.c.valid_until.is_not(None), certificate.c.valid_until <= until,
    ).order_by(certificate.c.valid_until))).all())
