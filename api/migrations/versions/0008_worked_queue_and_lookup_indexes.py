"""indexes for the grievances being worked, registry removals, the audit log by actor and the
outbox's errors, built without blocking writes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from api.migrations import online

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKED = "status IN ('open', 'in_progress', 'escalated')"


def upgrade() -> None:
    # The queue's tabs, the home page's counts and the escalation run read the grievances being
    # worked in due order: without these they walk every resolved grievance due before them.
    online.create_index("ix_grievances_worked_due", "grievances", ["due_at", "id"], where=WORKED)
    online.create_index(
        "ix_grievances_worked_assignee",
        "grievances",
        ["assigned_to", "due_at", "id"],
        where=WORKED,
    )
    # `rabta registry remove` unverifies the contacts of each batch of CNICs it removes.
    online.create_index(
        "ix_contacts_verified_cnic",
        "contacts",
        ["verified_cnic"],
        where="verified_cnic IS NOT NULL",
    )
    # The audit page narrowed to one member of staff, newest first.
    online.create_index("ix_audit_log_actor_at", "audit_log", ["actor", "at"])
    # `rabta outbox status`: the latest error of each channel and status.
    online.create_index(
        "ix_outbound_messages_errors",
        "outbound_messages",
        ["channel", "status", "id"],
        where="error IS NOT NULL",
    )


def downgrade() -> None:
    online.drop_index("ix_outbound_messages_errors", "outbound_messages")
    online.drop_index("ix_audit_log_actor_at", "audit_log")
    online.drop_index("ix_contacts_verified_cnic", "contacts")
    online.drop_index("ix_grievances_worked_assignee", "grievances")
    online.drop_index("ix_grievances_worked_due", "grievances")
