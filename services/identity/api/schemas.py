"""Request and response models of the identity API."""

from __future__ import annotations

from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.bounds import BoundedInstant

# The examples are one story, valid by every rule the platform checks (GB 11643 ID numbers of Luoding 445381,
# GB 32100 credit codes with their check characters) and by the base registries (tests/contract/seed.py):
# 王芳 registers and is verified at a counter; a clerk registers the walk-in 黄伯, who claims his account; 李明
# (already registered) is the legal representative of the individual business 罗定市一味餐饮店
# (92445381MA4W00000P), registers it, appoints 王芳 as its agent and delegates to her the food business permit
# (食品经营许可) of the demo catalogue.
PERSON_ID_NUMBER = "445381199501011237"
AGENT_ID_NUMBER = "445381199602022226"
WALK_IN_ID_NUMBER = "440100195203041233"
CREDIT_CODE = "92445381MA4W00000P"
FOOD_PERMIT_ITEM = "11441781MB0000001A4010000030000"


class AccountKind(StrEnum):
    """Who a token or an account is: a natural person, a staff member, a department's system."""

    PERSON = "person"
    STAFF = "staff"
    DEPARTMENT_SYSTEM = "department_system"


class AssuranceLevel(IntEnum):
    """实名核验: 1 self-registered (the population registry does not hold the number), 2 matched against the
    population registry, 3 ID card checked in person at a window."""

    SELF_REGISTERED = 1
    REGISTRY_MATCHED = 2
    IN_PERSON = 3


class StaffRole(StrEnum):
    WINDOW_CLERK = "window_clerk"
    DEPARTMENT_REVIEWER = "department_reviewer"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    CATALOG_EDITOR = "catalog_editor"


class Role(StrEnum):
    """Every role a token can carry: the staff roles and those of persons and systems."""

    CITIZEN = "citizen"
    ORG_AGENT = "org_agent"
    DEPARTMENT_SYSTEM = "department_system"
    WINDOW_CLERK = "window_clerk"
    DEPARTMENT_REVIEWER = "department_reviewer"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    CATALOG_EDITOR = "catalog_editor"


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


class IdDocument(StrEnum):
    """居民身份证 or 临时居民身份证."""

    RESIDENT_ID_CARD = "resident_id_card"
    TEMPORARY_RESIDENT_ID_CARD = "temporary_resident_id_card"


class Capacity(StrEnum):
    """In which capacity a person acts for an organisation."""

    LEGAL_REPRESENTATIVE = "legal_representative"
    AGENT = "agent"


