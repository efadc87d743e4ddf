"""The archive of accepted and decided applications (for reuse and open data)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.store.tables import ArchivedApplication
from shared.db import dialect_of


async def get(session: AsyncSession, application_id: str) -> ArchivedApplication | None:
    return await session.get(ArchivedApplication, application_id)


@functools.cache
def _accepted_upsert(dialect: str, keys: tuple[str, ...]) -> Any:
    """`record_accepted`'s statement for these columns, built once (with bind parameters only, so that SQLAlchemy
    finds it compiled rather than keying a new statement's literal values on every event)."""
    t = ArchivedApplication.__table__
    ins = (postgresql.insert(t) if dialect == "postgresql" else sqlite.insert(t)).values(
        {k: bindparam(f"a_{k}", type_=t.c[k].type) for k in ("application_id", *keys)})
    return ins.on_conflict_do_update(index_elements=[t.c.application_id], set_={k: ins.excluded[k] for k in keys})


async def record_accepted(session: AsyncSession, application_id: str, **values: Any) -> None:
    """One statement: a decision may have arrived first, so its row takes the accepted values and keeps its own
    (decided_at, outcome, certificate_number)."""
    await session.execute(_accepted_upsert(dialect_of(session), tuple(values)),
                          {"a_application_id": application_id, **{f"a_{k}": v for k, v in values.items()}})


#: What a decision says of its application: the values it always sets, then those it sets only when it carries
#: them (a decision without them keeps what the acceptance archived).
_DECISION_SETS = ("item_code", "decided_at", "outcome")
_DECISION_KEEPS_UNLESS_GIVEN = ("receipt_number", "holder_id", "item_version", "department")


def decision_upsert(dialect: str, certificate_number: Any = None) -> Any:
    """The decision's archive write, as one `INSERT … ON CONFLICT DO UPDATE` (parameters `a_<column>`): a row
    the acceptance did not write yet starts with an empty form, which the acceptance fills in later
    (`record_accepted`). `certificate_number`: the expression of the certificate's number (by default the
    parameter `a_certificate_number`); a null one keeps the number the row has."""
    t = ArchivedApplication.__table__
    values: dict[str, Any] = {
        k: bindparam(f"a_{k}", type_=t.c[k].type) for k in ("application_id", *_DECISION_SETS,
                                                             *_DECISION_KEEPS_UNLESS_GIVEN)}
    values.update(applicant=bindparam("a_applicant", type_=t.c.applicant.type),
                  form=bindparam("a_form", type_=t.c.form.type), materials=bindparam("a_materials", type_=t.c.materials.type),
                  certificate_number=certificate_number if certificate_number is not None
                  else bindparam("a_certificate_number", type_=t.c.certificate_number.type))
    ins = (postgresql.insert(t) if dialect == "postgresql" else sqlite.insert(t)).values(values)
    return ins.on_conflict_do_update(index_elements=[t.c.application_id], set_={
        **{k: ins.excluded[k] for k in _DECISION_SETS},
        **{k: func.coalesce(ins.excluded[k], t.c[k]) for k in (*_DECISION_KEEPS_UNLESS_GIVEN, "certificate_number")},
    })


@functools.cache
def _decision_upsert(dialect: str) -> Any:
    return decision_upsert(dialect)


def decision_params(application_id: str, *, receipt_number: str | None, holder_id: str | None, item_code: str,
                    item_version: int | None, department: str | None, decided_at: datetime, outcome: str,
                    certificate_number: str | None = None) -> dict[str, Any]:
    return {"a_application_id": application_id, "a_receipt_number": receipt_number, "a_holder_id": holder_id,
            "a_item_code": item_code, "a_item_version": item_version, "a_department": department,
            "a_decided_at": decided_at, "a_outcome": outcome, "a_applicant": {}, "a_form": {}, "a_materials": [],
            "a_certificate_number": certificate_number}


async def record_decision(session: AsyncSession, params: dict[str, Any]) -> None:
    """Archive a decision (`decision_params`) in one statement, whatever the row held: no read before it."""
    await session.execute(_decision_upsert(dialect_of(session)), params)


async def set_certificate_number(session: AsyncSession, application_id: str, number: str) -> None:
    t = ArchivedApplication.__table__
    await session.execute(t.update().where(t.c.application_id == application_id).values(certificate_number=number))


def holder_query(holder_ids: set[str]):  # type: ignore[no-untyped-def]
    return select(ArchivedApplication).where(ArchivedApplication.holder_id.in_(holder_ids))


async def all_rows(session: AsyncSession) -> list[ArchivedApplication]:
    return list((await session.execute(select(ArchivedApplication))).scalars())
