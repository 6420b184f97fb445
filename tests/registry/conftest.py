"""Helpers for the registry tests: dump the four tables, write CSV extracts."""

from __future__ import annotations

import csv
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from api.db import Database

KEYS = {
    "households": "household_id",
    "persons": "cnic",
    "enrollments": "cnic, programme",
    "payments": "payment_id",
}

Dump = dict[str, list[tuple[Any, ...]]]


async def dump_registry(db: Database) -> Dump:
    """Every row of the four registry tables, in key order."""
    dump: Dump = {}
    async with db.engine.connect() as conn:
        for table, key in KEYS.items():
            rows = await conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))
            dump[table] = [tuple(_plain(v) for v in row) for row in rows]
    return dump


def _plain(value: Any) -> Any:
    # SQLite hands back dates as strings and scores as floats; compare them as text.
    return None if value is None else str(value) if not isinstance(value, float) else f"{value:.2f}"


@pytest.fixture
def dump() -> Callable[[Database], Awaitable[Dump]]:
    return dump_registry


def write_csv(
    path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]], *, bom: bool = False
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