class PersonCreate(BaseModel):
    """Register a natural person. Birth date and sex are derived from the ID number, never asked."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "王芳", "id_number": AGENT_ID_NUMBER, "phone": "13812345678", "password": "tea-kettle-ridge-58"}
    ]})

    name: str = Field(min_length=1, max_length=100, description="Name as on the ID card.")
    id_number: str = Field(max_length=64, description="Citizen ID number (GB 11643). Whitespace, full-width "
                           "digits and a lower-case x are normalised.")
    phone: str = Field(max_length=32, description="Mainland mobile number.")
    password: str = Field(max_length=1024, description="8-128 characters, strong enough by the zxcvbn estimator "
                          "(score 3 of 4): no common password, keyboard pattern or date, nothing built from the name, "
                          "ID number or phone.")


class PersonRead(BaseModel):
    id: str
    name: str
    id_number: str = Field(description="Masked (`4453**********1230`) except to the person themself.")
    phone: str = Field(description="Masked (`138****5678`) except to the person themself and window clerks.")
    birth_date: date
    sex: Sex
    registered_at: datetime
    assurance_level: AssuranceLevel = Field(description="实名核验: 1 self-registered (the population registry does "
                                 "not hold the number: may browse, consult and draft, not submit), 2 matched against "
                                 "the population registry, 3 ID card checked in person at a window.")
    assurance_note: str | None = Field(default=None, description="Why the account is at level 1 and how to rise.")


class InPersonVerificationCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id_number": AGENT_ID_NUMBER, "name": "王芳", "document": "resident_id_card", "note": "读卡器核验"}]})

    id_number: str = Field(max_length=64, description="The number on the card the clerk holds (must be the "
                           "account's).")
    name: str = Field(min_length=1, max_length=100, description="The name on the card (must be the account's).")
    new_password: str | None = Field(default=None, max_length=1024, description="Typed by the person at the "
                                     "counter when they did not create the account themself or forgot its "
                                     "password: replaces it and revokes every earlier token (whoever else held the "
                                     "account loses it).")
    document: IdDocument = Field(default=IdDocument.RESIDENT_ID_CARD, description="居民身份证 or 临时居民身份证.")
    note: str | None = Field(default=None, max_length=500)


class InPersonVerificationRead(BaseModel):
    person_id: str
    assurance_level: AssuranceLevel
    level_before: AssuranceLevel
    password_replaced: bool = False
    document: IdDocument
    service_point: str
    clerk_id: str
    at: datetime


class AssuranceRead(BaseModel):
    assurance_level: AssuranceLevel
    assurance_note: str | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str | None = Field(default=None, description="Absent for client_credentials.")


class RefreshTokenBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"refresh_token": "…"}]})

    refresh_token: str = Field(min_length=1, max_length=200)


class PasswordChange(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"current_password": "tea-kettle-ridge-58", "new_password": "lantern-orchid-maple-7"}
    ]})

    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class StaffCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "username": "clerk.chen", "name": "陈晓", "password": "counter-bamboo-2026", "roles": ["window_clerk"],
        "department": "LD-ZSJ", "service_point": "LD-CENTRE",
    }]})

    username: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9._-]{2,39}$", description="Login name; starts with a "
                          "letter so it never looks like an ID number. Stored lower-case.")
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(max_length=1024)
    roles: list[StaffRole] = Field(min_length=1, max_length=5)
    department: str | None = Field(default=None, pattern=r"^[A-Z0-9-]{2,40}$", description="Department code.")
    service_point: str | None = Field(default=None, pattern=r"^[A-Z0-9-]{2,40}$", description="Service point "
                                      "code; required for window clerks.")
    office_phone: str | None = Field(
        default=None, pattern=r"^(0\d{2,3}-?\d{7,8}(-\d{1,6})?|1[3-9]\d{9}|\d{5})$",
        description="Office phone (landline 0766-3822000, mobile, or a 5-digit service number); applicants see it "
                    "with the staff member's name on the steps they handle. Staff tokens carry it as `phone`.")
    unit: str | None = Field(default=None, min_length=1, max_length=100,
                             description="The office within the department (科室), e.g. 行政审批股; token claim `unit`.")


class StaffRead(BaseModel):
    id: str
    username: str
    name: str
    roles: list[StaffRole]
    department: str | None
    service_point: str | None
    office_phone: str | None = None
    unit: str | None = None
    created_at: datetime


class DepartmentClientCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"department": "LD-SCJGJ", "name": "市场监管审批系统"}]})

    department: str = Field(pattern=r"^[A-Z0-9-]{2,40}$")
    name: str = Field(min_length=1, max_length=100)


class DepartmentClientCredentials(BaseModel):
    client_id: str
    client_secret: str = Field(description="Shown only in this response; only its hash is kept.")
    department: str
    name: str
    created_at: datetime


class DepartmentClientRead(BaseModel):
    client_id: str
    department: str
    name: str
    created_at: datetime
    secret_rotated_at: datetime


class OrganisationCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "罗定市一味餐饮店", "credit_code": CREDIT_CODE,
        "legal_representative_id_number": PERSON_ID_NUMBER,
    }]})

    name: str = Field(min_length=1, max_length=200)
    credit_code: str = Field(max_length=64, description="Unified social credit code (GB 32100).")
    legal_representative_id_number: str = Field(max_length=64, description="The caller's own ID number: the "
                                                "legal-person registry must name it as the legal representative.")


class OrganisationRead(BaseModel):
    id: str
    name: str
    credit_code: str
    legal_representative_id: str
    registered_at: datetime
    capacity: Capacity | None = None


class AgentAppoint(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"id_number": AGENT_ID_NUMBER}]})

    id_number: str = Field(max_length=64, description="The agent's citizen ID number (a registered person).")


class AgentRead(BaseModel):
    person_id: str
    name: str
    id_number: str = Field(description="Masked.")
    appointed_at: datetime


class DelegationCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "agent_id_number": AGENT_ID_NUMBER, "items": [FOOD_PERMIT_ITEM],
        "valid_until": "2027-06-30T23:59:59+08:00", "organisation": None,
    }]})

    agent_id_number: str = Field(max_length=64, description="Who may act (a registered person).")
    items: list[str] | None = Field(default=None, max_length=200, description="Item codes; null for all items.")
    valid_until: BoundedInstant = Field(description="With an offset; must be in the future.")
    organisation: str | None = Field(default=None, max_length=64, description="Credit code when the "
                                     "organisation (by its legal representative) is the principal.")


class PrincipalOut(BaseModel):
    kind: Literal["person", "organisation"]
    id: str


class DelegationRead(BaseModel):
    id: str
    principal: PrincipalOut
    agent_id: str
    items: list[str] | None
    valid_until: datetime
    granted_at: datetime
    revoked_at: datetime | None


class ActingFor(BaseModel):
    """Under a delegation: whom the token acts for."""

    kind: Literal["person", "organisation"]
    id: str = Field(description="The principal's account id or credit code.")
    delegation: str | None = None


class MeRead(BaseModel):
    """The caller's own account. A person sees their own ID and phone numbers unmasked (they are theirs)."""

    id: str
    kind: AccountKind
    name: str
    roles: list[Role]
    id_number: str | None = None
    phone: str | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    assurance_level: AssuranceLevel | None = Field(default=None, description="Persons: 实名核验 level 1-3 (see "
                                                   "PersonRead).")
    assurance_note: str | None = None
    username: str | None = None
    department: str | None = None
    service_point: str | None = None
    organisations: list[OrganisationRead] = []
    acting_for: ActingFor | None = None


