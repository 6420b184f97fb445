"""grievances by district as a supervisor filters the queue (lower(district)), in due order: the
worked tabs' through their own partial index, the Closed tab's through one over all

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa

from api.migrations import online

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKED = "status IN ('open', 'in_progress', 'escalated')"


def upgrade() -> None:
    # Built without blocking writes: the console and the bots file and change grievances.
    by_district: list[str | sa.TextClause] = [sa.text("lower(district)"), "due_at", "id"]
    online.create_index("ix_grievances_worked_district", "grievances", by_district, where=WORKED)
    online.create_index("ix_grievances_district_due", "grievances", by_district)


def downgrade() -> None:
    online.drop_index("ix_grievances_district_due", "grievances")
    online.drop_index("ix_grievances_worked_district", "grievances")
