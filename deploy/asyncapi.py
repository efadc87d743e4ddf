"""Writes `docs/asyncapi.yaml` from the services' own event contracts (`services/<name>/events/contracts.py`),
so the published description cannot drift from the code: `python -m deploy.asyncapi` (a test checks the file
is current)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from shared.settings import ROOT

#: What each service publishes: event type constant → payload model, both by name in its contracts module.
PUBLISHED: dict[str, dict[str, str]] = {
    "catalog": {"ITEM_PUBLISHED": "ItemPublished", "ITEM_WITHDRAWN": "ItemWithdrawn",
                "DEPARTMENT_UPSERTED": "DepartmentUpserted", "SERVICE_POINT_UPSERTED": "ServicePointUpserted"},
    "identity": {"PERSON_REGISTERED": "PersonRegistered", "ORGANISATION_REGISTERED": "OrganisationRegistered",
                 "DELEGATION_GRANTED": "DelegationChanged", "DELEGATION_REVOKED": "DelegationChanged",
                 "TOKENS_REVOKED": "TokensRevoked", "PERSON_ASSURANCE_RAISED": "PersonAssuranceRaised"},
    "intake": {"SUBMITTED": "Submitted", "ACCEPTED": "Accepted", "RETURNED": "Returned",
               "NOT_ACCEPTED": "NotAccepted", "WITHDRAWN": "Withdrawn", "CORRECTED": "Corrected",
               "DELIVERED": "Delivered", "VISIT_RECORDED": "VisitRecorded",
               "PAYMENT_REQUESTED": "PaymentRequested", "PAYMENT_CONFIRMED": "PaymentConfirmed",
               "READY_FOR_COLLECTION": "ReadyForCollection"},
    "workflow": {"TASK_ASSIGNED": "TaskAssigned", "TASK_DECIDED": "TaskDecided", "TASK_REOPENED": "TaskReopened",
                 "TASK_CANCELLED": "TaskCancelled", "STAGE_COMPLETED": "StageCompleted",
                 "APPLICATION_DECIDED": "ApplicationDecided", "DECISION_REFUSED": "DecisionRefused",
                 "TASK_HANDLER_ASSIGNED": "TaskHandlerAssigned", "JOINT_REVIEW_OPENED": "JointReviewOpened",
                 "JOINT_REVIEW_SCHEDULED": "JointReviewScheduled",
                 "JOINT_REVIEW_OPINION_RECORDED": "JointReviewOpinionRecorded",
                 "JOINT_REVIEW_CONSOLIDATED": "JointReviewConsolidated"},
    "datashare": {"CERTIFICATE_ISSUED": "CertificateIssued", "CERTIFICATE_REVOKED": "CertificateRevoked",
                  "ACCESS_ANOMALY": "AccessAnomaly", "CERTIFICATE_TYPE_UPSERTED": "CertificateTypeUpserted"},
    "efficacy": {"CARD_YELLOW": "CardRaised", "CARD_RED": "CardRaised", "RATING_BAD": "RatingBad",
                 "CALENDAR_LOADED": "CalendarLoaded"},
}

ENVELOPE = {
    "type": "object",
    "description": "CloudEvents 1.0, structured JSON mode, with the W3C traceparent extension.",
    "required": ["specversion", "id", "source", "type", "time", "data"],
    "properties": {
        "specversion": {"const": "1.0"}, "id": {"type": "string", "description": "Also the Nats-Msg-Id."},
        "source": {"type": "string", "example": "/yimen/intake"}, "type": {"type": "string"},
        "subject": {"type": "string", "description": "The id of the entity the event is about."},
        "time": {"type": "string", "format": "date-time"}, "datacontenttype": {"const": "application/json"},
        "dataschema": {"type": "string", "example": "urn:yimen:event:yimen.intake.application.accepted:v1"},
        "traceparent": {"type": "string"}, "data": {"type": "object"},
    },
}


def build() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"CloudEvent": ENVELOPE}
    for service, events in PUBLISHED.items():
        contracts = importlib.import_module(f"services.{service}.events.contracts")
        for const, model_name in events.items():
            event_type = getattr(contracts, const)
            model = getattr(contracts, model_name)
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schema_name = f"{service.capitalize()}{model_name}"
            schemas[schema_name] = schema
            key = event_type.replace(".", "_")
            messages[key] = {
                "name": event_type, "title": event_type, "contentType": "application/cloudevents+json",
                "summary": (model.__doc__ or "").strip().split("\n")[0] or event_type,
                "payload": {"allOf": [{"$ref": "#/components/schemas/CloudEvent"},
                                      {"type": "object", "properties": {
                                          "type": {"const": event_type},
                                          "data": {"$ref": f"#/components/schemas/{schema_name}"}}}]},
            }
            channels[key] = {"address": event_type, "messages": {key: {"$ref": f"#/components/messages/{key}"}}}
            operations[f"{service}_publishes_{key}"] = {
                "action": "send", "channel": {"$ref": f"#/channels/{key}"},
                "summary": f"{service} publishes through its outbox",
            }
    decision = "yimen_department_code_decision"
    channels[decision] = {
        "address": "yimen.department.{code}.decision",
        "parameters": {"code": {"description": "The deciding department's code, e.g. LD-WJJ."}},
        "messages": {decision: {"$ref": f"#/components/messages/{decision}"}},
    }
    messages[decision] = {
        "name": "yimen.department.<code>.decision", "contentType": "application/cloudevents+json",
        "summary": "A department system's decision on one of its tasks (same checks as the REST decision).",
        "payload": {"allOf": [{"$ref": "#/components/schemas/CloudEvent"}, {"type": "object", "properties": {
            "data": {"type": "object", "required": ["task_id", "outcome"], "properties": {
                "task_id": {"type": "string"},
                "outcome": {"enum": ["approve", "reject", "request_correction"]},
                "reasons": {"type": "array", "items": {"type": "string"}},
                "legal_basis": {"type": ["string", "null"]},
                "missing": {"type": "array", "items": {"type": "object"}},
                "decided_by": {"type": "object", "properties": {"name": {"type": "string"}}}}}}}]},
    }
    # Notify publishes nothing; it receives the events people are told about.
    notify = importlib.import_module("services.notify.events.contracts")
    for name in sorted(n for n in dir(notify) if n.isupper()):
        key = getattr(notify, name).replace(".", "_")
        if key in channels:
            operations[f"notify_receives_{key}"] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{key}"},
                "summary": "notify turns it into messages and live-stream steps"}
    operations["department_systems_send_decisions"] = {
        "action": "receive", "channel": {"$ref": f"#/channels/{decision}"},
        "summary": "workflow consumes department decisions"}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Yimen events", "version": "1.0.0",
                 "description": "Every event the Yimen services publish on NATS JetStream. The subject is the "
                                "event type (after the deployment's bus prefix); one stream captures `yimen.>`. "
                                "Generated by `python -m deploy.asyncapi` from the services' contracts."},
        "defaultContentType": "application/cloudevents+json",
        "servers": {"embedded": {"host": "127.0.0.1:4222", "protocol": "nats"}},
        "channels": channels, "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    return yaml.safe_dump(build(), sort_keys=False, allow_unicode=True, width=110)


def main() -> None:
    path = ROOT / "docs" / "asyncapi.yaml"
    Path(path).write_text(render())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
