"""contacts.opted_out_by: why a contact is opted out (STOP, the carrier's 21610, the Telegram
bot blocked), so that unblocking the bot undoes a block and nothing else

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable and without a default: PostgreSQL adds it to the catalog only, however many
    # contacts there are. The rows opted out before it stay NULL, which reads as a STOP: an
    # unblock never opts them back in, and only START does, as before.
    op.add_column("contacts", sa.Column("opted_out_by", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("contacts", "opted_out_by")
