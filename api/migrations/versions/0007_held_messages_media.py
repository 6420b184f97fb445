"""held messages: whether one carried a voice note, photo, file or location

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table, and the rows
    # held before it are read as the text they hold, as they were before.
    with op.batch_alter_table("held_messages") as batch:
        batch.add_column(
            sa.Column("media", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("held_messages") as batch:
        batch.drop_column("media")
