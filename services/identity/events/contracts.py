"""Event payloads identity publishes (the source of truth, see docs/CONTRACTS.md) and the subset it reads."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shared.events import ConsumedEvent

PERSON_REGISTERED = "yimen.identity.person.registered"
ORGANISATION_REGISTERED = "yimen.identity.organisation.registered"
DELEGATION_GRANTED = "yimen.identity.delegation.granted"
DELEGATION_REVOKED = "yimen.identity.delegation.revoked"
DEPARTMENT_UPSERTED = "yimen.catalog.department.upserted"
TOKENS_REVOKED = "yimen.identity.account.tokens_revoked"
PERSON_ASSURANCE_RAISED = "yimen.identity.person.assurance_raised"


class PersonRegistered(BaseModel):
    """`yimen.identity.person.registered` (subject: person id). The ID number travels masked only."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "person_id": "3c2b1a09f8e7d6c5b4a3928170615243",
            "name": "张三",
            "id_number_masked": "441781********0312",
            "registered_at": "2026-11-26T09:00:00+08:00",
            "assurance_level": 2,
        },
    ]})

    person_id: str
    name: str
    id_number_masked: str
    registered_at: datetime
    assurance_level: int = 1


class PersonAssuranceRaised(BaseModel):
    """`yimen.identity.person.assurance_raised` (subject: person id): a registry re-check (level 2) or a window
    clerk's in-person ID-card check (level 3)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "person_id": "3c2b1a09f8e7d6c5b4a3928170615243",
            "assurance_level": 3,
            "basis": "counter_check",
            "service_point": "LD-ZWFWZX",
            "at": "2026-11-26T10:00:00+08:00",
        },
    ]})

    person_id: str
    assurance_level: int
    basis: str
    service_point: str | None = None
    at: datetime


class TokensRevoked(BaseModel):
    """`yimen.identity.account.tokens_revoked` (subject: account id): every access token of the account issued
    before `not_before` must be refused (shared/auth's verifier in every service does). `reason`:
    `password_changed`, `logout_everywhere`, `account_locked`, `secret_rotated`."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "account_id": "3c2b1a09f8e7d6c5b4a3928170615243",
            "account_kind": "person",
            "not_before": "2026-11-26T10:15:00.123000+08:00",
            "reason": "password_changed",
        },
    ]})

    account_id: str
    account_kind: str
    not_before: datetime
    reason: str


class OrganisationRegistered(BaseModel):
    """`yimen.identity.organisation.registered` (subject: organisation id)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "organisation_id": "b1c2d3e4f5a60718293a4b5c6d7e8f90",
            "name": "罗定市示例餐饮有限公司",
            "credit_code": "91445381MA4W00003X",
            "legal_representative_id": "3c2b1a09f8e7d6c5b4a3928170615243",
        },
    ]})

    organisation_id: str
    name: str
    credit_code: str
    legal_representative_id: str


class PrincipalRef(BaseModel):
    kind: str  # "person" (id = account id) | "organisation" (id = credit code)
    id: str


class DelegationChanged(BaseModel):
    """`yimen.identity.delegation.granted` / `.revoked` (subject: delegation id)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "delegation_id": "d41d8cd98f00b204e9800998ecf8427e",
            "principal": {"kind": "organisation", "id": "91445381MA4W00003X"},
            "agent_id": "7e6d5c4b3a2918070f1e2d3c4b5a6978",
            "items": ["11441781MB0000001A4010000010000"],
            "valid_until": "2027-11-26T00:00:00+08:00",
        },
    ]})

    delegation_id: str
    principal: PrincipalRef
    agent_id: str
    items: list[str] | None
    valid_until: datetime


class DepartmentUpserted(ConsumedEvent):
    """What identity reads of catalog's `yimen.catalog.department.upserted`."""

    consumes = ("yimen.catalog.department.upserted",)

    code: str
    name: str
    credit_code: str | None = None
