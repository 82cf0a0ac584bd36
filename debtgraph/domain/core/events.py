"""The event catalogue: every event type the domain raises, what it is about and who may see it.

One list, read by the outbox (which refuses a type missing here), the subscriptions and the
webhooks. The core sits below the areas, so it names the receivable statuses literally; a unit
test holds ``receivable.<status>`` equal to the area's ``ReceivableStatus``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Audience(enum.StrEnum):
    """Who, besides operators, may see an event."""

    # Operators only: uploads, debtors, VOP logs and billing belong to the operator API.
    OPERATOR = "operator"
    # Also the owning creditor (``user_id``) and platforms reaching it (``platform_id``, grants).
    OWNER = "owner"


@dataclass(frozen=True, slots=True)
class EventType:
    """One catalogued event type."""

    type: str
    object_type: str
    audience: Audience
    description: str


_RECEIVABLE_STATUSES = (
    "pending",
    "in_process",
    "payment_received",
    "recovered",
    "disputed",
    "evidence_requested",
    "cancelled",
)

CATALOGUE: dict[str, EventType] = {
    e.type: e
    for e in (
        EventType("receivable.created", "receivable", Audience.OWNER, "A receivable was created."),
        EventType(
            "receivable.status_changed",
            "receivable",
            Audience.OWNER,
            "A receivable's status changed (also raised as receivable.<new status>).",
        ),
        *(
            EventType(
                f"receivable.{status}",
                "receivable",
                Audience.OWNER,
                f"A receivable's status became {status}.",
            )
            for status in _RECEIVABLE_STATUSES
        ),
        EventType("user.updated", "user", Audience.OWNER, "A creditor user's data changed."),
        EventType(
            "webhook.disabled",
            "webhook",
            Audience.OWNER,
            "A webhook endpoint was disabled after failing every delivery for days.",
        ),
        EventType("upload.progress", "upload", Audience.OPERATOR, "An upload processed a step."),
        EventType("upload.completed", "upload", Audience.OPERATOR, "An upload completed."),
        EventType("upload.failed", "upload", Audience.OPERATOR, "An upload failed."),
        EventType("upload.validated", "upload", Audience.OPERATOR, "An upload was revalidated."),
        EventType(
            "debtor.status_changed", "debtor", Audience.OPERATOR, "A debtor's status changed."
        ),
        EventType(
            "debtor.validated", "debtor", Audience.OPERATOR, "A debtor's validation changed."
        ),
        EventType("vop_log.created", "vop_log", Audience.OPERATOR, "A VOP check was logged."),
        EventType(
            "billing_attempt.updated",
            "billing_attempt",
            Audience.OPERATOR,
            "A billing attempt was created or changed status.",
        ),
    )
}

RECEIVABLE_STATUS_EVENTS = tuple(f"receivable.{s}" for s in _RECEIVABLE_STATUSES)
UPLOAD_EVENTS = ("upload.progress", "upload.completed", "upload.failed", "upload.validated")
DEBTOR_EVENTS = ("debtor.status_changed", "debtor.validated")


class UnknownEventType(ValueError):
    """A state change tried to raise an event type the catalogue does not list (a bug)."""


def event_type(type: str, object_type: str) -> EventType:
    """The catalogued type, checking the object type it names; raises UnknownEventType."""
    entry = CATALOGUE.get(type)
    if entry is None:
        raise UnknownEventType(f"{type!r} is not in the event catalogue")
    if entry.object_type != object_type:
        raise UnknownEventType(f"{type!r} is about a {entry.object_type}, not a {object_type}")
    return entry
