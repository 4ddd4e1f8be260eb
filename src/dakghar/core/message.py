"""The message model: types, statuses and the one rule that statuses never move backwards.

Every status change anywhere in Dakghar (API cancel, dispatcher, delivery reports, expiry) goes
through :func:`can_transition`, so "status never moves backwards" (API.md) is enforced in one place.
The store applies it atomically together with the append-only event history.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Lane(IntEnum):
    """A priority lane of the queue, most urgent first; stored as its number."""

    OTP = 0
    TRANSACTIONAL = 1
    PROMOTIONAL = 2

    @property
    def label(self) -> str:
        """The lane's name in metrics, alerts and the dashboard (the message type it carries)."""
        return self.name.lower()

    @classmethod
    def named(cls, label: str) -> Lane:
        """The lane called ``label`` (``otp``, ``transactional``, ``promotional``)."""
        return cls[label.upper()]


LANES = tuple(Lane)


class MessageType(StrEnum):
    """Message type; it decides the priority lane (otp > transactional > promotional)."""

    OTP = "otp"
    TRANSACTIONAL = "transactional"
    PROMOTIONAL = "promotional"

    @property
    def lane(self) -> Lane:
        """The queue lane of this type."""
        return Lane.named(self.value)


class Status(StrEnum):
    """Message status (API.md lifecycle)."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        """True when nothing can happen to the message any more."""
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        Status.DELIVERED,
        Status.UNDELIVERED,
        Status.EXPIRED,
        Status.REJECTED,
        Status.FAILED,
        Status.CANCELED,
    }
)

# Final statuses that count as a failure (delivery rate, campaign and dashboard counts).
FAILED_STATUSES = FINAL_STATUSES - {Status.DELIVERED, Status.CANCELED}

# Rank along the lifecycle; a move must go strictly forward in rank, and nothing leaves a final
# status. A retry after a temporary failure is not a move: the message stays ``sending`` and the
# attempt is recorded as an event (see :func:`is_retry_note`), so no reader ever sees it go back.
_RANK = {
    Status.SCHEDULED: 0,
    Status.QUEUED: 1,
    Status.SENDING: 2,
    Status.SENT: 3,
}
CANCELABLE = frozenset({Status.SCHEDULED, Status.QUEUED})


def can_transition(current: Status, new: Status) -> bool:
    """Whether a message may move from ``current`` to ``new`` (strictly forward)."""
    if current in FINAL_STATUSES:
        return False
    if new in FINAL_STATUSES:
        # A late delivery report may settle a message that is still SENDING on our side.
        return not (new is Status.CANCELED and current not in CANCELABLE)
    return _RANK[new] > _RANK[current]


def is_retry_note(current: Status, new: Status) -> bool:
    """A ``sending`` message recorded again as ``sending``: a retry event, not a status change."""
    return current is Status.SENDING and new is Status.SENDING


class WebhookEvents(StrEnum):
    """Which status changes an account's webhooks carry (API.md "Delivery webhooks")."""

    FINAL = "final"  # one per message, at its final status (the default)
    SENT = "sent"  # also when the carrier accepts it
    ALL = "all"  # every status change

    def wants(self, status: Status) -> bool:
        """Whether a change to ``status`` is POSTed under this setting."""
        if status in FINAL_STATUSES:
            return True
        if self is WebhookEvents.SENT:
            return status is Status.SENT
        return self is WebhookEvents.ALL


class ErrorCode(StrEnum):
    """Failure reasons on a message after acceptance (API.md)."""

    CARRIER_REJECTED = "carrier_rejected"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    NO_ROUTE = "no_route"
    CONNECTOR_UNAVAILABLE = "connector_unavailable"
    INVALID_NUMBER = "invalid_number"
    DND_BLOCKED = "dnd_blocked"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    CANCELED = "canceled"
