"""Appointments (预约办理) at a service point and consultations (咨询) answered by the owning department."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import access, completeness
from services.intake.service.common import load_as_applicant
from services.intake.store import repository as repo
from services.intake.store.tables import Appointment, AppointmentSlot, Consultation
from shared.errors import Conflict, Forbidden, NotFound, invalid
from shared.pagination import PageParams
from shared.principal import ADMIN, SUPERVISOR, WINDOW_CLERK, Principal
from shared.types import utcnow

_OFFSET = "Give the time with its offset, e.g. 2026-12-01T09:00:00+08:00."


async def open_slot(session: AsyncSession, principal: Principal, *, service_point: str, item_code: str,
                    starts_at: datetime, capacity: int) -> AppointmentSlot:
    if not (principal.has(ADMIN, SUPERVISOR) or (principal.has(WINDOW_CLERK) and principal.service_point == service_point)):
        raise Forbidden("Only a window clerk of this service point (or an admin) opens slots.")
    if starts_at.tzinfo is None:
        raise invalid("starts_at", "timezone", _OFFSET)
    item = await repo.current_item(session, item_code)
    if item is None:
        raise invalid("item_code", "unknown_item", "No published item has this code.")
    if (found := completeness.check_point(item.payload, service_point)) is not None:
        raise invalid(found.field, found.rule, found.message)
    slot = await repo.add_slot(session, service_point=service_point, item_code=item_code, starts_at=starts_at,
                               capacity=capacity)
    if slot is None:
        raise Conflict("A slot for this point, item and time already exists.", slug="slot-exists")
    return slot


async def slots(session: AsyncSession, page: PageParams, *, service_point: str | None, item_code: str | None,
                after: datetime | None) -> tuple[list[AppointmentSlot], str | None]:
    if after is not None and after.tzinfo is None:
        raise invalid("query.after", "timezone", _OFFSET)
    return await repo.slots_page(session, page, service_point=service_point, item_code=item_code, after=after)


@dataclass
class Booking:
    appointment: Appointment
    slot: AppointmentSlot | None


async def _booking(session: AsyncSession, a: Appointment) -> Booking:
    return Booking(a, await repo.get_slot(session, a.slot_id))


async def book(session: AsyncSession, principal: Principal, slot_id: int) -> Booking:
    """The seat is taken by one conditional update of the slot's count: never more than its capacity."""
    holder = access.appointment_holder(principal)
    slot = await repo.get_slot(session, slot_id)
    if slot is None:
        raise NotFound("No such slot.")
    if slot.starts_at <= utcnow():
        raise invalid("slot_id", "slot_past", "This slot has already begun.")
    appt = await repo.add_appointment(session, slot_id=slot.id, applicant_id=holder)
    if appt is None:
        raise Conflict("You already hold a booking for this slot.", slug="already-booked")
    if not await repo.take_seat(session, slot.id):
        raise Conflict("This slot is fully booked.", slug="slot-full")
    return Booking(appt, slot)


async def cancel(session: AsyncSession, principal: Principal, appointment_id: int) -> Booking:
    appt = await repo.get_appointment(session, appointment_id)
    if appt is None or appt.applicant_id not in principal.applicant_ids:
        raise NotFound("No such appointment of yours.")
    if appt.status != "booked":
        raise Conflict("The appointment is already cancelled.", slug="illegal-transition")
    appt.status, appt.active_holder, appt.cancelled_at = "cancelled", None, utcnow()
    await session.flush()
    await repo.release_seat(session, appt.slot_id)
    return await _booking(session, appt)


async def my_appointments(session: AsyncSession, principal: Principal,
                          page: PageParams) -> tuple[list[Booking], str | None]:
    rows, cursor = await repo.appointments_page(session, page, principal.applicant_ids)
    return [await _booking(session, a) for a in rows], cursor


async def ask(session: AsyncSession, principal: Principal, *, item_code: str | None, application_id: str | None,
              question: str) -> Consultation:
    """A question on an item or on one of my applications, for the owning department."""
    if principal.kind != "person":
        raise Forbidden("Consultations are asked by applicants.")
    if application_id:
        app = await load_as_applicant(session, principal, application_id)
        code, department = app.item_code, app.department
    elif item_code:
        item = await repo.current_item(session, item_code)
        if item is None:
            raise invalid("item_code", "unknown_item", "No published item has this code.")
        code, department = item.code, item.department
    else:
        raise invalid("item_code", "required", "Name the item or the application the question is about.")
    return await repo.add_consultation(session, asker_id=principal.subject, item_code=code,
                                       application_id=application_id, department=department, question=question)


async def my_consultations(session: AsyncSession, principal: Principal,
                           page: PageParams) -> tuple[list[Consultation], str | None]:
    return await repo.consultations_page(session, page, asker_ids=[principal.subject])


async def department_consultations(session: AsyncSession, principal: Principal,
                                   page: PageParams) -> tuple[list[Consultation], str | None]:
    if principal.kind == "person" or not principal.department:
        raise Forbidden("Only a department's staff see its questions.")
    return await repo.consultations_page(session, page, department=principal.department)


async def answer(session: AsyncSession, principal: Principal, consultation_id: int, text: str) -> Consultation:
    c = await repo.get_consultation(session, consultation_id)
    if c is None or principal.kind == "person":
        raise NotFound("No such consultation.")
    access.may_answer(principal, c.department)
    if c.answer is not None:
        raise Conflict("This question is already answered.", slug="already-answered")
    c.answer, c.answered_by, c.answered_at = text, (principal.name or principal.subject)[:200], utcnow()
    await session.flush()
    return c
