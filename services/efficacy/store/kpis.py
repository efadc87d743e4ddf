"""Application facts for the KPIs, our copy of ratings' scores, and the certificates for reminders."""

from __future__ import annotations

import functools
import json
from datetime import date
from typing import Any

from sqlalchemy import JSON, Boolean, Text, and_, bindparam, case, cast, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.domain.kpis import ApplicationFacts, Totals
from services.efficacy.store.tables import application_fact, catalog_item, certificate, rating
from shared.db import dialect_of


async def load_facts(session: AsyncSession, application_id: str) -> ApplicationFacts:
    row = (await session.execute(
        select(application_fact.c.body).where(application_fact.c.application_id == application_id))).first()
    return ApplicationFacts(**row.body) if row else ApplicationFacts(application_id)


_FACT_COLUMNS = ("body", "anchor_on", "department", "item_code", "service_point", "online",
                 "delivered_electronically", "visits", "corrections", "on_time", "used_workdays", "promised_days")


@functools.cache
def _save_statement(dialect: str) -> Any:
    """`save_facts`' upsert, built once per dialect (it runs for most batches of case events)."""
    af = application_fact
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(af).values(
        {k: bindparam(f"b_{k}", type_=af.c[k].type) for k in ("application_id", *_FACT_COLUMNS)})
    return ins.on_conflict_do_update(index_elements=[af.c.application_id],
                                     set_={k: ins.excluded[k] for k in _FACT_COLUMNS})


def _values(f: ApplicationFacts) -> dict[str, Any]:
    return dict(application_id=f.application_id, body=f.to_json(), anchor_on=f.anchor_on, department=f.department,
                item_code=f.item_code, service_point=f.service_point, online=f.online,
                delivered_electronically=f.delivered_electronically, visits=f.visits, corrections=f.corrections,
                on_time=f.on_time, used_workdays=f.used_workdays, promised_days=f.promised_days)


async def save_facts(session: AsyncSession, f: ApplicationFacts) -> None:
    await session.execute(_save_statement(dialect_of(session)), {f"b_{k}": v for k, v in _values(f).items()})


@functools.cache
def _saving_cte() -> Any:
    """`save_facts` of many rows as a CTE (PostgreSQL) for the clock upsert to carry, the rows handed over as one
    array per column (`b_fact_<column>`), so the carrying statement keeps one text whatever the number of rows
    (none included: it then writes nothing). Rows locked in application order, as a batch locks its cases."""
    af = application_fact
    rows = func.unnest(*(bindparam(f"b_fact_{k}", type_=postgresql.ARRAY(Text if k == "body" else af.c[k].type))
                         for k in ("application_id", *_FACT_COLUMNS))).table_valued(
        "application_id", *_FACT_COLUMNS).render_derived(name="fact_rows")
    ins = postgresql.insert(af).from_select(
        ["application_id", *_FACT_COLUMNS],
        select(rows.c.application_id, *(cast(rows.c[k], JSON) if k == "body" else rows.c[k] for k in _FACT_COLUMNS))
        .order_by(rows.c.application_id))
    return ins.on_conflict_do_update(index_elements=[af.c.application_id],
                                     set_={k: ins.excluded[k] for k in _FACT_COLUMNS}
                                     ).returning(af.c.application_id).cte("saved_facts")


def saving(session: AsyncSession, rows: list[ApplicationFacts]) -> tuple[list[Any], dict[str, Any]] | None:
    """On PostgreSQL, `save_facts` of each of `rows` (of distinct applications) as a CTE for another statement to
    carry (`add_cte`) and its parameters (writing nothing for none); None elsewhere."""
    if dialect_of(session) != "postgresql":
        return None
    values = [_values(f) for f in rows]
    return [_saving_cte()], {f"b_fact_{k}": [json.dumps(v[k]) if k == "body" else v[k] for v in values]
                             for k in ("application_id", *_FACT_COLUMNS)}


def _period(start: date, end: date, department: str | None, item: str | None, service_point: str | None) -> Any:
    af = application_fact
    cond = [af.c.anchor_on >= start, af.c.anchor_on <= end]
    if department:
        cond.append(af.c.department == department)
    if item:
        cond.append(af.c.item_code == item)
    if service_point:
        cond.append(af.c.service_point == service_point)
    return and_(*cond)


