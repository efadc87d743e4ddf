"""The catalogue's use cases: check with the domain, persist with the store, announce through the outbox.

Routes and the demo loader both call these, so a demo item goes through exactly the path an editor's does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.domain import lifecycle
from services.catalog.domain.model import KIND_NAMES, ItemContent
from services.catalog.domain.rules import check_item, offered_points
from services.catalog.domain.search import index_terms
from services.catalog.events.contracts import (
    DEPARTMENT_UPSERTED,
    ITEM_PUBLISHED,
    ITEM_WITHDRAWN,
    SERVICE_POINT_UPSERTED,
    DepartmentUpserted,
    ItemPublished,
    ItemWithdrawn,
    PointRef,
    ServicePointUpserted,
)
from services.catalog.store import repo
from services.catalog.store.tables import Department, Item, ItemChange, ItemVersion, ServicePoint
from shared.auth import ADMIN, CATALOG_EDITOR, Principal
from shared.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    ValidationProblem,
)
from shared.messaging import publish
from shared.types import utcnow


def actor_of(principal: Principal) -> str:
    return f"{principal.kind}:{principal.subject}"


def ensure_may_edit(principal: Principal, department: str) -> None:
    """Admins edit every item; a catalogue editor only the items of the department in their token."""
    if principal.has(ADMIN):
        return
    if principal.has(CATALOG_EDITOR) and principal.department == department:
        return
    if principal.has(CATALOG_EDITOR):
        raise Forbidden(f"目录编辑只能维护本部门 ({principal.department}) 的事项，不能维护 {department} 的事项。",
                        slug="other-department")
    raise Forbidden("This needs the role admin or catalog_editor.")


async def _check(session: AsyncSession, content: ItemContent, prefix: str = "body.") -> None:
    errors = check_item(content, await repo.reference(session))
    if errors:
        raise ValidationProblem([FieldError(field=prefix + e.field, rule=e.rule, message=e.message) for e in errors])


def _log(session: AsyncSession, code: str, version: int, action: str, actor: str,
         fields: list[str] | None = None, note: str | None = None) -> None:
    session.add(ItemChange(item_code=code, version=version, action=action, actor=actor, at=utcnow(),
                           fields=fields or [], note=note))


async def item_or_404(session: AsyncSession, code: str, *, for_update: bool = False) -> Item:
    item = await repo.get_item(session, code, for_update=for_update)
    if item is None:
        raise NotFound(f"事项 {code} 不存在。", slug="item-not-found")
    return item


async def create_item(session: AsyncSession, *, code: str, content: ItemContent, actor: str) -> ItemVersion:
    if await repo.get_item(session, code) is not None:
        raise Conflict(f"事项编码 {code} 已存在；请为它起草新版本。", slug="item-exists")
    await _check(session, content)
    now = utcnow()
    session.add(Item(code=code, department=content.department, name=content.name, published_version=None,
                     latest_version=1, created_at=now, updated_at=now))
    version = ItemVersion(item_code=code, version=1, status="draft", content=content.model_dump(mode="json"),
                          revision=1, created_at=now, created_by=actor, updated_at=now, updated_by=actor)
    session.add(version)
    _log(session, code, 1, "create", actor, lifecycle.changed_fields(None, version.content))
    await session.flush()
    return version


async def open_version(session: AsyncSession, item: Item) -> ItemVersion:
    """The version being prepared (draft or in review)."""
    v = await repo.get_version(session, item.code, item.latest_version)
    if v is None or v.status not in lifecycle.OPEN:
        raise NotFound(f"事项 {item.code} 没有草稿；请先创建新版本。", slug="no-draft")
    return v


def check_etag(version: ItemVersion, if_match: str | None) -> None:
    current = lifecycle.etag(version.item_code, version.version, version.revision)
    if not if_match:
        raise PreconditionRequired("修改草稿需要 If-Match 请求头（取自上次读取时的 ETag）。")
    candidates = {c.strip().removeprefix("W/") for c in if_match.split(",")}
    if "*" not in candidates and current not in candidates:
        raise PreconditionFailed("草稿已被他人修改；请重新读取后再提交。", current_etag=current)


async def update_draft(
    session: AsyncSession, *, code: str, content: ItemContent, principal: Principal, if_match: str | None
) -> ItemVersion:
    item = await item_or_404(session, code, for_update=True)
    ensure_may_edit(principal, item.department)
    if content.department != item.department:
        ensure_may_edit(principal, content.department)
    version = await open_version(session, item)
    check_etag(version, if_match)
    if version.status not in lifecycle.EDITABLE:
        raise Conflict(f"第 {version.version} 版处于 {version.status} 状态，不能修改；请先退回草稿。",
                       slug="not-editable")
    await _check(session, content)
    new = content.model_dump(mode="json")
    fields = lifecycle.changed_fields(version.content, new)
    actor = actor_of(principal)
    version.content, version.revision = new, version.revision + 1
    version.updated_at, version.updated_by = utcnow(), actor
    item.department, item.name, item.updated_at = content.department, content.name, utcnow()
    _log(session, code, version.version, "update", actor, fields)
    await session.flush()
    return version


async def new_version(session: AsyncSession, *, code: str, principal: Principal) -> ItemVersion:
    item = await item_or_404(session, code, for_update=True)
    ensure_may_edit(principal, item.department)
    latest = await repo.get_version(session, code, item.latest_version)
    if latest is not None and latest.status in lifecycle.OPEN:
        raise Conflict(f"第 {latest.version} 版尚未发布，请在该草稿上修改。", slug="draft-exists")
    assert latest is not None
    now, actor = utcnow(), actor_of(principal)
    version = ItemVersion(item_code=code, version=item.latest_version + 1, status="draft",
                          content=dict(latest.content), revision=1, created_at=now, created_by=actor,
                          updated_at=now, updated_by=actor)
    item.latest_version, item.updated_at = version.version, now
    session.add(version)
    _log(session, code, version.version, "new_version", actor, note=f"based on version {latest.version}")
    await session.flush()
    return version


async def submit(session: AsyncSession, *, code: str, principal: Principal, if_match: str | None) -> ItemVersion:
    item = await item_or_404(session, code, for_update=True)
    ensure_may_edit(principal, item.department)
    version = await open_version(session, item)
    if if_match:
        check_etag(version, if_match)
    _move(version, "submit")
    await _check(session, ItemContent.model_validate(version.content), prefix="")
    version.revision += 1
    _log(session, code, version.version, "submit", actor_of(principal))
    await session.flush()
    return version


async def return_to_draft(session: AsyncSession, *, code: str, principal: Principal, note: str | None) -> ItemVersion:
    item = await item_or_404(session, code, for_update=True)
    ensure_may_edit(principal, item.department)
    version = await open_version(session, item)
    _move(version, "return")
    version.revision += 1
    _log(session, code, version.version, "return", actor_of(principal), note=note)
    await session.flush()
    return version


async def publish_item(session: AsyncSession, *, code: str, principal: Principal) -> ItemVersion:
    item = await item_or_404(session, code, for_update=True)
    ensure_may_edit(principal, item.department)
    version = await open_version(session, item)
    content = ItemContent.model_validate(version.content)
    # Reference data may have changed since the draft was saved: check again at the moment of publication.
    await _check(session, content, prefix="")
    _move(version, "publish")
    now, actor = utcnow(), actor_of(principal)
    if item.published_version is not None:
        previous = await repo.get_version(session, code, item.published_version)
        if previous is not None:
            _move(previous, "supersede")
            previous.ended_at = now
            _log(session, code, previous.version, "supersede", actor, note=f"superseded by {version.version}")
    version.published_at, version.published_by, version.revision = now, actor, version.revision + 1
    item.published_version, item.name, item.department, item.updated_at = (
        version.version, content.name, content.department, now)
    names = await repo.department_names(session)
    payload = published_payload(version, await repo.service_points(session))
    await repo.replace_index(session, code, content, index_terms(content, names.get(content.department)),
                             points=[p.code for p in payload.offered_at])
    _log(session, code, version.version, "publish", actor)
    await publish(session, ITEM_PUBLISHED, subject=code, data=payload)
    await session.flush()
    return version


async def withdraw_item(session: AsyncSession, *, code: str, principal: Principal, note: str | None) -> ItemVersion:
    item = await item_or_404(session, code, for_update=True)
    ensure_may_edit(principal, item.department)
    if item.published_version is None:
        raise Conflict(f"事项 {code} 没有已发布的版本。", slug="not-published")
    version = await repo.get_version(session, code, item.published_version)
    assert version is not None
    _move(version, "withdraw")
    now = utcnow()
    version.ended_at = now
    item.published_version, item.updated_at = None, now
    await repo.replace_index(session, code, None, {})
    _log(session, code, version.version, "withdraw", actor_of(principal), note=note)
    await publish(session, ITEM_WITHDRAWN, subject=code,
                  data=ItemWithdrawn(code=code, version=version.version, withdrawn_at=now))
    await session.flush()
    return version


def _move(version: ItemVersion, action: str) -> None:
    try:
        version.status = lifecycle.next_status(version.status, action)
    except lifecycle.IllegalTransition as exc:
        raise Conflict(f"第 {version.version} 版处于 {version.status} 状态，不能执行 {action}。",
                       slug="illegal-transition") from exc


def published_payload(version: ItemVersion, points: Sequence[ServicePoint]) -> ItemPublished:
    """The published version with its points resolved through today's tree, so intake needs no copy of it."""
    content = ItemContent.model_validate(version.content)
    data: dict[str, Any] = content.model_dump()
    assert version.published_at is not None
    tree = [(p.code, p.parent_code) for p in points]
    by_code = {p.code: p for p in points}
    offered = offered_points(content.service_points, content.excluded_points, tree)
    collect = offered if content.collection_points is None else offered_points(
        content.collection_points, content.excluded_points, tree)

    def refs(codes: list[str]) -> list[PointRef]:
        return [PointRef(code=c, name=by_code[c].name, level=by_code[c].level) for c in codes]

    return ItemPublished(code=version.item_code, version=version.version, kind_name=KIND_NAMES[content.kind],
                         published_at=version.published_at, offered_at=refs(offered), collect_at=refs(collect),
                         **data)


async def upsert_service_point(session: AsyncSession, code: str, values: dict[str, Any]) -> ServicePoint:
    """Create or update a service point and tell the platform its name (timelines show units by name)."""
    row = await repo.upsert(session, ServicePoint, {"code": code}, {**values, "updated_at": utcnow()})
    await publish(session, SERVICE_POINT_UPSERTED, subject=row.code, data=ServicePointUpserted(
        code=row.code, name=row.name, level=row.level, parent_code=row.parent_code))
    return row


async def upsert_department(session: AsyncSession, **values: Any) -> Department:
    dept = await repo.get_department(session, values["code"])
    if dept is None:
        dept = Department(**values, updated_at=utcnow())
        session.add(dept)
    else:
        for k, v in values.items():
            setattr(dept, k, v)
        dept.updated_at = utcnow()
    await publish(session, DEPARTMENT_UPSERTED, subject=dept.code,
                  data=DepartmentUpserted(code=dept.code, name=dept.name, credit_code=dept.credit_code,
                                          phone=dept.phone, kind=dept.kind or "government_department"))
    await session.flush()
    return dept
