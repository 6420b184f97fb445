"""Schema changes that leave a deployed database serving while they run.

A plain `CREATE INDEX` holds a SHARE lock on its table until the build ends: every INSERT,
UPDATE and DELETE on it waits, and on a national registry's tables a build takes minutes
(docs/deployment.md, "Upgrading"). PostgreSQL's `CREATE INDEX CONCURRENTLY` lets writes go on
while it builds, but refuses to run inside a transaction block, so `create_index` runs it in
Alembic's autocommit block: the migration's transaction so far is committed first, and the
index is built in autocommit (api/migrations/env.py gives each migration its own transaction,
so that commit is of this migration only). A concurrent build that was interrupted (a
restart, a cancelled statement) leaves an INVALID index behind that is still updated on every
write and used by no query: the next run drops it and builds it again. An empty table (a new
database) and SQLite, which has no concurrent builds and a single writer anyway, get a plain
`CREATE INDEX`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


def create_index(
    name: str, table: str, columns: Sequence[str | sa.TextClause], *, where: str | None = None
) -> None:
    """Create index `name` on `table` (partial when `where` is given; a column may be an
    expression, `sa.text("lower(district)")`) without blocking writes."""
    predicate = sa.text(where) if where else None
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        op.create_index(name, table, list(columns), sqlite_where=predicate)
        return
    if not bind.scalar(sa.select(sa.exists().select_from(sa.table(table)))):
        # An empty table (a new database): a plain build in the migration's transaction takes
        # a moment, where a concurrent one would wait for every other transaction to end.
        op.create_index(name, table, list(columns), postgresql_where=predicate)
        return
    with op.get_context().autocommit_block():
        valid = op.get_bind().scalar(
            sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
            {"name": name},
        )
        if valid:
            return  # built by an earlier run that stopped before recording its revision
        if valid is not None:
            op.drop_index(name, table_name=table, postgresql_concurrently=True)
        op.create_index(
            name, table, list(columns), postgresql_where=predicate, postgresql_concurrently=True
        )


def drop_index(name: str, table: str) -> None:
    """Drop index `name` of `table` without blocking reads or writes (PostgreSQL)."""
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