async def totals_in(session: AsyncSession, *, start: date, end: date, department: str | None, item: str | None,
                    service_point: str | None) -> Totals:
    """The KPI sums over the kept rows, in one aggregate query (plus one for ratings and one for items)."""
    af = application_fact
    where = _period(start, end, department, item, service_point)
    online = af.c.online.is_(True)
    decided = af.c.on_time.is_not(None)

    def count_if(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)
    row = (await session.execute(select(
        func.count().label("applications"), count_if(online).label("online"),
        count_if(online & af.c.delivered_electronically.is_(True)).label("completed_online"),
        count_if(online & (af.c.visits <= 1)).label("le1"), count_if(online & (af.c.visits == 0)).label("zero"),
        count_if(decided).label("decided"), count_if(af.c.on_time.is_(True)).label("on_time"),
        func.coalesce(func.sum(case((decided, func.coalesce(af.c.used_workdays, 0)), else_=0)), 0).label("used"),
        func.coalesce(func.sum(case((decided, func.coalesce(af.c.promised_days, 0)), else_=0)), 0).label("promised"),
        func.coalesce(func.sum(af.c.corrections), 0).label("corrections"),
    ).where(where))).one()
    ratings = (await session.execute(
        select(func.count(rating.c.score), func.coalesce(func.sum(rating.c.score), 0))
        .select_from(rating.join(af, af.c.application_id == rating.c.application_id)).where(where))).one()
    items_q = select(func.count(), count_if(catalog_item.c.fully_online.is_(True))).where(
        catalog_item.c.withdrawn.is_(False))
    if department:
        items_q = items_q.where(catalog_item.c.department == department)
    if item:
        items_q = items_q.where(catalog_item.c.code == item)
    items = (await session.execute(items_q)).one()
    return Totals(applications=row.applications, online=int(row.online), completed_online=int(row.completed_online),
                  online_at_most_one_visit=int(row.le1), online_zero_visits=int(row.zero), decided=int(row.decided),
                  on_time=int(row.on_time), used_workdays=int(row.used), promised_workdays=int(row.promised),
                  corrections=int(row.corrections), items=int(items[0]), items_fully_online=int(items[1]),
                  ratings=int(ratings[0]), rating_points=int(ratings[1]))


async def rating_scores(session: AsyncSession, application_ids: set[str]) -> list[int]:
    rows = (await session.execute(select(rating.c.application_id, rating.c.score))).all()
    return [r.score for r in rows if r.application_id in application_ids]


_CERTIFICATE_SET = ("type_code", "type_name", "holder_id", "valid_until")


@functools.cache
def _certificate_upsert(dialect: str) -> Any:
    """`upsert_certificate`, built once per dialect: `revoked` is written only by a new row, so a revocation seen
    first (events of two subjects are not ordered) stays."""
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(certificate).values(
        {**{k: bindparam(f"b_{k}", type_=certificate.c[k].type) for k in ("certificate_number", *_CERTIFICATE_SET)},
         "revoked": False})
    return ins.on_conflict_do_update(index_elements=[certificate.c.certificate_number],
                                     set_={k: ins.excluded[k] for k in _CERTIFICATE_SET})


@functools.cache
def _certificates_cte() -> Any:
    """`upsert_certificate` of many certificates (of distinct numbers) as a CTE (PostgreSQL) for the clock upsert
    to carry, the rows handed over as one array per column (`b_cert_<column>`)."""
    columns = ("certificate_number", *_CERTIFICATE_SET)
    rows = func.unnest(*(bindparam(f"b_cert_{k}", type_=postgresql.ARRAY(certificate.c[k].type)) for k in columns)
                       ).table_valued(*columns).render_derived(name="certificate_rows")
    ins = postgresql.insert(certificate).from_select(
        [*columns, "revoked"], select(*(rows.c[k] for k in columns), literal(False, Boolean))
        .order_by(rows.c.certificate_number))
    return ins.on_conflict_do_update(index_elements=[certificate.c.certificate_number],
                                     set_={k: ins.excluded[k] for k in _CERTIFICATE_SET}
                                     ).returning(certificate.c.certificate_number).cte("kept_certificates")


def keeping_certificates(session: AsyncSession, rows: list[dict[str, Any]]
                         ) -> tuple[list[Any], dict[str, Any]] | None:
    """On PostgreSQL, `upsert_certificate` of each of `rows` (`upsert_certificate`'s keywords, distinct numbers)
    as a CTE for another statement to carry (`add_cte`) and its parameters; None elsewhere."""
    if dialect_of(session) != "postgresql":
        return None
    return [_certificates_cte()], {f"b_cert_{k}": [r[k] for r in rows] for k in ("certificate_number",
                                                                                 *_CERTIFICATE_SET)}


async def upsert_certificate(session: AsyncSession, **values: Any) -> None:
    """Keep a certificate's validity (one statement; a revocation seen first stays)."""
    await session.execute(_certificate_upsert(dialect_of(session)), {f"b_{k}": v for k, v in values.items()})


async def revoke_certificate(session: AsyncSession, number: str) -> None:
    res = await session.execute(
        certificate.update().where(certificate.c.certificate_number == number).values(revoked=True))
    if not res.rowcount:
        await session.execute(certificate.insert().values(certificate_number=number, type_code="", holder_id="",
                                                          revoked=True))


async def expiring(session: AsyncSession, holder_ids: set[str], until: date) -> list[Any]:
    return list((await session.execute(select(certificate).where(
        certificate.c.holder_id.in_(holder_ids), certificate.c.revoked.is_(False),
        certificate.c.valid_until.is_not(None), certificate.c.valid_until <= until,
    ).order_by(certificate.c.valid_until))).all())
