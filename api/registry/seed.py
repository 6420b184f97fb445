"""A deterministic synthetic registry (households, persons, enrollments, payments) for demos,
tests and benchmarks, from a thousand to ten million households with flat memory."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from bisect import bisect
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from random import Random
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db import Database, is_postgres
from api.registry import geography
from api.registry.models import REGISTRY_TABLES, Base

#: Dates are generated relative to this day, never to today, so a seed always gives the same rows.
REFERENCE_DATE = dt.date(2026, 11, 23)
#: Households generated and written per round trip: memory stays flat at any size.
CHUNK_HOUSEHOLDS = 10_000
#: The largest registry generated (SPEC §7); each district's CNIC serials last well beyond it.
MAX_HOUSEHOLDS = 10_000_000

HOUSEHOLD_COLUMNS = (
    "household_id",
    "pmt_score",
    "province",
    "district",
    "tehsil",
    "survey_date",
    "status",
)
PERSON_COLUMNS = (
    "cnic",
    "household_id",
    "full_name",
    "gender",
    "birth_date",
    "relation",
    "mobile",
    "cnic_expiry",
)
ENROLLMENT_COLUMNS = ("cnic", "programme", "status", "since")
PAYMENT_COLUMNS = (
    "payment_id",
    "cnic",
    "programme",
    "tranche",
    "amount_pkr",
    "window_start",
    "window_end",
    "mode",
    "place",
    "status",
    "reason",
)
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "households": HOUSEHOLD_COLUMNS,
    "persons": PERSON_COLUMNS,
    "enrollments": ENROLLMENT_COLUMNS,
    "payments": PAYMENT_COLUMNS,
}

#: Share of households at or below the PMT cut-off (the programme reaches roughly the poorest 29%).
ELIGIBLE_SHARE = 0.29
UNDER_REVIEW_SHARE = 0.03

# Operator prefixes (PROTOCOLS §6) weighted roughly by subscribers: Jazz, Zong, Ufone, Telenor.
_MOBILE_PREFIXES: tuple[tuple[str, float], ...] = (
    *((f"30{d}", 3.0) for d in range(10)),
    *((f"31{d}", 2.0) for d in range(9)),
    *((f"32{d}", 2.0) for d in range(6)),
    *((f"33{d}", 1.5) for d in range(8)),
    *((f"34{d}", 2.5) for d in range(8)),
)
# Odd multipliers not divisible by 5 permute 0..10**7-1, so a counter maps to a unique serial
# that does not look sequential, without remembering the numbers already handed out.
_SERIAL_MULTIPLIER = 3_852_477
_MOBILE_MULTIPLIER = 6_089_123
_SERIALS = 10_000_000

_HOUSEHOLD_SIZES = (1, 2, 3, 4, 5, 6, 7, 8)
_HOUSEHOLD_SIZE_WEIGHTS = (0.03, 0.07, 0.10, 0.13, 0.16, 0.18, 0.17, 0.16)
_MAX_ADULTS = 5

_AMOUNT_BEFORE_FY27 = 13_500
_AMOUNT_FROM_FY27 = 14_500
_FY27_START = dt.date(2026, 7, 1)

_MODES = ("retailer", "campsite", "bank")
_MODE_WEIGHTS = (0.42, 0.40, 0.18)
_FAILED_REASONS = (
    "biometric verification failed",
    "biometric verification failed",
    "network outage at collection point",
)
_WITHHELD_REASONS = (
    "account dormant",
    "under review",
    "biometric verification failed",
    "duplicate claim check",
)


class RegistryNotEmpty(RuntimeError):
    """The registry already holds households and `replace` was not asked for."""


@dataclass
class SeedReport:
    """Rows written per table and how long it took."""

    households: int = 0
    persons: int = 0
    enrollments: int = 0
    payments: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return self.households + self.persons + self.enrollments + self.payments

    def per_table(self) -> dict[str, int]:
        """Rows per registry table, in load order."""
        return {
            "households": self.households,
            "persons": self.persons,
            "enrollments": self.enrollments,
            "payments": self.payments,
        }


@dataclass(frozen=True, slots=True)
class SampleCnic:
    """A CNIC to try in a demo, with what the bot will say about it."""

    cnic: str
    status: str
    full_name: str
    mobile: str | None


@dataclass(slots=True)
class _Chunk:
    households: list[tuple[Any, ...]] = field(default_factory=list)
    persons: list[tuple[Any, ...]] = field(default_factory=list)
    enrollments: list[tuple[Any, ...]] = field(default_factory=list)
    payments: list[tuple[Any, ...]] = field(default_factory=list)

    def tables(self) -> tuple[tuple[str, list[tuple[Any, ...]]], ...]:
        return (
            ("households", self.households),
            ("persons", self.persons),
            ("enrollments", self.enrollments),
            ("payments", self.payments),
        )


@dataclass(slots=True)
class _DistrictState:
    province: geography.Province
    district: geography.District
    names: geography.NameSet
    cnic_prefix: str
    serial_offset: int
    serials_used: int
    windows: tuple[tuple[str, dt.date, dt.date, int], ...]


@dataclass(slots=True)
class _Member:
    relation: str
    gender: str
    age: int


def _quarter(day: dt.date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def _tranches(reference: dt.date) -> list[tuple[int, int]]:
    """The four quarters up to and including the reference date's, and the next one."""
    year, quarter = _quarter(reference)
    index = year * 4 + quarter - 1
    return [((i // 4), (i % 4) + 1) for i in range(index - 3, index + 2)]


class _Synthesiser:
    """Generates households one after another from a single seeded random stream."""

    def __init__(self, seed: int, cutoff: float, reference: dt.date) -> None:
        self.rng = Random(seed)  # noqa: S311 - synthetic data, reproducible by design
        self.cutoff = cutoff
        self.reference = reference
        self.reference_ordinal = reference.toordinal()
        rng = self.rng
        tranches = _tranches(reference)
        self.districts: list[_DistrictState] = []
        for province in geography.PROVINCES:
            for district in province.districts:
                # Disbursement runs in phases: each district's window opens on its own day.
                phase = rng.randint(0, 20)
                windows = []
                for year, quarter in tranches:
                    start = dt.date(year, 3 * quarter - 1, 1) + dt.timedelta(days=phase)
                    amount = _AMOUNT_FROM_FY27 if start >= _FY27_START else _AMOUNT_BEFORE_FY27
                    windows.append(
                        (f"{year}-Q{quarter}", start, start + dt.timedelta(days=29), amount)
                    )
                self.districts.append(
                    _DistrictState(
                        province=province,
                        district=district,
                        names=geography.NAME_SETS[district.names or province.names],
                        cnic_prefix=f"{province.cnic_code}{district.code}",
                        serial_offset=rng.randrange(_SERIALS),
                        serials_used=0,
                        windows=tuple(windows),
                    )
                )
        self.district_weights = list(accumulate(s.district.population for s in self.districts))
        self.size_weights = list(accumulate(_HOUSEHOLD_SIZE_WEIGHTS))
        self.mode_weights = list(accumulate(_MODE_WEIGHTS))
        self.prefixes = [p for p, _ in _MOBILE_PREFIXES]
        self.prefix_weights = list(accumulate(w for _, w in _MOBILE_PREFIXES))
        self.prefix_used = [0] * len(self.prefixes)
        self.prefix_offsets = [rng.randrange(_SERIALS) for _ in self.prefixes]
        self.households_done = 0
        self.payments_done = 0
        self.date_cache: dict[int, dt.date] = {}

    def _date(self, ordinal: int) -> dt.date:
        cached = self.date_cache.get(ordinal)
        if cached is None:
            cached = self.date_cache[ordinal] = dt.date.fromordinal(ordinal)
        return cached

    def _cnic(self, state: _DistrictState, gender: str) -> str:
        serial = (state.serials_used * _SERIAL_MULTIPLIER + state.serial_offset) % _SERIALS
        state.serials_used += 1
        if state.serials_used > _SERIALS:
            raise RuntimeError(f"more than {_SERIALS:,} persons in {state.district.name}")
        # NADRA's convention: odd last digit for a man, even for a woman; never 0.
        last = self.rng.choice("13579" if gender == "M" else "2468")
        return f"{state.cnic_prefix}{serial:07d}{last}"

    def _mobile(self) -> str:
        index = bisect(self.prefix_weights, self.rng.random() * self.prefix_weights[-1])
        used = self.prefix_used[index]
        self.prefix_used[index] = used + 1
        number = (used * _MOBILE_MULTIPLIER + self.prefix_offsets[index]) % _SERIALS
        return f"+92{self.prefixes[index]}{number:07d}"

    def _pmt(self) -> float:
        rng = self.rng
        cutoff = self.cutoff
        if rng.random() < ELIGIBLE_SHARE:
            # Few households are near zero; most eligible ones sit in the upper half below it.
            return round(cutoff * rng.betavariate(2.6, 1.5), 2)
        score = round(cutoff + (100.0 - cutoff) * rng.betavariate(1.3, 2.8), 2)
        return score if score > cutoff else round(cutoff + 0.01, 2)

    def _members(self) -> tuple[list[_Member], int, int]:
        """Adults (head first) and the counts of children under two and of school age."""
        rng = self.rng
        size = _HOUSEHOLD_SIZES[bisect(self.size_weights, rng.random() * self.size_weights[-1])]
        female_head = rng.random() < 0.14
        head_age = 20 + int(rng.betavariate(2.0, 3.2) * 58)
        head = _Member("head", "F" if female_head else "M", head_age)
        adults = [head]
        remaining = size - 1
        mother_age = head_age if female_head else 0
        if remaining and rng.random() < (0.12 if female_head else 0.9):
            if female_head:
                spouse_age = head_age + rng.randint(0, 8)
                adults.append(_Member("spouse", "M", spouse_age))
            else:
                spouse_age = max(18, head_age - rng.randint(0, 10))
                adults.append(_Member("spouse", "F", spouse_age))
                mother_age = spouse_age
            remaining -= 1
        if remaining and head_age < 50 and rng.random() < 0.15:
            parent_age = head_age + rng.randint(20, 32)
            if rng.random() < 0.75:
                adults.append(_Member("mother", "F", parent_age))
            else:
                adults.append(_Member("father", "M", parent_age))
            remaining -= 1
        young = school = 0
        oldest_child = max(0, (mother_age or head_age) - 17)
        for _ in range(remaining):
            age = rng.randint(0, min(oldest_child, 32))
            if age >= 18 and len(adults) < _MAX_ADULTS:
                gender = "M" if rng.random() < 0.5 else "F"
                adults.append(_Member("son" if gender == "M" else "daughter", gender, age))
                if gender == "M" and age >= 22 and len(adults) < _MAX_ADULTS:
                    if rng.random() < 0.35:
                        adults.append(
                            _Member("daughter_in_law", "F", max(18, age - rng.randint(0, 5)))
                        )
                        if rng.random() < 0.5:
                            young += 1
                continue
            age = min(age, 17)
            if age < 2:
                young += 1
            elif 5 <= age <= 16:
                school += 1
        return adults, young, school

    def _name(self, names: geography.NameSet, gender: str, family: str) -> str:
        rng = self.rng
        roll = rng.random()
        if gender == "M":
            given = names.male[int(rng.random() * len(names.male))]
            return given if roll < 0.25 else f"{given} {family}"
        given = names.female[int(rng.random() * len(names.female))]
        if roll < 0.2 and not given.endswith(("Bibi", "Mai")) and not given.startswith("Bibi"):
            return f"{given} Bibi"
        return given if roll < 0.5 else f"{given} {family}"

    def chunk(self, households: int) -> _Chunk:
        """The next `households` households and everything that hangs off them."""
        chunk = _Chunk()
        for _ in range(households):
            self.household(chunk)
        return chunk

    def household(self, chunk: _Chunk) -> None:
        """Append one household and everything that hangs off it to `chunk`."""
        rng = self.rng
        random = rng.random
        ref = self.reference_ordinal
        state = self.districts[bisect(self.district_weights, random() * self.district_weights[-1])]
        district = state.district
        self.households_done += 1
        household_id = f"HH-{state.province.abbreviation}-{self.households_done:08d}"
        tehsil = district.tehsils[int(random() * len(district.tehsils))]
        under_review = random() < UNDER_REVIEW_SHARE
        pmt = self._pmt()
        survey_ordinal = ref - rng.randint(150, 6 * 365)
        chunk.households.append(
            (
                household_id,
                pmt,
                state.province.name,
                district.name,
                tehsil,
                self._date(survey_ordinal),
                "under_review" if under_review else "active",
            )
        )

        adults, young, school = self._members()
        family = state.names.family[int(random() * len(state.names.family))]
        head_mobile: str | None = None
        recipient: tuple[str, _Member, dt.date | None] | None = None
        for member in adults:
            cnic = self._cnic(state, member.gender)
            birth = ref - int(member.age * 365.25) - rng.randint(1, 364)
            if member.age >= 62 and random() < 0.6:
                expiry = None  # NADRA issues CNICs without expiry to senior citizens
            else:
                expiry = self._date(ref + rng.randint(-200, 3650))
            if member.relation == "head":
                head_mobile = self._mobile() if random() < 0.92 else None
                mobile = head_mobile
            else:
                roll = random()
                share = 0.5 if member.relation == "spouse" else 0.35
                if roll < share:
                    mobile = head_mobile
                elif roll < 0.9:
                    mobile = self._mobile()
                else:
                    mobile = None
            chunk.persons.append(
                (
                    cnic,
                    household_id,
                    self._name(state.names, member.gender, family),
                    member.gender,
                    self._date(birth),
                    member.relation,
                    mobile,
                    expiry,
                )
            )
            if member.gender == "F" and (
                recipient is None
                or _RECIPIENT_RANK[member.relation] < _RECIPIENT_RANK[recipient[1].relation]
            ):
                recipient = (cnic, member, expiry)

        if recipient is None:
            return
        cnic, woman, expiry = recipient
        if pmt > self.cutoff:
            # Households re-surveyed above the cut-off have left the programme.
            if random() < 0.08:
                since = self._date(survey_ordinal - rng.randint(400, 1500))
                chunk.enrollments.append((cnic, "kafaalat", "exited", since))
            return
        self._enroll(chunk, state, cnic, woman, expiry, survey_ordinal, under_review, young, school)

    def _enroll(
        self,
        chunk: _Chunk,
        state: _DistrictState,
        cnic: str,
        woman: _Member,
        expiry: dt.date | None,
        survey_ordinal: int,
        under_review: bool,
        young: int,
        school: int,
    ) -> None:
        rng = self.rng
        random = rng.random
        ref = self.reference_ordinal
        roll = random()
        if under_review:
            status = "suspended" if roll < 0.7 else "pending"
        elif roll < 0.86:
            status = "active"
        elif roll < 0.90:
            status = "suspended"
        elif roll < 0.96:
            status = "pending"
        else:
            status = "exited"
        if status == "pending":
            since_ordinal = ref - rng.randint(5, 120)
        else:
            since_ordinal = min(ref - 30, survey_ordinal + rng.randint(30, 400))
        chunk.enrollments.append((cnic, "kafaalat", status, self._date(since_ordinal)))
        if young and woman.age < 45 and random() < 0.55:
            roll = random()
            nashonuma = "active" if roll < 0.7 else "pending" if roll < 0.85 else "exited"
            chunk.enrollments.append(
                (cnic, "nashonuma", nashonuma, self._date(ref - rng.randint(20, 700)))
            )
        if school and random() < 0.5:
            roll = random()
            wazaif = "active" if roll < 0.85 else "suspended" if roll < 0.95 else "exited"
            chunk.enrollments.append(
                (cnic, "taleemi_wazaif", wazaif, self._date(ref - rng.randint(60, 1500)))
            )
        if status in ("active", "suspended"):
            self._payments(chunk, state, cnic, status, expiry, since_ordinal, under_review)

    def _payments(
        self,
        chunk: _Chunk,
        state: _DistrictState,
        cnic: str,
        status: str,
        expiry: dt.date | None,
        since_ordinal: int,
        under_review: bool,
    ) -> None:
        rng = self.rng
        random = rng.random
        reference = self.reference
        since = self._date(since_ordinal)
        mode = _MODES[bisect(self.mode_weights, random() * self.mode_weights[-1])]
        tehsil = state.district.tehsils[int(random() * len(state.district.tehsils))]
        if mode == "bank":
            place = geography.bank_place(
                rng.choice(geography.BANKS), rng.choice(geography.BRANCHES), tehsil
            )
        elif mode == "campsite":
            place = geography.campsite_place(rng.choice(geography.CAMPSITES), tehsil)
        else:
            place = geography.retailer_place(
                rng.choice(geography.RETAILERS), rng.choice(geography.MARKETS), tehsil
            )
        withheld_from = len(state.windows)
        withheld_reason = ""
        if status == "suspended":
            withheld_from = rng.randint(1, len(state.windows) - 1)
            withheld_reason = "under review" if under_review else rng.choice(_WITHHELD_REASONS[:3])
        for index, (tranche, start, end, amount) in enumerate(state.windows):
            if start < since:
                continue
            reason: str | None = None
            if expiry is not None and expiry < start:
                pay_status, reason = "withheld", "CNIC expired"
            elif index >= withheld_from:
                pay_status, reason = "withheld", withheld_reason
            elif end < reference:
                roll = random()
                if roll < 0.92:
                    pay_status = "collected"
                elif roll < 0.95:
                    pay_status, reason = "failed", rng.choice(_FAILED_REASONS)
                else:
                    pay_status, reason = "withheld", rng.choice(_WITHHELD_REASONS)
            elif start <= reference:
                roll = random()
                if roll < 0.40:
                    pay_status = "collected"
                elif roll < 0.90:
                    pay_status = "ready"
                elif roll < 0.94:
                    pay_status, reason = "failed", rng.choice(_FAILED_REASONS)
                else:
                    pay_status, reason = "withheld", rng.choice(_WITHHELD_REASONS)
            elif random() < 0.97:
                pay_status = "scheduled"
            else:
                pay_status, reason = "withheld", "under review"
            self.payments_done += 1
            chunk.payments.append(
                (
                    f"PAY-{tranche}-{self.payments_done:09d}",
                    cnic,
                    "kafaalat",
                    tranche,
                    amount,
                    start,
                    end,
                    mode,
                    place,
                    pay_status,
                    reason,
                )
            )


#: Who in a household receives Kafaalat: the wife first, then a woman heading it, and so on.
_RECIPIENT_RANK = {
    "spouse": 0,
    "head": 1,
    "daughter_in_law": 2,
    "mother": 3,
    "daughter": 4,
    "son": 9,
    "father": 9,
}


async def registry_is_empty(db: Database) -> bool:
    """True when none of the four registry tables holds a row."""
    async with db.engine.connect() as conn:
        return await _is_empty(conn)


async def _is_empty(conn: AsyncConnection) -> bool:
    for table in REGISTRY_TABLES:
        row = (await conn.execute(text(f"SELECT 1 FROM {table} LIMIT 1"))).first()  # noqa: S608
        if row is not None:
            return False
    return True


async def clear_registry(conn: AsyncConnection) -> None:
    """Delete every row of the four registry tables inside the caller's transaction."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("TRUNCATE payments, enrollments, persons, households"))
    else:
        for table in reversed(REGISTRY_TABLES):
            await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608


async def seed_registry(
    db: Database,
    *,
    households: int,
    seed: int = 1,
    cutoff: float = 32.0,
    progress: Callable[[int], None] | None = None,
    replace: bool = False,
    reference_date: dt.date = REFERENCE_DATE,
) -> SeedReport:
    """Write `households` synthetic households (and their people, enrollments, payments)."""
    if not 0 <= households <= MAX_HOUSEHOLDS:
        raise ValueError(f"households must be between 0 and {MAX_HOUSEHOLDS:,}")
    started = time.perf_counter()
    report = SeedReport()
    synthesiser = _Synthesiser(seed, cutoff, reference_date)
    async with db.engine.begin() as conn:
        if replace:
            await clear_registry(conn)
        elif not await _is_empty(conn):
            raise RegistryNotEmpty(
                "the registry already holds households; seed with --replace to start afresh"
            )
        writer = _PostgresWriter(conn) if conn.dialect.name == "postgresql" else None
        async for chunk in _chunks(synthesiser, households):
            for table, rows in chunk.tables():
                if not rows:
                    continue
                if writer is not None:
                    await writer.copy(table, rows)
                else:
                    await _insert_many(conn, table, rows)
                setattr(report, table, getattr(report, table) + len(rows))
            if progress is not None:
                progress(len(chunk.households))
    await analyze_registry(db)
    report.seconds = time.perf_counter() - started
    return report


async def analyze_registry(db: Database) -> None:
    """Refresh PostgreSQL's statistics after a bulk load, so the first queries plan well."""
    if is_postgres(db.engine):
        async with db.engine.begin() as conn:
            await conn.execute(text(f"ANALYZE {', '.join(REGISTRY_TABLES)}"))


async def _chunks(synthesiser: _Synthesiser, households: int) -> AsyncIterator[_Chunk]:
    """Chunks of households in order, the next generated in a thread while this one is written.

    Chunks are still made one after another from one random stream, so rows never depend on
    timing.
    """
    sizes = [
        min(CHUNK_HOUSEHOLDS, households - start)
        for start in range(0, households, CHUNK_HOUSEHOLDS)
    ]
    if not sizes:
        return
    pending = asyncio.ensure_future(asyncio.to_thread(synthesiser.chunk, sizes[0]))
    try:
        for following in [*sizes[1:], 0]:
            chunk = await pending
            if following:
                pending = asyncio.ensure_future(asyncio.to_thread(synthesiser.chunk, following))
            yield chunk
    finally:
        pending.cancel()


class _PostgresWriter:
    """COPY into the registry tables on the connection's own (already open) transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.driver: Any = None

    async def copy(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if self.driver is None:
            self.driver = await driver_connection(self.conn)
        await self.driver.copy_records_to_table(
            table, records=rows, columns=list(TABLE_COLUMNS[table])
        )


async def driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under `conn`, inside the transaction SQLAlchemy has begun."""
    # SQLAlchemy begins the asyncpg transaction lazily on the first statement; without one,
    # COPY would commit on its own and escape the rollback.
    await conn.execute(text("SELECT 1"))
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def _insert_many(conn: AsyncConnection, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    columns = TABLE_COLUMNS[table]
    await conn.execute(
        insert(Base.metadata.tables[table]), [dict(zip(columns, row, strict=True)) for row in rows]
    )


# Driven from households in key order, so each query stops after a few rows at any size.
_SAMPLE_QUERIES: dict[str, str] = {
    "eligible": """
        SELECT p.cnic, p.full_name, p.mobile FROM households h
        JOIN persons p ON p.household_id = h.household_id
        WHERE h.status = 'active' AND h.pmt_score <= :cutoff AND p.mobile IS NOT NULL
        AND EXISTS (SELECT 1 FROM enrollments e WHERE e.cnic = p.cnic
                    AND e.programme = 'kafaalat' AND e.status = 'active')
        ORDER BY h.household_id, p.cnic LIMIT :limit""",
    "not_eligible": """
        SELECT p.cnic, p.full_name, p.mobile FROM households h
        JOIN persons p ON p.household_id = h.household_id
        WHERE h.status = 'active' AND h.pmt_score > :cutoff AND p.mobile IS NOT NULL
        ORDER BY h.household_id, p.cnic LIMIT :limit""",
    "under_review": """
        SELECT p.cnic, p.full_name, p.mobile FROM households h
        JOIN persons p ON p.household_id = h.household_id
        WHERE h.status = 'under_review' AND p.mobile IS NOT NULL
        ORDER BY h.household_id, p.cnic LIMIT :limit""",
}


async def sample_cnics(db: Database, limit: int = 5, *, cutoff: float = 32.0) -> list[SampleCnic]:
    """A few registered CNICs, alternating eligible / not eligible / under review, for demos."""
    found: dict[str, list[SampleCnic]] = {}
    async with db.registry_engine.connect() as conn:
        for status, query in _SAMPLE_QUERIES.items():
            rows = await conn.execute(text(query), {"cutoff": cutoff, "limit": limit})
            found[status] = [SampleCnic(r.cnic, status, r.full_name, r.mobile) for r in rows]
    samples: list[SampleCnic] = []
    for index in range(limit):
        for status in _SAMPLE_QUERIES:
            if index < len(found[status]) and len(samples) < limit:
                samples.append(found[status][index])
    return samples
