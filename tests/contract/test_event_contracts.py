"""Consumer-driven contract check for events: every model a service declares for another service's event
(`shared.events.ConsumedEvent` with `consumes`) parses every example that the producer's AsyncAPI document
(`docs/asyncapi.yaml`, generated from the producers' published models and their examples) gives for that event
type. A producer that renames, drops or retypes a field some consumer requires fails here, before deployment;
so does a consumer that starts requiring a field no producer sends."""

from __future__ import annotations

import importlib
import re
from functools import cache
from typing import Any

import pytest
import yaml

from deploy.asyncapi import PUBLISHED
from shared.events import ConsumedEvent
from shared.settings import ROOT

CONSUMERS = ["catalog", "identity", "intake", "workflow", "datashare", "efficacy", "notify"]


@cache
def examples_by_type() -> dict[str, list[dict[str, Any]]]:
    """Event type → the example envelopes the AsyncAPI document gives for it."""
    doc = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    out: dict[str, list[dict[str, Any]]] = {}
    for message in doc["components"]["messages"].values():
        for example in message.get("examples", []):
            out.setdefault(example["payload"]["type"], []).append(example["payload"])
    return out


def consumed_models() -> list[tuple[str, type[ConsumedEvent], str]]:
    found: list[tuple[str, type[ConsumedEvent], str]] = []
    for service in CONSUMERS:
        contracts = importlib.import_module(f"services.{service}.events.contracts")
        for value in vars(contracts).values():
            if (isinstance(value, type) and issubclass(value, ConsumedEvent) and value.__module__ == contracts.__name__
                    and value.consumes):
                found += [(service, value, event_type) for event_type in value.consumes]
    return found


def matching(pattern: str) -> list[dict[str, Any]]:
    """The examples of `pattern` (NATS wildcards: `*` one token, `>` the rest)."""
    rx = re.compile("^" + re.escape(pattern).replace(r"\*", r"[^.]+").replace(r"\>", r".+") + "$")
    return [e for t, es in examples_by_type().items() if rx.match(t) for e in es]


CASES = consumed_models()


def test_every_consuming_service_declares_its_models_on_the_shared_base() -> None:
    assert {service for service, _m, _t in CASES} == set(CONSUMERS)


@pytest.mark.parametrize(("service", "model", "event_type"), CASES,
                         ids=[f"{s}.{m.__name__}<-{t}" for s, m, t in CASES])
def test_consumer_model_parses_every_producer_example(service: str, model: type[ConsumedEvent],
                                                      event_type: str) -> None:
    examples = matching(event_type)
    assert examples, f"{service}.{model.__name__} consumes {event_type}, which no producer documents with an example"
    for envelope in examples:
        model.model_validate(envelope["data"])  # raises, naming the field, when the producer's example breaks it


def test_every_published_message_has_an_example_valid_against_the_producer_model() -> None:
    for service, events in PUBLISHED.items():
        contracts = importlib.import_module(f"services.{service}.events.contracts")
        for const, model_name in events.items():
            examples = examples_by_type().get(getattr(contracts, const))
            assert examples, f"{service} publishes {getattr(contracts, const)} with no example"
            for envelope in examples:
                getattr(contracts, model_name).model_validate(envelope["data"])


def test_a_producer_dropping_a_required_field_is_caught() -> None:
    """The check bites: an example without a field a consumer requires does not parse."""
    from services.notify.events.contracts import Accepted

    example = dict(examples_by_type()["yimen.intake.application.accepted"][0]["data"])
    Accepted.model_validate(example)
    del example["receipt_number"]
    with pytest.raises(ValueError, match="receipt_number"):
        Accepted.model_validate(example)
