"""grievances: the draft a conversation filed, so that its confirmation files it once

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable with no default: PostgreSQL adds the column without rewriting the table, and
    # the unique index over a column of NULLs is built at once.
    with op.batch_alter_table("grievances") as batch:
        batch.add_column(sa.Column("draft_key", sa.String(32), nullable=True))
        batch.create_unique_constraint(op.f("uq_grievances_draft_key"), ["draft_key"])


def downgrade() -> None:
    with op.batch_alter_table("grievances") as batch:
        batch.drop_constraint(op.f("uq_grievances_draft_key"), type_="unique")
        batch.drop_column("draft_key")
