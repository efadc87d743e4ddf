"""Tables of the identity service (its database alone; no other service reads them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import make_metadata
from shared.messaging import define_messaging_tables
from shared.types import BigIntPK, UTCDateTime


class Base(DeclarativeBase):
    metadata = make_metadata()


messaging = define_messaging_tables(Base.metadata)


class Person(Base):
    """A natural person's account, keyed by the citizen ID number (公民身份号码)."""

    __tablename__ = "person"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    id_number: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(6))
    password_hash: Mapped[str] = mapped_column(String(255))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Identity assurance (实名核验): 1 self-registered, 2 matched against the population registry, 3 verified
    #: in person at a window. `assurance_basis` says how (or why a level-1 account stayed there).
    assurance_level: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    assurance_basis: Mapped[str | None] = mapped_column(String(40))
    assured_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: A locked account cannot sign in or refresh; set and cleared by an admin.
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Staff(Base):
    """A member of staff: window clerk (综合窗口), department reviewer, supervisor, admin, catalog editor."""

    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(JSON)
    department: Mapped[str | None] = mapped_column(String(40))
    service_point: Mapped[str | None] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    #: Shown to applicants with the staff member's name on the steps they handle (谁在办).
    office_phone: Mapped[str | None] = mapped_column(String(30), nullable=True)
    unit: Mapped[str | None] = mapped_column(String(100), nullable=True)


class LoginThrottleRow(Base):
    """Failed-login count per username (also for usernames that do not exist, so lock-out reveals nothing)."""

    __tablename__ = "login_throttle"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class SigningKeyRow(Base):
    """An Ed25519 signing key. The private half never leaves this table unencrypted-at-rest when a passphrase
    is configured; `retire_at` is when a rotated-out key leaves the JWKS (after its last token expired)."""

    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(32), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retire_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RefreshToken(Base):
    """A refresh token, stored as its SHA-256. Each use replaces it with a new one in the same family; a
    second use of a replaced token revokes the whole family (it was stolen or leaked)."""

    __tablename__ = "refresh_token"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    account_kind: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[str] = mapped_column(String(32))
    #: The login context to carry into refreshed tokens: {"organisation": credit code, "delegation": id}.
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_refresh_token_account", "account_kind", "account_id"),)


class DepartmentClient(Base):
    """An OAuth2 client-credentials client of a department's own system (legacy approval systems)."""

    __tablename__ = "department_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    secret_rotated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Department(Base):
    """Departments as catalog announces them (`yimen.catalog.department.upserted`); until the first arrives,
    any department code is accepted."""

    __tablename__ = "department"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str | None] = mapped_column(String(18))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Organisation(Base):
    """A legal person or other organisation, keyed by its unified social credit code (统一社会信用代码)."""

    __tablename__ = "organisation"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    legal_representative_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OrganisationAgent(Base):
    """A person the legal representative appointed to act for the organisation (经办人)."""

    __tablename__ = "organisation_agent"

    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisation.id"), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), primary_key=True)
    appointed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Delegation(Base):
    """委托代办: the principal (a person, or an organisation by credit code) lets the agent act for it."""

    __tablename__ = "delegation"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal_kind: Mapped[str] = mapped_column(String(20))
    #: A person's account id, or an organisation's credit code (the applicant id other services use).
    principal_id: Mapped[str] = mapped_column(String(32), index=True)
    granted_by: Mapped[str] = mapped_column(ForeignKey("person.id"))
    agent_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    items: Mapped[list[str] | None] = mapped_column(JSON)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PersonLookup(Base):
    """Audit of every look-up of a person by staff: who, whom, when, why, and whether at a window."""

    __tablename__ = "person_lookup"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    staff_id: Mapped[str] = mapped_column(String(40))
    staff_roles: Mapped[list[str]] = mapped_column(JSON)
    service_point: Mapped[str | None] = mapped_column(String(40))
    person_id: Mapped[str | None] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    assisted: Mapped[bool] = mapped_column(Boolean)
    found: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class InPersonVerification(Base):
    """A window clerk's record of checking a person's ID card in person (现场核验), which raises the account to
    level 3. The same record serves a walk-in registered by a clerk."""

    __tablename__ = "in_person_verification"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    clerk_id: Mapped[str] = mapped_column(String(40))
    clerk_name: Mapped[str | None] = mapped_column(String(100))
    service_point: Mapped[str] = mapped_column(String(40))
    document: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(String(500))
    level_before: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class TokenRevocation(Base):
    """The newest revocation per account: access tokens issued before `not_before` are refused everywhere. What
    `GET /token-revocations` lists for services that start later; new tokens are issued no earlier than it."""

    __tablename__ = "token_revocation"

    account_kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reason: Mapped[str] = mapped_column(String(40))


class WalkInRegistration(Base):
    """A person a window clerk registered at the counter (窗口代录) while filing for them: no password yet; the
    person claims the account online later with the one-time claim code printed on their receipt slip (kept
    here as its SHA-256 only), or at any window by an in-person check with a new password."""

    __tablename__ = "walk_in_registration"

    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), primary_key=True)
    clerk_id: Mapped[str] = mapped_column(String(40))
    clerk_name: Mapped[str | None] = mapped_column(String(100))
    service_point: Mapped[str] = mapped_column(String(40))
    #: What the population registry answered (`match` or `not_found`); the card in the clerk's hand is the proof.
    registry_verdict: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claim_code_hash: Mapped[str | None] = mapped_column(String(64))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Wrong claim codes against the current one; at the limit the code is void (a window issues a new one).
    claim_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
