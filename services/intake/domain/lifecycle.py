"""The life of an application (办件) as a state machine: which action may happen in which state."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    RETURNED = "returned"  # 补正 before acceptance
    NOT_ACCEPTED = "not_accepted"  # 不予受理
    ACCEPTED = "accepted"
    IN_REVIEW = "in_review"
    AWAITING_CORRECTION = "awaiting_correction"  # 补正 asked by a reviewing department; the clock pauses
    DECIDED = "decided"
    AWAITING_PAYMENT = "awaiting_payment"  # approved, the fee (收费) is due; delivery waits for the payment
    AWAITING_PICKUP = "awaiting_pickup"  # result issued, to be collected or posted (统一窗口出件)
    DELIVERED = "delivered"
    WITHDRAWN = "withdrawn"


class Action(StrEnum):
    EDIT = "edit"
    SUBMIT = "submit"
    ACCEPT = "accept"
    NOT_ACCEPT = "not_accept"
    RETURN = "return"
    WITHDRAW = "withdraw"
    REVIEW = "review"
    REQUEST_CORRECTION = "request_correction"
    CORRECT = "correct"
    DECIDE = "decide"
    DELIVER = "deliver"  # electronically on issue, or handed over by a clerk
    HAND_OVER = "hand_over"  # at the window or by post, by a clerk
    REQUEST_PAYMENT = "request_payment"  # the payment notice (缴款通知) after approval
    CONFIRM_PAYMENT = "confirm_payment"  # the payment platform confirmed


S, A = Status, Action
_ALLOWED: dict[Action, frozenset[Status]] = {
    A.EDIT: frozenset({S.DRAFT, S.RETURNED, S.AWAITING_CORRECTION}),
    A.SUBMIT: frozenset({S.DRAFT, S.RETURNED}),
    A.ACCEPT: frozenset({S.SUBMITTED}),
    A.NOT_ACCEPT: frozenset({S.SUBMITTED}),
    A.RETURN: frozenset({S.SUBMITTED}),
    A.WITHDRAW: frozenset({S.DRAFT, S.SUBMITTED, S.RETURNED, S.ACCEPTED, S.IN_REVIEW, S.AWAITING_CORRECTION}),
    A.REVIEW: frozenset({S.ACCEPTED, S.IN_REVIEW}),
    A.REQUEST_CORRECTION: frozenset({S.ACCEPTED, S.IN_REVIEW, S.AWAITING_CORRECTION}),
    A.CORRECT: frozenset({S.AWAITING_CORRECTION}),
    A.DECIDE: frozenset({S.ACCEPTED, S.IN_REVIEW, S.AWAITING_CORRECTION}),
    A.DELIVER: frozenset({S.DECIDED, S.AWAITING_PICKUP}),
    A.HAND_OVER: frozenset({S.AWAITING_PICKUP}),
    A.REQUEST_PAYMENT: frozenset({S.DECIDED}),
    A.CONFIRM_PAYMENT: frozenset({S.AWAITING_PAYMENT}),
}



def sources(action: Action) -> list[str]:
    """The states `action` may start from (for compare-and-set updates)."""
    return sorted(s.value for s in _ALLOWED[action])

#: States in which the applicant has something to do (what awaits me).
AWAITING_APPLICANT = frozenset({S.DRAFT, S.RETURNED, S.AWAITING_CORRECTION, S.AWAITING_PAYMENT, S.AWAITING_PICKUP})


class IllegalTransition(Exception):
    def __init__(self, status: str, action: Action) -> None:
        super().__init__(f"An application in state '{status}' cannot {action.value.replace('_', ' ')}.")
        self.status, self.action = status, action


def may(status: str, action: Action) -> bool:
    return Status(status) in _ALLOWED[action]


def ensure(status: str, action: Action) -> None:
    if not may(status, action):
        raise IllegalTransition(status, action)
