"""the dashboard's hourly traffic counts (inbound_traffic) and an index for the grievances it
shows as closed in its period

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from api.migrations import online

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A new table: nothing waits for it. `rabta worker` fills it (the dashboard reads what it
    # has not counted yet from inbound_messages, so the figures are right before it does).
    op.create_table(
        "inbound_traffic",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=True),
        sa.Column("intent", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("messages", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_traffic")),
    )
    op.create_index("ix_inbound_traffic_starts_at", "inbound_traffic", ["starts_at"])
    online.create_index(
        "ix_grievances_closed_updated",
        "grievances",
        ["status", "updated_at"],
        where="status IN ('resolved', 'rejected')",
    )


def downgrade() -> None:
    online.drop_index("ix_grievances_closed_updated", "grievances")
    op.drop_index("ix_inbound_traffic_starts_at", table_name="inbound_traffic")
    op.drop_table("inbound_traffic")
