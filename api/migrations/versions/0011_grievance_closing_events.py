"""grievance_events: the resolutions and rejections by time, for the dashboard's grievances
closed in its period (in place of grievances by status and last change, which a note on one
closed long ago brought back into the period)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from api.migrations import online

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLOSING = "to_status IN ('resolved', 'rejected')"


def upgrade() -> None:
    # Built without blocking writes: every status change and note writes grievance_events.
    online.create_index("ix_grievance_events_closing_at", "grievance_events", ["at"], where=CLOSING)
    online.drop_index("ix_grievances_closed_updated", "grievances")


def downgrade() -> None:
    online.create_index(
        "ix_grievances_closed_updated",
        "grievances",
        ["status", "updated_at"],
        where="status IN ('resolved', 'rejected')",
    )
    online.drop_index("ix_grievance_events_closing_at", "grievance_events")
