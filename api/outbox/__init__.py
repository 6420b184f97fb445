"""The durable outbox: messages written in their cause's transaction, delivered by workers."""

from api.outbox.senders import (
    PermanentSendError,
    RetryableSendError,
    Sender,
    Senders,
    SendResult,
    build_senders,
)
from api.outbox.service import (
    DeliveryReport,
    claim_batch,
    deliver_due,
    enqueue,
    record_status,
)

__all__ = [
    "DeliveryReport",
    "PermanentSendError",
    "RetryableSendError",
    "SendResult",
    "Sender",
    "Senders",
    "build_senders",
    "claim_batch",
    "deliver_due",
    "enqueue",
    "record_status",
]
