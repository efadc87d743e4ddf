"""The intake use cases: one function per thing a caller can do, each owning its flow from the checks (domain)
through the state change and the timeline (store) to the outbox event, in the caller's transaction. Routes and
event handlers call these; they raise `shared.errors` problems, never HTTP types.

One module per aggregate: `applications` (an application's life), `walkins` (窗口代录), `counter` (the receipt
slip, collections, fees), `commitments` (告知承诺核查), `desk` (appointments, consultations), `reuse`, `progress`
(status, lists, queue), `insights`; `common` and `views` hold what they share."""

from services.intake.service import (
    applications,
    commitments,
    counter,
    desk,
    insights,
    progress,
    received,
    reuse,
    walkins,
)
from services.intake.service.applications import (
    CheckOutcome,
    Datashare,
    MaterialState,
    Submission,
    accept,
    accept_application,
    add_reference,
    add_upload,
    after_decision,
    answer_correction,
    begin_submission,
    change_delivery,
    check,
    confirm_payment,
    create_draft,
    deliver,
    fetch_for_submission,
    fetch_held,
    hand_in,
    hand_over,
    hand_over_if_ready,
    not_accept,
    read,
    record_visit,
    return_for_correction,
    submit,
    update_draft,
    uploaded_file,
    visits,
    withdraw,
)
from services.intake.service.common import (
    SYSTEM,
    Responder,
    department_contact,
    item_of,
    note,
    responder,
    staff_label,
)
from services.intake.service.files import file_store
from services.intake.service.views import ApplicationView
from services.intake.service.walkins import Identity
from services.intake.store.identity import WalkInPerson

__all__ = [
    "ApplicationView", "CheckOutcome", "Datashare", "Identity", "MaterialState", "Responder", "SYSTEM", "Submission",
    "WalkInPerson", "accept", "accept_application", "add_reference", "add_upload", "after_decision",
    "answer_correction", "applications", "begin_submission", "change_delivery", "check", "commitments",
    "confirm_payment", "counter", "create_draft", "deliver", "department_contact", "desk", "fetch_for_submission",
    "fetch_held", "file_store", "hand_in", "hand_over", "hand_over_if_ready", "insights", "item_of", "not_accept",
    "note", "progress", "read", "received", "record_visit", "responder", "return_for_correction", "reuse",
    "staff_label", "submit", "update_draft", "uploaded_file", "visits", "walkins", "withdraw",
]
