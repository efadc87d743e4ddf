"""Use cases of the base registries (基础库): imports by the keeping department, purpose-bound look-ups by staff,
and the verdict-only matches of identity's registration (实名核验)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.domain import matching, purpose
from services.datashare.domain import registries as rules
from services.datashare.domain.identifiers import credit_code_problem, id_number_problem
from services.datashare.service.common import (
    Context,
    check_reasoned_lookup,
    grant_for_application,
    log_access,
    refuse,
)
from services.datashare.store import registries as store
from shared.errors import Forbidden, NotFound, Problem, invalid
from shared.principal import Principal

log = logging.getLogger("yimen.datashare")

PERSON_PURPOSE = "实名核验 registration"
ORGANISATION_PURPOSE = "实名核验 organisation registration"


def registry_name(path: str) -> str:
    """`legal-persons` in a path is the `legal_persons` registry."""
    return path.replace("-", "_")


@dataclass(frozen=True)
class ImportResult:
    registry: str
    parsed: rules.ParsedImport
    imported: int
    partial: bool

    @property
    def refused(self) -> bool:
        """Rows were rejected and the import was all or nothing: nothing was imported."""
        return bool(self.parsed.rejected) and not self.partial


def check_importer(principal: Principal, registry: str) -> None:
    keeper = rules.REGISTRY_KEEPERS[registry]
    if not purpose.acts_for_department(principal, keeper):
        raise Forbidden(f"Only {keeper} staff or an admin import into this registry.")


def _parse(registry: str, raw: bytes, content_type: str) -> rules.ParsedImport:
    return rules.parse_import(registry, rules.read_records(raw, content_type))


async def import_records(session: AsyncSession, principal: Principal, registry: str, *, raw: bytes,
                         content_type: str, partial: bool) -> ImportResult:
    """Check every row, then upsert the valid ones (all or nothing unless `partial`)."""
    check_importer(principal, registry)
    if "json" not in content_type and "csv" not in content_type:
        raise Problem("Send text/csv or application/json, or upload one as multipart/form-data.",
                      status=415, slug="unsupported-media-type", title="Unsupported media type")
    try:
        # Parsing and checking 100,000 rows takes seconds of CPU: off the event loop, so other requests and
        # the bus consumers keep being served meanwhile.
        parsed = await asyncio.to_thread(_parse, registry, raw, content_type)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("body", "format", f"Unreadable body: expected {exc}.") from exc
    if parsed.total == 0:
        # Nothing to import is a mistake worth naming (a wrong file, a header alone), not a 200 with zero rows.
        raise invalid("body", "empty", "The body holds no records: a CSV header with rows, or a non-empty array.")
    if parsed.rejected and not partial:
        return ImportResult(registry, parsed, 0, partial)

    def progress(done: int) -> None:
        log.info("registry import %s: %d/%d rows written", registry, done, len(parsed.rows))

    imported = await store.upsert_records(
        session, registry, parsed.rows, principal.department or principal.subject, on_progress=progress
    )
    return ImportResult(registry, parsed, imported, partial)


def _key(registry: str, raw: str, field: str) -> str:
    key = raw.upper()
    problem = id_number_problem(key) if registry == rules.POPULATION else credit_code_problem(key)
    if problem:
        raise invalid(field, *problem)
    return key


async def lookup(ctx: Context, session: AsyncSession, principal: Principal, registry: str, raw_key: str, *,
                 application_id: str | None, material_code: str | None,
                 reason: str | None) -> dict[str, Any] | Problem:
    """A record for a purpose (用途绑定), only the fields it needs; refusals and misses are logged and returned."""
    key = _key(registry, raw_key, "path.id_number" if registry == rules.POPULATION else "path.credit_code")
    target = f"registry:{'population' if registry == rules.POPULATION else 'legal-persons'}"
    if not purpose.is_reader(principal):
        raise Forbidden("Registry look-ups are for staff and department systems; a holder asks through "
                        "POST /requests for an application's material.")
    logged: dict[str, Any] = {"application_id": application_id, "material_code": material_code}
    try:
        if application_id:
            application = await ctx.intake.application(application_id)
            grant = await grant_for_application(
                session, principal, application, holder_id=key, registry=registry, material_code=material_code)
            logged.update(item_code=application.get("item_code"), purpose=f"{grant.basis}: "
                          + ", ".join(f"material {c}" for c in grant.material_codes))
        elif purpose.may_look_up_by_reason(principal):
            text = purpose.check_reason(reason)
            await check_reasoned_lookup(ctx, principal)
            grant = purpose.reason_grant()
            logged["purpose"] = text
        else:
            raise Forbidden("A registry record is read only for a live application in which your department holds "
                            "an open task (`application_id`); admins and supervisors may give a written `reason`.",
                            slug="purpose-not-established")
    except Forbidden as refusal:
        return await refuse(session, principal, refusal, action="registry_lookup", target=target,
                            holder_id=key, **{**logged, "purpose": logged.get("purpose") or reason})
    record = await store.lookup(session, registry, key)
    shown = purpose.release(record, grant) if record is not None else None
    await log_access(
        session, principal, action="registry_lookup", target=target, holder_id=key,
        outcome="found" if record else "no_match", fields=sorted(shown) if shown else [], **logged,
    )
    if shown is None:
        # Returned, not raised: raising would roll back the log entry of this (fruitless) read.
        return NotFound("No record with this key.", slug="record-not-found")
    return shown


def _identity_only(principal: Principal) -> None:
    if principal.kind != "service" or principal.subject != matching.MATCHING_SERVICE or not principal.has("service"):
        raise Forbidden("Registry matching answers identity's registration only.", slug="not-identity-service")


async def match_person(session: AsyncSession, principal: Principal, *, id_number: str, name: str) -> str:
    """`match`, `name_mismatch` or `not_found`; logged for the person with the registration's purpose."""
    _identity_only(principal)
    id_number = id_number.strip().upper()
    if problem := id_number_problem(id_number):
        raise invalid("body.id_number", *problem)
    record = await store.lookup(session, rules.POPULATION, id_number)
    verdict = matching.person_verdict(record.get("name") if record else None, name)
    await log_access(
        session, principal, action="registry_match", target="registry:population", holder_id=id_number,
        outcome=verdict, service=matching.MATCHING_SERVICE, purpose=PERSON_PURPOSE, fields=["name"],
    )
    return verdict


async def match_organisation(session: AsyncSession, principal: Principal, *, credit_code: str, name: str,
                             representative_id_number: str) -> str:
    """`match`, `name_mismatch`, `not_found`, `inactive` or `not_legal_representative`; logged for the
    organisation."""
    _identity_only(principal)
    code = credit_code.strip().upper()
    if problem := credit_code_problem(code):
        raise invalid("body.credit_code", *problem)
    rep = representative_id_number.strip().upper()
    if problem := id_number_problem(rep):
        raise invalid("body.legal_representative_id_number", *problem)
    record = await store.lookup(session, rules.LEGAL_PERSONS, code)
    verdict = matching.organisation_verdict(record, name, rep)
    await log_access(
        session, principal, action="registry_match", target="registry:legal-persons", holder_id=code,
        outcome=verdict, service=matching.MATCHING_SERVICE, purpose=ORGANISATION_PURPOSE,
        fields=["name", "legal_representative_id", "status"],
    )
    return verdict
