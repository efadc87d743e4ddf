"""Tables of the catalog service (its database alone; no other service reads them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import make_metadata
from shared.messaging import define_messaging_tables
from shared.types import BigIntPK, UTCDateTime


class Base(DeclarativeBase):
    metadata = make_metadata()


messaging = define_messaging_tables(Base.metadata)


class CertificateType(Base):
    """A type of datashare's certificate directory (电子证照目录), as announced: what an item's certificate field
    mapping must cover."""

    __tablename__ = "certificate_type"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    fields: Mapped[list[str]] = mapped_column(JSON)
    required: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Department(Base):
    """A department of the city (部门)."""

    __tablename__ = "department"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str | None] = mapped_column(String(18))
    address: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(50))
    office_hours: Mapped[str | None] = mapped_column(String(300))
    #: The kind of provider (task 17): government_department | service_enterprise | intermediary.
    kind: Mapped[str] = mapped_column(String(32), default="government_department",
                                      server_default="government_department")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ServicePoint(Base):
    """A point of the three-level service tree: city centre, town/street (镇街), village/community (村居)."""

    __tablename__ = "service_point"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("service_point.code"), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(50))
    opening_hours: Mapped[str | None] = mapped_column(String(300))
    transit: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Item(Base):
    """The head of an item: which version is published now and which is being prepared."""

    __tablename__ = "item"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    department: Mapped[str] = mapped_column(ForeignKey("department.code"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    published_version: Mapped[int | None] = mapped_column(Integer)
    latest_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ItemVersion(Base):
    """One version of an item; its `content` is frozen once published."""

    __tablename__ = "item_version"
    __table_args__ = (UniqueConstraint("item_code", "version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    item_code: Mapped[str] = mapped_column(ForeignKey("item.code"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Bumped on every change of a draft; part of the ETag.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by: Mapped[str | None] = mapped_column(String(100))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ItemChange(Base):
    """The change log: who did what to which version, when, and which fields changed."""

    __tablename__ = "item_change"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    item_code: Mapped[str] = mapped_column(ForeignKey("item.code"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    fields: Mapped[list[str]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)


class ItemFacet(Base):
    """Filter values of the published version of an item (audience, theme, channel, service point …)."""

    __tablename__ = "item_facet"
    __table_args__ = (Index("ix_item_facet_facet_value", "facet", "value"),)

    item_code: Mapped[str] = mapped_column(ForeignKey("item.code"), primary_key=True)
    facet: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[str] = mapped_column(String(100), primary_key=True)


class ItemToken(Base):
    """The search index: one row per (token, item, field) of the published version, looked up by equality."""

    __tablename__ = "item_token"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_code: Mapped[str] = mapped_column(ForeignKey("item.code"), primary_key=True, index=True)
    field: Mapped[str] = mapped_column(String(16), primary_key=True)
    weight: Mapped[int] = mapped_column(Integer)


class LifeEvent(Base):
    """A life event (主题事件) that groups items a person needs together, e.g. 开办餐饮店."""

    __tablename__ = "life_event"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    audience: Mapped[list[str]] = mapped_column(JSON)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class IntermediaryService(Base):
    """An entry of the intermediary-service list (中介服务清单); items may only require listed ones."""

    __tablename__ = "intermediary_service"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(ForeignKey("department.code"))
    legal_basis: Mapped[str] = mapped_column(Text)
    providers: Mapped[str | None] = mapped_column(Text)
    fee_basis: Mapped[str | None] = mapped_column(Text)
    time_limit: Mapped[str | None] = mapped_column(String(200))


class NegativeListEntry(Base):
    """An entry of the market-access negative list (市场准入负面清单)."""

    __tablename__ = "negative_list_entry"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    category: Mapped[str] = mapped_column(String(16))  # prohibited | permitted
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    requirements: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    keywords: Mapped[list[str]] = mapped_column(JSON)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SearchMiss(Base):
    """Searches that found nothing (卡点分析), per day and wording: the segmented words only, digits and Latin
    letters dropped, so an ID or phone number typed into the box is never kept."""

    __tablename__ = "search_miss"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    terms: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProjectType(Base):
    """A project type (企业投资项目 / 工程建设项目) with its ordered stages, each a set of items of several providers with
    each provider's own limit (明确部门办理时限) within the stage's total."""

    __tablename__ = "project_type"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))