class LookupRead(BaseModel):
    person: PersonRead
    assisted: bool = Field(description="Recorded as a window-assisted act.")


class LookupAuditRead(BaseModel):
    staff_id: str
    staff_roles: list[StaffRole]
    service_point: str | None
    reason: str
    assisted: bool
    at: datetime


class WalkInCreate(BaseModel):
    """What the window clerk reads off the ID card of the person at the counter (窗口代录)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id_number": WALK_IN_ID_NUMBER, "name": "黄伯", "phone": "13712345678", "document": "resident_id_card"}]})

    id_number: str = Field(max_length=64, description="The number on the card the clerk holds.")
    name: str = Field(min_length=1, max_length=100, description="The name on the card.")
    phone: str = Field(max_length=32, description="The person's mainland mobile number, to reach them about the "
                       "case (kept for a new account; an existing account keeps its own).")
    document: IdDocument = Field(default=IdDocument.RESIDENT_ID_CARD, description="居民身份证 or 临时居民身份证.")
    note: str | None = Field(default=None, max_length=500)


class WalkInRead(BaseModel):
    person: PersonRead = Field(description="The person (ID number masked; the phone in full to the clerk).")
    created: bool = Field(description="True when the person had no account and one was opened now.")
    registry: Literal["match", "not_found"] | None = Field(
        default=None, description="For a new account: what the population registry answered.")
    claim_code: str | None = Field(default=None, description="For an account not yet claimed: the one-time code "
                                   "to print on the person's slip; with it, their name and ID number they claim "
                                   "the account online (`POST /people/claims`). Shown once; a new walk-in issues "
                                   "a new one and voids the old.")
    claim_expires_at: datetime | None = None
    service_point: str
    clerk_id: str


class WalkInClaim(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id_number": WALK_IN_ID_NUMBER, "name": "黄伯", "claim_code": "7KX9-MPQ4-RT",
         "password": "tea-kettle-ridge-58"}]})

    id_number: str = Field(max_length=64)
    name: str = Field(min_length=1, max_length=100)
    claim_code: str = Field(min_length=1, max_length=40, description="As printed on the receipt slip (spaces and "
                            "hyphens ignored, case-insensitive).")
    password: str = Field(max_length=1024, description="The new password (policy as `POST /people`).")
