"""Queries of the catalog: the only place that talks SQL. Functions flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, case, delete, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.domain.model import ItemContent
from services.catalog.domain.rules import CertificateFields, Reference
from services.catalog.domain.search import ItemFilters
from services.catalog.store.tables import (
    CertificateType,
    Department,
    IntermediaryService,
    Item,
    ItemChange,
    ItemFacet,
    ItemToken,
    ItemVersion,
    LifeEvent,
    NegativeListEntry,
    SearchMiss,
    ServicePoint,
)
from shared.pagination import PageParams, paginate
from shared.types import utcnow


async def upsert_certificate_type(session: AsyncSession, *, code: str, name: str, fields: list[str],
                                  required: list[str]) -> None:
    await upsert(session, CertificateType, {"code": code},
                 {"name": name, "fields": fields, "required": required, "updated_at": utcnow()})


async def reference(session: AsyncSession) -> Reference:
    types = (await session.execute(select(CertificateType))).scalars()
    certificate_types = {t.code: CertificateFields(frozenset(t.fields), frozenset(t.required)) for t in types}
    depts = (await session.execute(select(Department.code))).scalars()
    points = (await session.execute(select(ServicePoint.code))).scalars()
    events = (await session.execute(select(LifeEvent.name))).scalars()
    inter = (await session.execute(select(IntermediaryService.code, IntermediaryService.legal_basis))).all()
    return Reference(
        departments=frozenset(depts),
        service_points=frozenset(points),
        life_events=frozenset(events),
        intermediaries={c: b for c, b in inter},
        certificate_types=certificate_types,
    )


async def is_empty(session: AsyncSession) -> bool:
    return (await session.execute(select(func.count()).select_from(Department))).scalar_one() == 0


# --- reference data -------------------------------------------------------------------------------------


async def departments(session: AsyncSession) -> Sequence[Department]:
    return (await session.execute(select(Department).order_by(Department.code))).scalars().all()


async def department_names(session: AsyncSession) -> dict[str, str]:
    return {c: n for c, n in (await session.execute(select(Department.code, Department.name))).all()}


async def get_department(session: AsyncSession, code: str) -> Department | None:
    return await session.get(Department, code)


async def service_points(
    session: AsyncSession, *, level: str | None = None, parent: str | None = None
) -> Sequence[ServicePoint]:
    stmt = select(ServicePoint).order_by(ServicePoint.code)
    if level:
        stmt = stmt.where(ServicePoint.level == level)
    if parent:
        stmt = stmt.where(ServicePoint.parent_code == parent)
    return (await session.execute(stmt)).scalars().all()


async def get_service_point(session: AsyncSession, code: str) -> ServicePoint | None:
    return await session.get(ServicePoint, code)


async def life_events(session: AsyncSession) -> Sequence[LifeEvent]:
    return (await session.execute(select(LifeEvent).order_by(LifeEvent.sort_order, LifeEvent.name))).scalars().all()


async def intermediary_services(session: AsyncSession) -> Sequence[IntermediaryService]:
    return (await session.execute(select(IntermediaryService).order_by(IntermediaryService.code))).scalars().all()


async def negative_list(session: AsyncSession) -> Sequence[NegativeListEntry]:
    stmt = select(NegativeListEntry).where(NegativeListEntry.active.is_(True)).order_by(NegativeListEntry.code)
    return (await session.execute(stmt)).scalars().all()


def add(session: AsyncSession, *rows: Any) -> None:
    session.add_all(rows)


# --- items ----------------------------------------------------------------------------------------------


async def get_item(session: AsyncSession, code: str, *, for_update: bool = False) -> Item | None:
    stmt = select(Item).where(Item.code == code)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_version(session: AsyncSession, code: str, version: int) -> ItemVersion | None:
    stmt = select(ItemVersion).where(ItemVersion.item_code == code, ItemVersion.version == version)
    return (await session.execute(stmt)).scalar_one_or_none()


async def versions(session: AsyncSession, code: str) -> Sequence[ItemVersion]:
    stmt = select(ItemVersion).where(ItemVersion.item_code == code).order_by(ItemVersion.version)
    return (await session.execute(stmt)).scalars().all()


async def changes(session: AsyncSession, code: str) -> Sequence[ItemChange]:
    stmt = select(ItemChange).where(ItemChange.item_code == code).order_by(ItemChange.id)
    return (await session.execute(stmt)).scalars().all()


def _filtered(stmt: Select[Any], f: ItemFilters) -> Select[Any]:
    def has(facet: str, *values: str) -> Any:
        return exists().where(
            ItemFacet.item_code == Item.code, ItemFacet.facet == facet, ItemFacet.value.in_(values)
        )

    if f.audience:
        stmt = stmt.where(has("audience", f.audience))
    if f.theme:
        stmt = stmt.where(has("theme", f.theme))
    if f.department:
        stmt = stmt.where(Item.department == f.department)
    if f.service_point:
        stmt = stmt.where(has("service_point", f.service_point, "*"))
    if f.channel:
        stmt = stmt.where(has("channel", f.channel))
    if f.life_event:
        stmt = stmt.where(has("life_event", f.life_event))
    if f.kind:
        stmt = stmt.where(has("kind", f.kind))
    if f.zero_visit is not None:
        zero = has("zero_visit", "true")
        stmt = stmt.where(zero if f.zero_visit else ~zero)
    return stmt


def published_versions(f: ItemFilters) -> Select[Any]:
    """The current published version of every item matching the filters (for `paginate`)."""
    stmt = select(ItemVersion).join(
        Item, and_(Item.code == ItemVersion.item_code, Item.published_version == ItemVersion.version)
    )
    return _filtered(stmt, f)


async def page_of_published(session: AsyncSession, f: ItemFilters,
                            page: PageParams) -> tuple[list[ItemVersion], str | None]:
    """One cursor page of the current published versions matching the filters, by item code."""
    return await paginate(session, published_versions(f), key_columns=[ItemVersion.item_code], params=page,
                          key_of=lambda v: [v.item_code])


async def all_published(session: AsyncSession) -> Sequence[ItemVersion]:
    stmt = published_versions(ItemFilters()).order_by(ItemVersion.item_code)
    return (await session.execute(stmt)).scalars().all()


async def codes_at_point(session: AsyncSession, point: str) -> list[str]:
    stmt = (
        select(Item.code)
        .where(Item.published_version.is_not(None))
        .where(exists().where(ItemFacet.item_code == Item.code, ItemFacet.facet == "service_point",
                              ItemFacet.value.in_([point, "*"])))
        .order_by(Item.code)
    )
    return list((await session.execute(stmt)).scalars())


async def replace_index(
    session: AsyncSession, code: str, content: ItemContent | None, terms: dict[tuple[str, str], int],
    points: list[str] | None = None,
) -> None:
    """Point the filters and the search index at the given published content (or drop them). `points`: where
    it is offered, resolved through the tree (a town's villages included)."""
    await session.execute(delete(ItemFacet).where(ItemFacet.item_code == code))
    await session.execute(delete(ItemToken).where(ItemToken.item_code == code))
    if content is None:
        return
    facets: set[tuple[str, str]] = {("kind", content.kind), ("case_kind", content.case_kind)}
    facets |= {("audience", a) for a in content.audience}
    facets |= {("theme", t) for t in content.themes}
    facets |= {("channel", c) for c in content.channels}
    wildcard = content.service_points == ["*"] and not content.excluded_points
    facets |= {("service_point", p) for p in (content.service_points if wildcard or points is None else points)}
    facets |= {("life_event", e) for e in content.life_events}
    if content.visits_required == 0:
        facets.add(("zero_visit", "true"))
    session.add_all(ItemFacet(item_code=code, facet=k, value=v) for k, v in sorted(facets))
    session.add_all(ItemToken(token=t, item_code=code, field=f, weight=w) for (t, f), w in terms.items())
    await session.flush()


async def search(
    session: AsyncSession, boosts: dict[str, int], f: ItemFilters, *, offset: int, limit: int
) -> list[tuple[ItemVersion, int, list[str]]]:
    """Rank published items by the summed field weight × query boost of the tokens they hold (equality on the
    token key, so the primary-key index answers it)."""
    terms = list(boosts)
    if not terms:
        return []
    strong = [t for t, b in boosts.items() if b > 1]
    boost = case((ItemToken.token.in_(strong), 2), else_=1) if strong else literal(1)
    score = func.sum(ItemToken.weight * boost).label("score")
    hits = (
        select(ItemToken.item_code, score)
        .where(ItemToken.token.in_(terms))
        .group_by(ItemToken.item_code)
        .subquery()
    )
    # Rank on the small token/facet tables first; load the (large) version documents of one page only.
    ranked = (
        select(hits.c.item_code, hits.c.score)
        .join(Item, Item.code == hits.c.item_code)
        .where(Item.published_version.is_not(None))
    )
    ranked = _filtered(ranked, f).order_by(hits.c.score.desc(), hits.c.item_code).offset(offset).limit(limit)
    page = (await session.execute(ranked)).all()
    if not page:
        return []
    scores = {c: int(sc) for c, sc in page}
    docs = {
        v.item_code: v
        for v in (await session.execute(
            published_versions(ItemFilters()).where(ItemVersion.item_code.in_(list(scores)))
        )).scalars()
    }
    rows = [(docs[c], scores[c]) for c, _ in page if c in docs]
    codes = [r[0].item_code for r in rows]
    matched = (
        await session.execute(
            select(ItemToken.item_code, ItemToken.token)
            .where(ItemToken.token.in_(terms), ItemToken.item_code.in_(codes))
            .distinct()
        )
    ).all()
    by_code: dict[str, list[str]] = {}
    for c, t in matched:
        by_code.setdefault(c, []).append(t)
    return [(v, int(s), sorted(by_code.get(v.item_code, []))) for v, s in rows]


def negative_match(entries: Sequence[NegativeListEntry], words: list[str]) -> list[NegativeListEntry]:
    """Entries any of whose keywords contain or equal a query word (the list is small and held in memory)."""
    if not words:
        return list(entries)
    return [e for e in entries if any(w in k or k in w for w in words for k in e.keywords)]



async def upsert(session: AsyncSession, table: type[Any], key: dict[str, Any], values: dict[str, Any]) -> Any:
    """Insert or update one reference-data row by its primary key."""
    row = await session.get(table, tuple(key.values()) if len(key) > 1 else next(iter(key.values())))
    if row is None:
        row = table(**key, **values)
        session.add(row)
    else:
        for k, v in values.items():
            setattr(row, k, v)
    await session.flush()
    return row


async def record_search_miss(session: AsyncSession, *, day: date, terms: str, at: datetime) -> None:
    """Count one more search that found nothing (one row per day and wording, so the table stays small)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(SearchMiss).values(day=day, terms=terms, count=1, last_at=at)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[SearchMiss.day, SearchMiss.terms],
        set_={"count": SearchMiss.count + 1, "last_at": stmt.excluded.last_at}))


async def search_misses(session: AsyncSession, *, start: date, end: date, limit: int) -> list[Any]:
    """The wordings that found nothing most often in [start, end]."""
    q = (select(SearchMiss.terms, func.sum(SearchMiss.count).label("searches"),
                func.max(SearchMiss.day).label("last_on"))
         .where(SearchMiss.day >= start, SearchMiss.day <= end)
         .group_by(SearchMiss.terms).order_by(func.sum(SearchMiss.count).desc(), SearchMiss.terms).limit(limit))
    return list((await session.execute(q)).all())


async def certificate_type_names(session: AsyncSession, codes: list[str]) -> dict[str, str]:
    """The names datashare announced for these certificate types (types it has not announced are absent)."""
    if not codes:
        return {}
    rows = await session.execute(select(CertificateType.code, CertificateType.name).where(CertificateType.code.in_(codes)))
    return {c: n for c, n in rows.all()}


async def issuers(session: AsyncSession, certificate_types: list[str]) -> list[tuple[str, str, str]]:
    """(certificate type, item code, item name) of every published item whose result is a certificate of one of
    these types, by item code."""
    if not certificate_types:
        return []
    issued = ItemVersion.content[("result", "certificate_type")].as_string()
    stmt = (published_versions(ItemFilters())
            .where(issued.in_(certificate_types))
            .with_only_columns(issued, Item.code, Item.name)
            .order_by(Item.code))
    return [(t, c, n) for t, c, n in (await session.execute(stmt)).all()]


async def existing_item_codes(session: AsyncSession, codes: list[str]) -> frozenset[str]:
    if not codes:
        return frozenset()
    return frozenset((await session.execute(select(Item.code).where(Item.code.in_(codes)))).scalars())


async def department_codes(session: AsyncSession) -> frozenset[str]:
    return frozenset((await session.execute(select(Department.code))).scalars())
