"""Appointments (预约办理) at a service point and consultations (咨询) answered by the owning department."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.intake.api import deps
from services.intake.api import schemas as s
from services.intake.domain import completeness
from services.intake.store import repository as repo
from services.intake.store.tables import Appointment, AppointmentSlot, Consultation
from shared.auth import ADMIN, DEPARTMENT_REVIEWER, SUPERVISOR, WINDOW_CLERK, CurrentPrincipal
from shared.bounds import BoundedInstant
from shared.db import SessionDep
from shared.errors import Conflict, Forbidden, NotFound, invalid
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep, paginate
from shared.types import utcnow

router = APIRouter(tags=["appointments and consultations"])
CODE = r"^[0-9A-Za-z][0-9A-Za-z_.\-]{0,63}$"


def _slot_read(x: AppointmentSlot) -> s.SlotRead:
    return s.SlotRead(id=x.id, service_point=x.service_point, item_code=x.item_code, starts_at=x.starts_at,
                      capacity=x.capacity, booked=x.booked)


def _id_key(row: object) -> list[object]:
    return [row.id]  # type: ignore[attr-defined]


_parse_id = deps.parse_id_key


@router.post(
    "/appointment-slots", status_code=201, response_model=s.SlotRead,
    summary="Open a bookable slot at a service point for an item (window clerks of that point, admins)",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_slot(body: s.SlotCreate, session: SessionDep, principal: CurrentPrincipal) -> s.SlotRead:
    if not (principal.has(ADMIN, SUPERVISOR) or (principal.has(WINDOW_CLERK) and principal.service_point == body.service_point)):
        raise Forbidden("Only a window clerk of this service point (or an admin) opens slots.")
    if body.starts_at.tzinfo is None:
        raise invalid("starts_at", "timezone", "Give the time with its offset, e.g. 2026-12-01T09:00:00+08:00.")
    item = await repo.current_item(session, body.item_code)
    if item is None:
        raise invalid("item_code", "unknown_item", "No published item has this code.")
    if (found := completeness.check_point(item.payload, body.service_point)) is not None:
        raise invalid(found.field, found.rule, found.message)
    slot = await repo.add_slot(session, service_point=body.service_point, item_code=body.item_code,
                               starts_at=body.starts_at, capacity=body.capacity)
    if slot is None:
        raise Conflict("A slot for this point, item and time already exists.", slug="slot-exists")
    return _slot_read(slot)


@router.get(
    "/appointment-slots", response_model=Page[s.SlotRead], summary="Bookable slots (public)",
    responses=problem_responses(422),
)
async def list_slots(session: SessionDep, page: PageDep,
                     service_point: Annotated[str | None, Query(pattern=CODE)] = None,
                     item_code: Annotated[str | None, Query(pattern=CODE)] = None,
                     after: Annotated[BoundedInstant | None, Query(description="With its offset.")] = None) -> Page[s.SlotRead]:
    if after is not None and after.tzinfo is None:
        raise invalid("query.after", "timezone", "Give the time with its offset, e.g. 2026-12-01T09:00:00+08:00.")
    stmt = repo.slots_query(service_point=service_point, item_code=item_code, after=after)
    rows, cursor = await paginate(session, stmt, key_columns=[AppointmentSlot.id], params=page, key_of=_id_key, parse_key=_parse_id)
    return Page[s.SlotRead](items=[_slot_read(x) for x in rows], next_cursor=cursor)


async def _appointment_read(session: SessionDep, a: Appointment) -> s.AppointmentRead:
    slot = await repo.get_slot(session, a.slot_id)
    return s.AppointmentRead(
        id=a.id, slot_id=a.slot_id, status=a.status, service_point=slot.service_point if slot else None,
        item_code=slot.item_code if slot else None, starts_at=slot.starts_at if slot else None,
        created_at=a.created_at, cancelled_at=a.cancelled_at,
    )


def _holder(principal: CurrentPrincipal) -> str:
    if principal.kind != "person":
        raise Forbidden("Appointments are booked by applicants.")
    if principal.acting_for:
        return principal.acting_for.subject
    return principal.organisation or principal.subject


@router.post(
    "/appointments", status_code=201, response_model=s.AppointmentRead,
    summary="Book a slot; a full slot or a second booking of the same slot is refused (409)",
    description="The seat is taken by one conditional update of the slot's count, so concurrent bookings "
                "never exceed its capacity.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def book(body: s.AppointmentCreate, session: SessionDep, principal: CurrentPrincipal) -> s.AppointmentRead:
    holder = _holder(principal)
    slot = await repo.get_slot(session, body.slot_id)
    if slot is None:
        raise NotFound("No such slot.")
    if slot.starts_at <= utcnow():
        raise invalid("slot_id", "slot_past", "This slot has already begun.")
    appt = await repo.add_appointment(session, slot_id=slot.id, applicant_id=holder)
    if appt is None:
        raise Conflict("You already hold a booking for this slot.", slug="already-booked")
    if not await repo.take_seat(session, slot.id):
        raise Conflict("This slot is fully booked.", slug="slot-full")
    return await _appointment_read(session, appt)


@router.post(
    "/appointments/{appointment_id}/cancel", response_model=s.AppointmentRead, summary="Cancel my booking",
    responses=problem_responses(401, 404, 409),
)
async def cancel(appointment_id: s.RowId, session: SessionDep, principal: CurrentPrincipal) -> s.AppointmentRead:
    appt = await repo.get_appointment(session, appointment_id)
    if appt is None or appt.applicant_id not in principal.applicant_ids:
        raise NotFound("No such appointment of yours.")
    if appt.status != "booked":
        raise Conflict("The appointment is already cancelled.", slug="illegal-transition")
    appt.status, appt.active_holder, appt.cancelled_at = "cancelled", None, utcnow()
    await session.flush()
    await repo.release_seat(session, appt.slot_id)
    return await _appointment_read(session, appt)


@router.get("/me/appointments", response_model=Page[s.AppointmentRead], summary="My appointments",
            responses=problem_responses(401, 422))
async def my_appointments(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Page[s.AppointmentRead]:
    stmt = repo.appointments_query(principal.applicant_ids)
    rows, cursor = await paginate(session, stmt, key_columns=[Appointment.id], params=page, key_of=_id_key, parse_key=_parse_id,
                                  descending=True)
    return Page[s.AppointmentRead](items=[await _appointment_read(session, a) for a in rows], next_cursor=cursor)


def _consultation_read(c: Consultation) -> s.ConsultationRead:
    return s.ConsultationRead(id=c.id, item_code=c.item_code, application_id=c.application_id,
                              department=c.department, question=c.question, answer=c.answer,
                              answered_by=c.answered_by, created_at=c.created_at, answered_at=c.answered_at)


@router.post(
    "/consultations", status_code=201, response_model=s.ConsultationRead,
    summary="Ask a question on an item or on one of my applications; the owning department answers",
    responses=problem_responses(401, 403, 404, 422),
)
async def ask(body: s.ConsultationCreate, session: SessionDep, principal: CurrentPrincipal) -> s.ConsultationRead:
    if principal.kind != "person":
        raise Forbidden("Consultations are asked by applicants.")
    if body.application_id:
        app = await deps.load_as_applicant(session, principal, body.application_id)
        item_code, department = app.item_code, app.department
    elif body.item_code:
        item = await repo.current_item(session, body.item_code)
        if item is None:
            raise invalid("item_code", "unknown_item", "No published item has this code.")
        item_code, department = item.code, item.department
    else:
        raise invalid("item_code", "required", "Name the item or the application the question is about.")
    c = await repo.add_consultation(session, asker_id=principal.subject, item_code=item_code,
                                    application_id=body.application_id, department=department, question=body.question)
    return _consultation_read(c)


@router.get("/me/consultations", response_model=Page[s.ConsultationRead], summary="My questions and their answers",
            responses=problem_responses(401, 422))
async def my_consultations(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Page[s.ConsultationRead]:
    stmt = repo.consultations_query(asker_ids=[principal.subject])
    rows, cursor = await paginate(session, stmt, key_columns=[Consultation.id], params=page, key_of=_id_key, parse_key=_parse_id,
                                  descending=True)
    return Page[s.ConsultationRead](items=[_consultation_read(c) for c in rows], next_cursor=cursor)


@router.get("/consultations", response_model=Page[s.ConsultationRead],
            summary="Questions to my department (staff)", responses=problem_responses(401, 403, 422))
async def department_consultations(session: SessionDep, principal: CurrentPrincipal,
                                   page: PageDep) -> Page[s.ConsultationRead]:
    if principal.kind == "person" or not principal.department:
        raise Forbidden("Only a department's staff see its questions.")
    stmt = repo.consultations_query(department=principal.department)
    rows, cursor = await paginate(session, stmt, key_columns=[Consultation.id], params=page, key_of=_id_key, parse_key=_parse_id,
                                  descending=True)
    return Page[s.ConsultationRead](items=[_consultation_read(c) for c in rows], next_cursor=cursor)


@router.post(
    "/consultations/{consultation_id}/answer", response_model=s.ConsultationRead,
    summary="Answer a question (staff of the owning department)", responses=problem_responses(401, 403, 404, 409, 422),
)
async def answer(consultation_id: s.RowId, body: s.ConsultationAnswer, session: SessionDep,
                 principal: CurrentPrincipal) -> s.ConsultationRead:
    c = await repo.get_consultation(session, consultation_id)
    if c is None or principal.kind == "person":
        raise NotFound("No such consultation.")
    if principal.department != c.department or not principal.has(WINDOW_CLERK, DEPARTMENT_REVIEWER, ADMIN, SUPERVISOR):
        raise Forbidden("Only the owning department answers.")
    if c.answer is not None:
        raise Conflict("This question is already answered.", slug="already-answered")
    c.answer, c.answered_by, c.answered_at = body.answer, (principal.name or principal.subject)[:200], utcnow()
    await session.flush()
    return _consultation_read(c)
