"""Workflow's use cases, the one layer both entry points call (REST routes and bus consumers). Each function
runs inside the caller's transaction and writes state, events (outbox) and webhook deliveries together; it
raises `shared.errors` problems, never HTTP types. One module per aggregate."""

from services.workflow.service.calendar import calendar_loaded, reload_calendar
from services.workflow.service.cases import (
    CaseView,
    DefinitionNotYetKnown,
    get_case,
    record_definition,
    start_case,
    withdraw_case,
)
from services.workflow.service.deliveries import (
    DeliveryView,
    get_webhook,
    list_deliveries,
    put_webhook,
    queue_webhook,
    replay,
)
from services.workflow.service.tasks import (
    Decider,
    DecisionInput,
    assign_handler,
    decide,
    decide_on_bus,
    decide_task,
    deem_overdue,
    get_task,
    list_tasks,
    reassign,
    reopen_task,
)

__all__ = [
    "CaseView", "Decider", "DecisionInput", "DefinitionNotYetKnown", "DeliveryView", "assign_handler",
    "calendar_loaded", "decide", "decide_on_bus", "decide_task", "deem_overdue", "get_case", "get_task",
    "get_webhook", "list_deliveries", "list_tasks", "put_webhook", "queue_webhook", "reassign", "record_definition",
    "reload_calendar", "replay", "reopen_task", "start_case", "withdraw_case",
]
