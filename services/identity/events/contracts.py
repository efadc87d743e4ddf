"""Event payloads identity publishes (the source of truth, see docs/CONTRACTS.md) and the subset it reads."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

PERSON_REGISTERED = "yimen.identity.person.registered"
ORGANISATION_REGISTERED = "yimen.identity.organisation.registered"
DELEGATION_GRANTED = "yimen.identity.delegation.granted"
DELEGATION_REVOKED = "yimen.identity.delegation.revoked"
DEPARTMENT_UPSERTED = "yimen.catalog.department.upserted"
TOKENS_REVOKED = "yimen.identity.account.tokens_revoked"
PERSON_ASSURANCE_RAISED = "yimen.identity.person.assurance_raised"


class PersonRegistered(BaseModel):
    """`yimen.identity.person.registered` (subject: person id). The ID number travels masked only."""

    person_id: str
    name: str
    id_number_masked: str
    registered_at: datetime
    assurance_level: int = 1


class PersonAssuranceRaised(BaseModel):
    """`yimen.identity.person.assurance_raised` (subject: person id): a registry re-check (level 2) or a window
    clerk's in-person ID-card check (level 3)."""

    person_id: str
    assurance_level: int
    basis: str
    service_point: str | None = None
    at: datetime


class TokensRevoked(BaseModel):
    """`yimen.identity.account.tokens_revoked` (subject: account id): every access token of the account issued
    before `not_before` must be refused (shared/auth's verifier in every service does). `reason`:
    `password_changed`, `logout_everywhere`, `account_locked`, `secret_rotated`."""

    account_id: str
    account_kind: str
    not_before: datetime
    reason: str


class OrganisationRegistered(BaseModel):
    """`yimen.identity.organisation.registered` (subject: organisation id)."""

    organisation_id: str
    name: str
    credit_code: str
    legal_representative_id: str


class PrincipalRef(BaseModel):
    kind: str  # "person" (id = account id) | "organisation" (id = credit code)
    id: str


class DelegationChanged(BaseModel):
    """`yimen.identity.delegation.granted` / `.revoked` (subject: delegation id)."""

    delegation_id: str
    principal: PrincipalRef
    agent_id: str
    items: list[str] | None
    valid_until: datetime


class DepartmentUpserted(BaseModel):
    """What identity reads of catalog's `yimen.catalog.department.upserted`."""

    model_config = ConfigDict(extra="ignore")

    code: str
    name: str
    credit_code: str | None = None
