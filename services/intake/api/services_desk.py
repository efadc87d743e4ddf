"""Appointments (预约办理) at a service point and consultations (咨询) answered by the owning department."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.intake import service
from services.intake.api import schemas as s
from services.intake.api.openapi import CLERK_OR_ADMIN, CREATED_ETAG, etag_of_created, responses
from shared.auth import CurrentPrincipal
from shared.bounds import BoundedInstant
from shared.db import SessionDep
from shared.pagination import Page, PageDep

router = APIRouter(tags=["appointments and consultations"])
CODE = r"^[0-9A-Za-z][0-9A-Za-z_.\-]{0,63}$"
desk = service.desk


def _slot_read(x: Any) -> s.SlotRead:
    return s.SlotRead(id=x.id, service_point=x.service_point, item_code=x.item_code, starts_at=x.starts_at,
                      capacity=x.capacity, booked=x.booked)


def _appointment_read(b: service.desk.Booking) -> s.AppointmentRead:
    a, slot = b.appointment, b.slot
    return s.AppointmentRead(
        id=a.id, slot_id=a.slot_id, status=a.status, service_point=slot.service_point if slot else None,
        item_code=slot.item_code if slot else None, starts_at=slot.starts_at if slot else None,
        created_at=a.created_at, cancelled_at=a.cancelled_at,
    )


def _consultation_read(c: Any) -> s.ConsultationRead:
    return s.ConsultationRead(id=c.id, item_code=c.item_code, application_id=c.application_id,
                              department=c.department, question=c.question, answer=c.answer,
                              answered_by=c.answered_by, created_at=c.created_at, answered_at=c.answered_at)


@router.post(
    "/appointment-slots", status_code=201, response_model=s.SlotRead,
    openapi_extra=CLERK_OR_ADMIN,
    summary="Open a bookable slot at a service point for an item (window clerks of that point, admins)",
    responses=responses(201, 401, 403, 409, 422, headers=CREATED_ETAG),
)
async def create_slot(body: s.SlotCreate, session: SessionDep, principal: CurrentPrincipal,
                      response: Response) -> s.SlotRead:
    return etag_of_created(response, _slot_read(await desk.open_slot(session, principal, service_point=body.service_point,
                                                               item_code=body.item_code, starts_at=body.starts_at,
                                                               capacity=body.capacity)))


@router.get(
    "/appointment-slots", response_model=Page[s.SlotRead], summary="Bookable slots (public, no token)",
    responses=responses(200, 422),
)
async def list_slots(session: SessionDep, page: PageDep,
                     service_point: Annotated[str | None, Query(pattern=CODE)] = None,
                     item_code: Annotated[str | None, Query(pattern=CODE)] = None,
                     after: Annotated[BoundedInstant | None, Query(description="With its offset.")] = None,
                     ) -> Page[s.SlotRead]:
    rows, cursor = await desk.slots(session, page, service_point=service_point, item_code=item_code, after=after)
    return Page[s.SlotRead](items=[_slot_read(x) for x in rows], next_cursor=cursor)


@router.post(
    "/appointments", status_code=201, response_model=s.AppointmentRead,
    summary="Book a slot; a full slot or a second booking of the same slot is refused (409)",
    description="The seat is taken by one conditional update of the slot's count, so concurrent bookings "
                "never exceed its capacity.",
    responses=responses(201, 401, 403, 404, 409, 422, headers=CREATED_ETAG),
)
async def book(body: s.AppointmentCreate, session: SessionDep, principal: CurrentPrincipal,
               response: Response) -> s.AppointmentRead:
    return etag_of_created(response, _appointment_read(await desk.book(session, principal, body.slot_id)))


@router.post(
    "/appointments/{appointment_id}/cancel", response_model=s.AppointmentRead, summary="Cancel my booking",
    responses=responses(200, 401, 404, 409),
)
async def cancel(appointment_id: s.RowId, session: SessionDep, principal: CurrentPrincipal) -> s.AppointmentRead:
    return _appointment_read(await desk.cancel(session, principal, appointment_id))


@router.get("/me/appointments", response_model=Page[s.AppointmentRead], summary="My appointments",
            responses=responses(200, 401, 422))
async def my_appointments(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Page[s.AppointmentRead]:
    rows, cursor = await desk.my_appointments(session, principal, page)
    return Page[s.AppointmentRead](items=[_appointment_read(b) for b in rows], next_cursor=cursor)


@router.post(
    "/consultations", status_code=201, response_model=s.ConsultationRead,
    summary="Ask a question on an item or on one of my applications; the owning department answers",
    responses=responses(201, 401, 403, 404, 422, headers=CREATED_ETAG),
)
async def ask(body: s.ConsultationCreate, session: SessionDep, principal: CurrentPrincipal,
              response: Response) -> s.ConsultationRead:
    return etag_of_created(response, _consultation_read(await desk.ask(
        session, principal, item_code=body.item_code, application_id=body.application_id, question=body.question)))


@router.get("/me/consultations", response_model=Page[s.ConsultationRead], summary="My questions and their answers",
            responses=responses(200, 401, 422))
async def my_consultations(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Page[s.ConsultationRead]:
    rows, cursor = await desk.my_consultations(session, principal, page)
    return Page[s.ConsultationRead](items=[_consultation_read(c) for c in rows], next_cursor=cursor)


@router.get("/consultations", response_model=Page[s.ConsultationRead],
            summary="Questions to my department (staff)", responses=responses(200, 401, 403, 422))
async def department_consultations(session: SessionDep, principal: CurrentPrincipal,
                                   page: PageDep) -> Page[s.ConsultationRead]:
    rows, cursor = await desk.department_consultations(session, principal, page)
    return Page[s.ConsultationRead](items=[_consultation_read(c) for c in rows], next_cursor=cursor)


@router.post(
    "/consultations/{consultation_id}/answer", response_model=s.ConsultationRead,
    summary="Answer a question (staff of the owning department)", responses=responses(200, 401, 403, 404, 409, 422),
)
async def answer(consultation_id: s.RowId, body: s.ConsultationAnswer, session: SessionDep,
                 principal: CurrentPrincipal) -> s.ConsultationRead:
    return _consultation_read(await desk.answer(session, principal, consultation_id, body.answer))
