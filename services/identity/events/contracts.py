"""Event payloads identity publishes (the source of truth, see docs/CONTRACTS.md) and the subset it reads."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

PERSON_REGISTERED = "yimen.identity.person.registered"
ORGANISATION_REGISTERED = "yimen.identity.organisation.registered"
DELEGATION_GRANTED = "yimen.identity.delegation.granted"
DELEGATION_REVOKED = "yimen.identity.delegation.revoked"
DEPARTMENT_UPSERTED = "yimen.catalog.department.upserted"


class PersonRegistered(BaseModel):
    """`yimen.identity.person.registered` (subject: person id). The ID number travels masked only."""

    person_id: str
    name: str
    id_number_masked: str
    registered_at: datetime


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
