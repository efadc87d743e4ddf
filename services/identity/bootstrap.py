"""Start-up work: a signing key exists, and the first admin comes from the environment (never a default)."""

from __future__ import annotations

import logging
from datetime import timedelta

from pydantic import ValidationError

from services.identity.api.schemas import StaffCreate
from services.identity.runtime import IdentityRuntime
from services.identity.service import staff
from services.identity.store import accounts
from shared.db import Database
from shared.errors import Problem
from shared.jobs import run_periodically
from shared.types import utcnow

log = logging.getLogger("yimen.identity.bootstrap")


async def ensure_signing_key(db: Database, rt: IdentityRuntime) -> None:
    if not rt.settings.key_passphrase:
        log.warning("YIMEN_IDENTITY_KEY_PASSPHRASE is unset: signing keys are stored unencrypted")
    async with db.transaction() as session:
        await rt.keyring.ensure_key(session, utcnow())


async def purge_expired(db: Database) -> None:
    """Delete failure counts idle for a day, refresh tokens expired a day ago and token revocations a day old (every
    token they refuse expired long ago)."""
    cutoff = utcnow() - timedelta(days=1)
    async with db.transaction() as session:
        throttles = await accounts.purge_throttles(session, cutoff)
        refresh = await accounts.purge_refresh_tokens(session, cutoff)
        await accounts.purge_revocations(session, cutoff)
    if throttles or refresh:
        log.info("housekeeping: %d failure counts, %d refresh tokens deleted", throttles, refresh)


async def housekeeping(db: Database, rt: IdentityRuntime) -> None:
    """`purge_expired` every `housekeeping_seconds`, forever (a background job; a failed purge harms nobody and
    the next round retries it)."""

    async def one_round() -> None:
        await purge_expired(db)

    await run_periodically("identity housekeeping", one_round, interval=lambda: rt.settings.housekeeping_seconds)


async def create_admin(db: Database, rt: IdentityRuntime, *, username: str, password: str, name: str = "Administrator",
                       department: str | None = None) -> str:
    """Create an admin unless the login name exists; returns what happened, for the log or the CLI."""
    async with db.transaction() as session:
        if await staff.staff_by_username(session, username) is not None:
            return f"admin {username!r} already exists; nothing changed"
        body = StaffCreate(username=username, name=name, password=password, roles=["admin"], department=department)
        await staff.create_staff(session, rt, username=body.username, name=body.name, password=body.password,
                                 roles=list(body.roles), department=body.department, service_point=body.service_point,
                                 now=utcnow())
    return f"admin {username!r} created"


async def bootstrap_admin(db: Database, rt: IdentityRuntime) -> None:
    s = rt.settings
    if not s.admin_password:
        log.info("no admin created: set YIMEN_ADMIN_PASSWORD (and YIMEN_ADMIN_USERNAME, default 'admin') or run "
                 "`python -m services.identity.cli create-admin`")
        return
    try:
        log.info(await create_admin(db, rt, username=s.admin_username, password=s.admin_password))
    except (ValidationError, Problem) as exc:
        log.error("no admin created: YIMEN_ADMIN_USERNAME/YIMEN_ADMIN_PASSWORD break a rule: %s", exc)
