"""Efficacy's use cases, the one layer the routes, the consumers and the background jobs call. Each function runs
in the caller's transaction and writes state, events (outbox) and supervision items together; it raises
`shared.errors` problems, never HTTP types. One module per aggregate: clocks, cards (and the supervision queue),
calendar, ratings, complaints, reports."""

from services.efficacy.service import calendar, cards, clocks, complaints, ratings, reports
from services.efficacy.service.cards import Forecast, evaluate, evaluate_round, forecast
from services.efficacy.service.clocks import (
    as_instant,
    calendar_loaded,
    flag_access_anomaly,
    item_published,
    item_steps_changed,
    item_withdrawn,
    recompute_facts,
    recomputed_facts,
    record_case_event,
    record_case_events,
)
from services.efficacy.service.settings import current_config, policy_of, set_config

__all__ = [
    "Forecast", "as_instant", "calendar", "calendar_loaded", "cards", "clocks", "complaints", "current_config",
    "evaluate", "evaluate_round", "flag_access_anomaly", "forecast", "item_published", "item_steps_changed", "item_withdrawn",
    "policy_of", "ratings", "recompute_facts", "recomputed_facts", "record_case_event", "record_case_events",
    "reports", "set_config",
]
