"""Writes `docs/asyncapi.yaml` from the services' own event contracts (`services/<name>/events/contracts.py`),
so the published description cannot drift from the code: `python -m deploy.asyncapi` (a test checks the file
is current).

Every message carries examples: the producer's published model declares them (`json_schema_extra`
`examples`, each valid against the model), and each is emitted wrapped in its CloudEvents envelope. A published
model without an example is an error here; the consumers' models are checked against these examples by
`tests/contract/test_event_contracts.py`."""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from typing import Any

import yaml

from shared.settings import ROOT

#: What each service publishes: event type constant → payload model, both by name in its contracts module.
PUBLISHED: dict[str, dict[str, str]] = {
    "catalog": {"ITEM_PUBLISHED": "ItemPublished", "ITEM_WITHDRAWN": "ItemWithdrawn",
                "DEPARTMENT_UPSERTED": "DepartmentUpserted", "SERVICE_POINT_UPSERTED": "ServicePointUpserted",
                "PROJECT_TYPE_PUBLISHED": "ProjectTypePublished"},
    "identity": {"PERSON_REGISTERED": "PersonRegistered", "ORGANISATION_REGISTERED": "OrganisationRegistered",
                 "DELEGATION_GRANTED": "DelegationChanged", "DELEGATION_REVOKED": "DelegationChanged",
                 "TOKENS_REVOKED": "TokensRevoked", "PERSON_ASSURANCE_RAISED": "PersonAssuranceRaised"},
    "intake": {"SUBMITTED": "Submitted", "ACCEPTED": "Accepted", "RETURNED": "Returned",
               "NOT_ACCEPTED": "NotAccepted", "WITHDRAWN": "Withdrawn", "CORRECTED": "Corrected",
               "DELIVERED": "Delivered", "VISIT_RECORDED": "VisitRecorded",
               "PAYMENT_REQUESTED": "PaymentRequested", "PAYMENT_CONFIRMED": "PaymentConfirmed",
               "READY_FOR_COLLECTION": "ReadyForCollection", "PROJECT_REGISTERED": "ProjectRegistered",
               "PROJECT_STAGE_ACCEPTED": "ProjectStageAccepted", "PROJECT_STAGE_COMPLETED": "ProjectStageCompleted",
               "PROJECT_COMPLETED": "ProjectCompleted"},
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


#: What a department system sends (it is not one of our services, so its example lives here).
DEPARTMENT_DECISION_EXAMPLE: dict[str, Any] = {
    "task_id": "9a8b7c6d5e4f30211203f4e5d6c7b8a9", "outcome": "request_correction",
    "reasons": ["平面图未标明功能分区"], "legal_basis": None,
    "missing": [{"material_code": "floor_plan", "reason": "请补充标明功能分区的经营场所平面图"}],
    "decided_by": {"name": "李四", "contact": "0766-3822315", "unit": "食品经营科"},
}


def _example(producer: str, event_type: str, n: int, data: dict[str, Any]) -> dict[str, Any]:
    """One message example: the producer's example data in the envelope the bus carries."""
    event_id = hashlib.sha256(f"{event_type}#{n}".encode()).hexdigest()[:32]
    return {
        "name": f"{event_type.rsplit('.', 2)[-2]}_{event_type.rsplit('.', 1)[-1]}_{n}",
        "payload": {
            "specversion": "1.0", "id": event_id, "source": f"/yimen/{producer}", "type": event_type,
            "time": "2026-11-26T02:00:00Z", "datacontenttype": "application/json",
            "dataschema": f"urn:yimen:event:{event_type}:v1", "data": data,
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
            examples = schema.pop("examples", None)
            if not examples:
                raise ValueError(f"{service}: {model_name} declares no examples (json_schema_extra)")
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
                "examples": [_example(service, event_type, n, data) for n, data in enumerate(examples, start=1)],
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
        "examples": [_example("department", "yimen.department.LD-SCJGJ.decision", 1, DEPARTMENT_DECISION_EXAMPLE)],
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
