"""The CSV importer (SPEC §9): validation with file/line/field, upsert, all-or-nothing, export."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from api.db import Database
from api.registry import cli as registry_cli
from api.registry import importer
from api.registry.cli import registry_app
from api.registry.importer import RegistryImportError, export_registry, import_registry
from api.registry.seed import clear_registry, seed_registry
from tests.registry.conftest import dump_registry, write_csv

HEADERS = {
    "households.csv": [
        "household_id",
        "pmt_score",
        "province",
        "district",
        "tehsil",
        "survey_date",
        "status",
    ],
    "persons.csv": [
        "cnic",
        "household_id",
        "full_name",
        "gender",
        "birth_date",
        "relation",
        "mobile",
        "cnic_expiry",
    ],
    "enrollments.csv": ["cnic", "programme", "status", "since"],
    "payments.csv": [
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
    ],
}

Extract = dict[str, list[list[str]]]


def base_extract() -> Extract:
    """Two households, three persons written the ways people write them, enrollments, payments."""
    return {
        "households.csv": [
            ["HH-PB-0001", "18.5", "Punjab", "Lahore", "Lahore City", "2021-03-04", "active"],
            ["HH-SD-0002", "45", "Sindh", "Karachi Central", "Gulberg", "2022-06-01", "active"],
        ],
        "persons.csv": [
            [
                "35202-1234567-1",
                "HH-PB-0001",
                "Muhammad Aslam",
                "M",
                "1975-05-01",
                "head",
                "0300-1234567",
                "2030-01-01",
            ],
            [
                "3520212345682",
                "HH-PB-0001",
                "Nasreen Bibi",
                "female",
                "1980-02-02",
                "spouse",
                "+923001234567",
                "",
            ],
            [
                "4210198765433",
                "HH-SD-0002",
                "Ghulam Rasool",
                "Male",
                "1968-07-07",
                "head",
                "0092 345 1112233",
                "2029-01-01",
            ],
        ],
        "enrollments.csv": [
            ["3520212345682", "kafaalat", "active", "2021-07-01"],
            ["3520212345682", "Taleemi_Wazaif", "Active", "2022-01-01"],
        ],
        "payments.csv": [
            [
                "PAY-0001",
                "3520212345682",
                "kafaalat",
                "2026-Q3",
                "13500",
                "2026-08-01",
                "2026-08-31",
                "retailer",
                "HBL Konnect agent, Ichhra Bazaar",
                "collected",
                "",
            ],
            [
                "PAY-0002",
                "3520212345682",
                "kafaalat",
                "2026-Q4",
                "14500",
                "2026-11-15",
                "2026-12-15",
                "campsite",
                "Govt Girls High School No. 2, Ichhra",
                "withheld",
                "CNIC expired",
            ],
        ],
    }


def write_extract(
    directory: Path,
    extract: Extract,
    *,
    headers: dict[str, list[str]] | None = None,
    bom: bool = False,
) -> Path:
    for name, rows in extract.items():
        write_csv(directory / name, (headers or HEADERS)[name], rows, bom=bom)
    return directory


async def scalar(db: Database, query: str) -> Any:
    async with db.engine.connect() as conn:
        return (await conn.execute(text(query))).scalar()


# -- happy paths ---------------------------------------------------------------------------


async def test_imports_and_normalises_every_file(db: Database, tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []
    report = await import_registry(
        db,
        write_extract(tmp_path, base_extract()),
        progress=lambda name, n: calls.append((name, n)),
    )
    assert report.rows == {
        "households.csv": 2,
        "persons.csv": 3,
        "enrollments.csv": 2,
        "payments.csv": 2,
    }
    assert report.total == 9 and report.seconds > 0
    steps: dict[str, int] = {}
    for step, n in calls:
        steps[step] = steps.get(step, 0) + n
    assert steps == {
        f"{verb} {name}": count for name, count in report.rows.items() for verb in ("read", "write")
    }
    async with db.engine.connect() as conn:
        persons = {r.cnic: r for r in await conn.execute(text("SELECT * FROM persons"))}
        assert set(persons) == {"3520212345671", "3520212345682", "4210198765433"}
        assert persons["3520212345671"].mobile == "+923001234567"
        assert persons["4210198765433"].mobile == "+923451112233"
        assert persons["3520212345682"].gender == "F"
        assert persons["4210198765433"].gender == "M"
        assert persons["3520212345682"].cnic_expiry is None
        programmes = {r[0] for r in await conn.execute(text("SELECT programme FROM enrollments"))}
        assert programmes == {"kafaalat", "taleemi_wazaif"}
        payment = (
            await conn.execute(text("SELECT * FROM payments WHERE payment_id = 'PAY-0001'"))
        ).one()
        assert payment.reason is None and payment.amount_pkr == 13500
        assert payment.place == "HBL Konnect agent, Ichhra Bazaar"
        assert str(payment.window_start) == "2026-08-01"
        score = await conn.scalar(
            text("SELECT pmt_score FROM households WHERE household_id = 'HH-PB-0001'")
        )
        assert Decimal(str(score)) == Decimal("18.5")


async def test_upsert_updates_existing_rows(db: Database, tmp_path: Path) -> None:
    await import_registry(db, write_extract(tmp_path / "first", base_extract()))
    extract = base_extract()
    extract["households.csv"][0][1] = "40.25"
    extract["persons.csv"][1][6] = "0345-7654321"
    extract["payments.csv"][1][9] = "ready"
    extract["payments.csv"][1][10] = ""
    del extract["enrollments.csv"]
    await import_registry(db, write_extract(tmp_path / "second", extract))
    assert (
        float(
            await scalar(db, "SELECT pmt_score FROM households WHERE household_id = 'HH-PB-0001'")
        )
        == 40.25
    )
    assert await scalar(db, "SELECT mobile FROM persons WHERE cnic = '3520212345682'") == (
        "+923457654321"
    )
    assert await scalar(db, "SELECT status FROM payments WHERE payment_id = 'PAY-0002'") == "ready"
    assert await scalar(db, "SELECT reason FROM payments WHERE payment_id = 'PAY-0002'") is None
    assert await scalar(db, "SELECT count(*) FROM households") == 2
    assert await scalar(db, "SELECT count(*) FROM persons") == 3
    assert await scalar(db, "SELECT count(*) FROM enrollments") == 2


async def test_importing_again_rewrites_only_the_rows_that_changed(
    db: Database, tmp_path: Path
) -> None:
    """A month's extract is mostly last month's: rewriting every row left as many dead rows as
    the registry holds (tables twice their size until vacuumed), and as much WAL for the
    replica to replay, on every import. A row's xmin names the transaction that wrote it."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("xmin, dead rows and the replica's WAL are PostgreSQL's")
    await import_registry(db, write_extract(tmp_path / "first", base_extract()))

    async def writers() -> dict[str, str]:
        async with db.engine.connect() as conn:
            found = {}
            for table, key in (
                ("households", "household_id"),
                ("persons", "cnic"),
                ("enrollments", "cnic || '/' || programme"),
                ("payments", "payment_id"),
            ):
                rows = await conn.execute(text(f"SELECT {key}, xmin::text FROM {table}"))
                found.update({f"{table} {k}": xmin for k, xmin in rows})
            return found

    before = await writers()
    extract = base_extract()
    extract["persons.csv"][2][2] = "Ghulam Rasool Khan"
    extract["payments.csv"][1][9] = "ready"
    report = await import_registry(db, write_extract(tmp_path / "second", extract))
    assert report.total == 9
    after = await writers()
    changed = {row for row in before if after[row] != before[row]}
    assert changed == {"persons 4210198765433", "payments PAY-0002"}
    assert await scalar(db, "SELECT status FROM payments WHERE payment_id = 'PAY-0002'") == "ready"


@pytest.mark.parametrize("slice_lines", [250_000, 2], ids=["one slice", "many slices"])
async def test_a_key_repeated_in_a_file_last_row_wins(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slice_lines: int
) -> None:
    monkeypatch.setattr(importer, "UPSERT_SLICE_LINES", slice_lines)
    extract = base_extract()
    extract["households.csv"].append(
        ["HH-PB-0001", "12", "Punjab", "Lahore", "Model Town", "2023-01-01", "under_review"]
    )
    await import_registry(db, write_extract(tmp_path, extract))
    assert await scalar(db, "SELECT count(*) FROM households") == 2
    assert await scalar(db, "SELECT tehsil FROM households WHERE household_id = 'HH-PB-0001'") == (
        "Model Town"
    )


async def test_a_repeated_key_is_counted_once_and_named_with_its_lines(
    db: Database, tmp_path: Path
) -> None:
    """The same person, household or enrollment twice in a file (two extracts pasted together,
    a row copied): the summary counted each line as a row imported. It counts the key once and
    the warning names it, with the lines it is on (a CNIC masked, as everywhere)."""
    extract = base_extract()
    households = extract["households.csv"]
    households.append([*households[0][:4], "Model Town", *households[0][5:]])
    households.append(list(households[0]))
    persons = extract["persons.csv"]
    persons.append(["4210-1987654-33", *persons[2][1:]])  # line 2's CNIC, written another way
    enrollments = extract["enrollments.csv"]
    enrollments.append(["3520212345682", "KAFAALAT", "suspended", "2021-07-01"])
    report = await import_registry(db, write_extract(tmp_path, extract))
    assert report.rows == {
        "households.csv": 2,
        "persons.csv": 3,
        "enrollments.csv": 2,
        "payments.csv": 2,
    }
    assert await scalar(db, "SELECT count(*) FROM households") == 2
    assert await scalar(db, "SELECT status FROM enrollments WHERE programme = 'kafaalat'") == (
        "suspended"
    )
    assert report.warnings() == [
        "households.csv: 2 row(s) repeat a key of an earlier line and were counted once, the "
        "last line of each kept: household 'HH-PB-0001' on lines 2, 4 and 5",
        "persons.csv: 1 row(s) repeat a key of an earlier line and were counted once, the last "
        "line of each kept: CNIC 42101-*******-3 on lines 4 and 5",
        "enrollments.csv: 1 row(s) repeat a key of an earlier line and were counted once, the "
        "last line of each kept: CNIC 35202-*******-2, programme 'kafaalat' on lines 2 and 4",
    ]


async def test_many_repeated_keys_are_counted_and_the_first_named(
    db: Database, tmp_path: Path
) -> None:
    extract = base_extract()
    rows = [
        [f"HH-{n:04}", "20", "Sindh", "Karachi", "Saddar", "2022-01-01", "active"] for n in range(8)
    ]
    extract = {"households.csv": rows + rows + rows[:1]}
    report = await import_registry(db, write_extract(tmp_path, extract))
    assert report.rows == {"households.csv": 8}
    repeated = report.repeated["households.csv"]
    assert (repeated.keys, repeated.extra_rows) == (8, 9)
    assert repeated.shown[0] == ("household 'HH-0000'", [2, 10, 18])
    assert [key for key, _ in repeated.shown] == [f"household 'HH-{n:04}'" for n in range(5)]
    assert report.warnings()[0].endswith("; and 3 more key(s)")


async def test_urdu_digits_and_a_bom_are_accepted(db: Database, tmp_path: Path) -> None:
    extract = base_extract()
    extract["persons.csv"][0][0] = "۳۵۲۰۲-۱۲۳۴۵۶۷-۱"
    extract["persons.csv"][0][6] = "۰۳۰۰۱۲۳۴۵۶۷"
    # Amounts and dates too, as a clerk types them on an Urdu keyboard (Arabic-Indic digits
    # as well): they were 'not a whole number' and 'not a date (YYYY-MM-DD)' however written.
    extract["persons.csv"][0][4] = "۱۹۷۵-۰۵-۰۱"
    extract["payments.csv"][0][4] = "۱۳۵۰۰"
    extract["payments.csv"][0][5] = "٢٠٢٦-٠٨-٠١"
    extract["households.csv"][0][1] = "۱۸.۵"
    await import_registry(db, write_extract(tmp_path, extract, bom=True))
    assert await scalar(db, "SELECT mobile FROM persons WHERE cnic = '3520212345671'") == (
        "+923001234567"
    )
    assert str(await scalar(db, "SELECT birth_date FROM persons WHERE cnic = '3520212345671'")) == (
        "1975-05-01"
    )
    async with db.engine.connect() as conn:
        amount, start = (
            await conn.execute(
                text("SELECT amount_pkr, window_start FROM payments WHERE payment_id = 'PAY-0001'")
            )
        ).one()
    assert (amount, str(start)) == (13500, "2026-08-01")
    score = await scalar(db, "SELECT pmt_score FROM households WHERE household_id = 'HH-PB-0001'")
    assert Decimal(str(score)) == Decimal("18.5")


async def test_line_breaks_and_tabs_inside_a_field_become_one_space(
    db: Database, tmp_path: Path
) -> None:
    """A cell typed with Alt+Enter, pasted with a tab or padded with spaces is kept on one
    line: the registry's names, places and tehsils go into one-line SMS and USSD answers, and a
    carriage return or a line break in them was stored as it was."""
    extract = base_extract()
    extract["households.csv"][0][4] = "Lahore\tCity"
    extract["persons.csv"][1][2] = "Nasreen\r\nBibi"
    extract["payments.csv"][1][8] = "Govt Girls High School No. 2,\nIchhra\u00a0 Bazaar"
    extract["payments.csv"][1][10] = "CNIC\r\nexpired"
    await import_registry(db, write_extract(tmp_path, extract))
    assert await scalar(db, "SELECT tehsil FROM households WHERE household_id = 'HH-PB-0001'") == (
        "Lahore City"
    )
    assert await scalar(db, "SELECT full_name FROM persons WHERE cnic = '3520212345682'") == (
        "Nasreen Bibi"
    )
    async with db.engine.connect() as conn:
        place, reason = (
            await conn.execute(
                text("SELECT place, reason FROM payments WHERE payment_id = 'PAY-0002'")
            )
        ).one()
    assert (place, reason) == ("Govt Girls High School No. 2, Ichhra Bazaar", "CNIC expired")


async def test_a_file_alone_may_refer_to_households_already_there(
    db: Database, tmp_path: Path
) -> None:
    await import_registry(db, write_extract(tmp_path / "first", base_extract()))
    persons = {
        "persons.csv": [
            ["6110100000024", "HH-SD-0002", "Amina", "F", "1990-01-01", "spouse", "", ""]
        ]
    }
    report = await import_registry(db, write_extract(tmp_path / "second", persons))
    assert report.rows == {"persons.csv": 1}
    assert await scalar(db, "SELECT count(*) FROM persons") == 4


async def test_a_landline_or_foreign_number_is_imported_as_no_registered_mobile(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Lahore landline or a foreign number in the mobile column is a phone number but no
    Pakistani mobile: a code sent there never arrives, so as a registered mobile it locked the
    person out of verifying. The person is imported without one (as a person with no mobile
    is), and the warning counts them and names the first lines, the numbers masked."""
    extract = base_extract()
    extract["persons.csv"][0][6] = "042-35761234"  # a Lahore landline, written nationally
    extract["persons.csv"][2][6] = "+447911123456"  # a British mobile
    report = await import_registry(db, write_extract(tmp_path, extract))
    assert report.rows["persons.csv"] == 3
    async with db.engine.connect() as conn:
        mobiles = dict((await conn.execute(text("SELECT cnic, mobile FROM persons"))).all())
    assert mobiles == {
        "3520212345671": None,
        "3520212345682": "+923001234567",
        "4210198765433": None,
    }
    assert report.warnings() == [
        "persons.csv: 2 mobile(s) are not Pakistani mobile numbers (a code sent there would "
        "never arrive), imported as no registered mobile: line 2 (+92423****234, a landline); "
        "line 4 (+44791****456, a foreign number)"
    ]

    monkeypatch.setattr(importer, "NOT_MOBILE_SHOWN", 1)
    result = await asyncio.to_thread(_invoke, "import", str(tmp_path))
    assert result.exit_code == 0, result.output
    warning = " ".join(result.stderr.split())
    assert (
        "Warning: persons.csv: 2 mobile(s) are not Pakistani mobile numbers (a code sent there "
        "would never arrive), imported as no registered mobile: line 2 (+92423****234, a "
        "landline); and 1 more"
    ) in warning
    assert "35761234" not in result.output and "7911123456" not in result.output


async def test_columns_in_another_order(db: Database, tmp_path: Path) -> None:
    extract = base_extract()
    write_extract(tmp_path, {name: extract[name] for name in ("households.csv", "persons.csv")})
    header = list(reversed(HEADERS["enrollments.csv"]))
    write_csv(
        tmp_path / "enrollments.csv",
        header,
        [["2021-07-01", "active", "kafaalat", "3520212345682"]],
    )
    await import_registry(db, tmp_path)
    assert await scalar(db, "SELECT programme FROM enrollments") == "kafaalat"


async def test_an_empty_directory_is_an_error(db: Database, tmp_path: Path) -> None:
    with pytest.raises(RegistryImportError, match=r"none of households\.csv"):
        await import_registry(db, tmp_path)


# -- bad input: a clear error and nothing written --------------------------------------------


def _set(file: str, row: int, column: str, value: str) -> Callable[[Extract], None]:
    def change(extract: Extract) -> None:
        extract[file][row][HEADERS[file].index(column)] = value

    return change


BAD_CASES = [
    # (id, change, file, line, field, message fragment)
    (
        "bad cnic",
        _set("persons.csv", 1, "cnic", "3520"),
        "persons.csv",
        3,
        "cnic",
        "'3520' is not a CNIC (13 digits)",
    ),
    (
        "cnic province 8",
        _set("persons.csv", 0, "cnic", "8520212345671"),
        "persons.csv",
        2,
        "cnic",
        "is not a CNIC",
    ),
    (
        "bad date",
        _set("households.csv", 1, "survey_date", "2022-02-30"),
        "households.csv",
        3,
        "survey_date",
        "'2022-02-30' is not a date (YYYY-MM-DD)",
    ),
    (
        "not iso date",
        _set("persons.csv", 2, "birth_date", "07/07/1968"),
        "persons.csv",
        4,
        "birth_date",
        "is not a date",
    ),
    (
        "unknown payment mode",
        _set("payments.csv", 0, "mode", "cash"),
        "payments.csv",
        2,
        "mode",
        "'cash' is not one of bank, campsite, retailer",
    ),
    (
        "unknown payment status",
        _set("payments.csv", 1, "status", "paid"),
        "payments.csv",
        3,
        "status",
        "is not one of scheduled",
    ),
    (
        "unknown household status",
        _set("households.csv", 0, "status", "closed"),
        "households.csv",
        2,
        "status",
        "is not one of active, under_review",
    ),
    (
        "unknown enrollment status",
        _set("enrollments.csv", 0, "status", "graduated"),
        "enrollments.csv",
        2,
        "status",
        "is not one of active, suspended",
    ),
    (
        "bad mobile",
        _set("persons.csv", 2, "mobile", "0300-12"),
        "persons.csv",
        4,
        "mobile",
        "'0300-12' is not a phone number",
    ),
    (
        "bad gender",
        _set("persons.csv", 0, "gender", "X"),
        "persons.csv",
        2,
        "gender",
        "is not a gender",
    ),
    (
        # Python reads the ISO basic form too; the extract's contract is YYYY-MM-DD.
        "date without dashes",
        _set("persons.csv", 2, "birth_date", "19680707"),
        "persons.csv",
        4,
        "birth_date",
        "'19680707' is not a date (YYYY-MM-DD)",
    ),
    (
        "pmt not a number",
        _set("households.csv", 0, "pmt_score", "low"),
        "households.csv",
        2,
        "pmt_score",
        "is not a number",
    ),
    (
        # Python's float() and Decimal() read these; a PMT score is digits and one dot.
        "pmt with an underscore",
        _set("households.csv", 0, "pmt_score", "1_8"),
        "households.csv",
        2,
        "pmt_score",
        "'1_8' is not a number (digits and one dot, e.g. 18.25)",
    ),
    (
        "pmt in e notation",
        _set("households.csv", 1, "pmt_score", "1e1"),
        "households.csv",
        3,
        "pmt_score",
        "'1e1' is not a number (digits and one dot, e.g. 18.25)",
    ),
    (
        "pmt with a sign",
        _set("households.csv", 0, "pmt_score", "+18"),
        "households.csv",
        2,
        "pmt_score",
        "'+18' is not a number",
    ),
    (
        "pmt out of range",
        _set("households.csv", 0, "pmt_score", "120"),
        "households.csv",
        2,
        "pmt_score",
        "between 0 and 100",
    ),
    (
        "amount with commas",
        _set("payments.csv", 0, "amount_pkr", "13,500"),
        "payments.csv",
        2,
        "amount_pkr",
        "is not a whole number",
    ),
    (
        "amount beyond the database's integer",
        _set("payments.csv", 0, "amount_pkr", "2147483648"),
        "payments.csv",
        2,
        "amount_pkr",
        "'21474****8' is too large (at most 2,147,483,647)",
    ),
    (
        "window backwards",
        _set("payments.csv", 0, "window_end", "2026-07-01"),
        "payments.csv",
        2,
        "window_end",
        "ends before it starts",
    ),
    (
        "empty name",
        _set("persons.csv", 0, "full_name", "  "),
        "persons.csv",
        2,
        "full_name",
        "is empty",
    ),
    (
        "name too long",
        _set("persons.csv", 0, "full_name", "A" * 121),
        "persons.csv",
        2,
        "full_name",
        "longer than 120",
    ),
    (
        "unknown household",
        _set("persons.csv", 2, "household_id", "HH-XX-9999"),
        "persons.csv",
        4,
        "household_id",
        "household 'HH-XX-9999' is neither in households.csv nor in the registry",
    ),
    (
        "enrollment of an unknown CNIC",
        _set("enrollments.csv", 1, "cnic", "6110100000017"),
        "enrollments.csv",
        3,
        "cnic",
        "CNIC 61101-*******-7 is neither in persons.csv nor in the registry",
    ),
    (
        "payment of an unknown CNIC",
        _set("payments.csv", 1, "cnic", "61101-0000001-7"),
        "payments.csv",
        3,
        "cnic",
        "CNIC 61101-*******-7 is neither in persons.csv nor in the registry",
    ),
    (
        "NUL in a name",
        _set("persons.csv", 1, "full_name", "Nasreen\x00Bibi"),
        "persons.csv",
        3,
        "full_name",
        "contains a NUL character",
    ),
]


@pytest.mark.parametrize(
    ("change", "file", "line", "field", "fragment"),
    [case[1:] for case in BAD_CASES],
    ids=[case[0] for case in BAD_CASES],
)
async def test_bad_value_names_file_line_field_and_changes_nothing(
    db: Database,
    tmp_path: Path,
    change: Callable[[Extract], None],
    file: str,
    line: int,
    field: str,
    fragment: str,
) -> None:
    await import_registry(db, write_extract(tmp_path / "good", base_extract()))
    before = await dump_registry(db)
    extract = base_extract()
    # A valid change in the first file proves the whole import is rolled back, not just a file.
    extract["households.csv"][1][1] = "22.5"
    extract["households.csv"].append(
        [
            "HH-KP-0003",
            "12",
            "Khyber Pakhtunkhwa",
            "Peshawar",
            "Peshawar City",
            "2023-01-09",
            "under_review",
        ]
    )
    change(extract)
    with pytest.raises(RegistryImportError) as caught:
        await import_registry(db, write_extract(tmp_path / "bad", extract))
    error = caught.value
    assert (error.file, error.line, error.field) == (file, line, field)
    assert fragment in error.message
    assert str(error).startswith(f"{file} line {line}, field {field}: ")
    assert await dump_registry(db) == before


async def test_error_message_format(db: Database, tmp_path: Path) -> None:
    extract = base_extract()
    extract["persons.csv"][1][0] = "3520"
    with pytest.raises(RegistryImportError) as caught:
        await import_registry(db, write_extract(tmp_path, extract))
    assert str(caught.value) == "persons.csv line 3, field cnic: '3520' is not a CNIC (13 digits)"
    assert await scalar(db, "SELECT count(*) FROM households") == 0


async def test_every_bad_row_is_named_not_only_the_first(db: Database, tmp_path: Path) -> None:
    """At national scale an import runs for many minutes: one run names every refused row (up
    to PROBLEMS_SHOWN, the rest counted per file), so the operator fixes them all at once
    instead of one per run."""
    extract = base_extract()
    _set("persons.csv", 1, "cnic", "3520")(extract)
    _set("persons.csv", 2, "mobile", "0300-12")(extract)
    extract["enrollments.csv"][0] = extract["enrollments.csv"][0][:3]
    _set("payments.csv", 0, "mode", "cash")(extract)
    with pytest.raises(RegistryImportError) as caught:
        await import_registry(db, write_extract(tmp_path, extract))
    error = caught.value
    assert (error.file, error.line, error.field) == ("persons.csv", 3, "cnic")
    assert error.count == 4
    assert str(error).splitlines() == [
        "persons.csv line 3, field cnic: '3520' is not a CNIC (13 digits)",
        "persons.csv line 4, field mobile: '0300-12' is not a phone number",
        "enrollments.csv line 2: expected 4 fields, found 3",
        "payments.csv line 2, field mode: 'cash' is not one of bank, campsite, retailer",
        "4 problems: persons.csv 2, enrollments.csv 1, payments.csv 1",
    ]
    assert await scalar(db, "SELECT count(*) FROM households") == 0


async def test_every_reference_to_an_unknown_household_is_named(
    db: Database, tmp_path: Path
) -> None:
    extract = base_extract()
    _set("persons.csv", 0, "household_id", "HH-XX-0001")(extract)
    _set("persons.csv", 2, "household_id", "HH-XX-0002")(extract)
    with pytest.raises(RegistryImportError) as caught:
        await import_registry(db, write_extract(tmp_path, extract))
    assert str(caught.value).splitlines() == [
        "persons.csv line 2, field household_id: household 'HH-XX-0001' is neither in "
        "households.csv nor in the registry",
        "persons.csv line 4, field household_id: household 'HH-XX-0002' is neither in "
        "households.csv nor in the registry",
        "2 problems: persons.csv 2",
    ]
    assert await scalar(db, "SELECT count(*) FROM households") == 0


async def test_references_to_nothing_are_named_in_every_file(db: Database, tmp_path: Path) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite checks a file's references only while the files before it are good")
    extract = base_extract()
    _set("persons.csv", 0, "household_id", "HH-XX-0001")(extract)
    _set("enrollments.csv", 1, "cnic", "6110100000017")(extract)
    _set("payments.csv", 0, "cnic", "6110100000024")(extract)
    with pytest.raises(RegistryImportError) as caught:
        await import_registry(db, write_extract(tmp_path, extract))
    assert str(caught.value).splitlines() == [
        "persons.csv line 2, field household_id: household 'HH-XX-0001' is neither in "
        "households.csv nor in the registry",
        "enrollments.csv line 3, field cnic: CNIC 61101-*******-7 is neither in persons.csv nor "
        "in the registry",
        "payments.csv line 2, field cnic: CNIC 61101-*******-4 is neither in persons.csv nor "
        "in the registry",
        "3 problems: persons.csv 1, enrollments.csv 1, payments.csv 1",
    ]


async def test_past_the_problems_shown_the_rest_are_counted(db: Database, tmp_path: Path) -> None:
    shown = importer.PROBLEMS_SHOWN
    rows = [
        [f"HH-{n:04}", "20", "Punjab", "Lahore", "Lahore City", "2021-03-04", "closed"]
        for n in range(shown + 5)
    ]
    with pytest.raises(RegistryImportError) as caught:
        await import_registry(db, write_extract(tmp_path, {"households.csv": rows}))
    lines = str(caught.value).splitlines()
    assert len(lines) == shown + 1
    assert lines[shown - 1].startswith(f"households.csv line {shown + 1}, field status")
    assert lines[-1] == f"{shown + 5} problems, the first {shown} named: households.csv {shown + 5}"


@pytest.mark.parametrize(
    ("file", "row", "column", "value", "shown"),
    [
        # A CNIC with a province digit no CNIC has; a CNIC a digit short; Urdu digits.
        ("persons.csv", 0, "cnic", "8520212345671", "'85202*******1'"),
        ("persons.csv", 0, "cnic", "35202-123456-1", "'35202-******-1'"),
        ("persons.csv", 0, "cnic", "۸۵۲۰۲۱۲۳۴۵۶۷۱", "'۸۵۲۰۲*******۱'"),
        # A mobile with a digit too many; a CNIC in the mobile column (columns mixed up).
        ("persons.csv", 1, "mobile", "+92 300 12345678", "'+92 300 *******8'"),
        ("persons.csv", 1, "mobile", "3520212345682", "'35202*******2'"),
        # Columns mixed up: a CNIC where a gender, a status or an amount belongs.
        ("persons.csv", 2, "gender", "4210198765433", "'42101*******3'"),
        ("payments.csv", 0, "status", "35202-1234568-2", "'35202-*******-2'"),
        ("payments.csv", 0, "amount_pkr", "3520212345682", "'35202*******2'"),
    ],
    ids=[
        "cnic-province",
        "cnic-short",
        "cnic-urdu",
        "mobile-long",
        "mobile-cnic",
        "gender",
        "status",
        "amount",
    ],
)
async def test_a_bad_value_is_quoted_without_a_whole_cnic_or_phone(
    db: Database, tmp_path: Path, file: str, row: int, column: str, value: str, shown: str
) -> None:
    """Errors reach the operator's terminal and the logs a 3 a.m. import writes: a value that
    may be a CNIC or a phone number is quoted with its middle digits starred."""
    extract = base_extract()
    _set(file, row, column, value)(extract)
    with pytest.raises(RegistryImportError) as caught:
        await import_registry(db, write_extract(tmp_path, extract))
    message = str(caught.value)
    assert message.startswith(f"{file} line {row + 2}, field {column}: {shown} ")
    digits = "".join(c for c in value if c.isdigit())
    assert digits not in "".join(c for c in message if c.isdigit())


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (HEADERS["households.csv"][:-1], "missing column(s) status"),
        (
            [*HEADERS["households.csv"][:-1], "household_status"],
            "missing column(s) status",
        ),
        (["household_id", *HEADERS["households.csv"]], "repeated column(s) household_id"),
    ],
    ids=["missing", "misspelt", "repeated"],
)
async def test_header_is_checked(
    db: Database, tmp_path: Path, header: list[str], fragment: str
) -> None:
    rows = [
        row[: len(header)] + [""] * (len(header) - 7) for row in base_extract()["households.csv"]
    ]
    write_csv(tmp_path / "households.csv", header, rows)
    with pytest.raises(RegistryImportError) as caught:
        await import_registry(db, tmp_path)
    assert (caught.value.file, caught.value.line, caught.value.field) == ("households.csv", 1, None)
    assert fragment in caught.value.message
    assert await scalar(db, "SELECT count(*) FROM households") == 0


async def test_columns_the_extract_does_not_define_are_left_unread_and_named(
    db: Database, tmp_path: Path
) -> None:
    # A named extra column, and the unnamed one a spreadsheet's trailing commas make.
    header = [*HEADERS["households.csv"], "Notes", ""]
    rows = [[*row, "checked", ""] for row in base_extract()["households.csv"]]
    write_csv(tmp_path / "households.csv", header, rows)
    report = await import_registry(db, tmp_path)
    assert report.rows == {"households.csv": 2}
    assert report.warnings() == [
        "households.csv: column(s) 'Notes' not read (not in the extract's format)"
    ]
    assert await scalar(db, "SELECT count(*) FROM households") == 2


async def test_a_row_with_the_wrong_number_of_fields(db: Database, tmp_path: Path) -> None:
    extract = base_extract()
    extract["households.csv"][1] = extract["households.csv"][1][:5]
    with pytest.raises(RegistryImportError, match=r"households\.csv line 3: expected 7 fields"):
        await import_registry(db, write_extract(tmp_path, extract))


async def test_a_row_with_more_fields_than_the_header_hints_at_an_unquoted_comma(
    db: Database, tmp_path: Path
) -> None:
    """A place or a name with a comma, written without quotes by hand or by a tool that does
    not quote, splits into two fields: the message says where to look."""
    path = tmp_path / "households.csv"
    path.write_text(
        ",".join(HEADERS["households.csv"])
        + "\nHH-PB-0001,18.5,Punjab,Lahore,Lahore City,2021-03-04,active"
        + "\nHH-SD-0002,45,Sindh,Karachi Central,Gulberg, Block 7,2022-06-01,active\n",
        encoding="utf-8",
    )
    with pytest.raises(RegistryImportError) as caught:
        await import_registry(db, tmp_path)
    assert str(caught.value) == (
        "households.csv line 3: expected 7 fields, found 8: a value with a comma in it (a "
        "name, a place) must be in double quotes"
    )


async def test_a_row_over_several_lines_is_named_by_the_line_it_starts_on(
    db: Database, tmp_path: Path
) -> None:
    """A quoted field with line breaks (an address typed with Alt+Enter in Excel) makes a row
    of several lines; an error in it, and in the rows after it, names the line the row starts
    on, where an editor shows it, not the line it ends on."""
    extract = base_extract()
    extract["households.csv"][0][4] = "Lahore\nCity\nOld"
    extract["households.csv"][0][6] = "closed"
    write_extract(tmp_path, {"households.csv": extract["households.csv"]})
    with pytest.raises(RegistryImportError) as caught:
        await import_registry(db, tmp_path)
    assert str(caught.value).startswith("households.csv line 2, field status: 'closed'")
    extract["households.csv"][0][6] = "active"
    extract["households.csv"][1][6] = "activ"
    write_extract(tmp_path, {"households.csv": extract["households.csv"]})
    lines = (tmp_path / "households.csv").read_text(encoding="utf-8").splitlines()
    assert lines[4].startswith("HH-SD-0002,")
    with pytest.raises(RegistryImportError) as caught:
        await import_registry(db, tmp_path)
    assert str(caught.value).startswith("households.csv line 5, field status: 'activ'")


async def test_an_empty_file_and_a_non_utf8_file(db: Database, tmp_path: Path) -> None:
    (tmp_path / "households.csv").write_bytes(b"")
    with pytest.raises(RegistryImportError, match="empty"):
        await import_registry(db, tmp_path)
    write_extract(tmp_path, {"households.csv": base_extract()["households.csv"]})
    content = (tmp_path / "households.csv").read_bytes().replace(b"Punjab", b"Panj\xe2b")
    (tmp_path / "households.csv").write_bytes(content)
    with pytest.raises(RegistryImportError, match="not UTF-8"):
        await import_registry(db, tmp_path)


async def test_all_empty_rows_a_spreadsheet_leaves_are_skipped(
    db: Database, tmp_path: Path
) -> None:
    extract = base_extract()
    extract["persons.csv"].insert(1, [""] * 8)
    extract["persons.csv"] += [[""] * 8, [" "] * 8]
    report = await import_registry(db, write_extract(tmp_path, extract))
    assert report.rows["persons.csv"] == 3
    assert await scalar(db, "SELECT count(*) FROM persons") == 3


async def test_a_windows_1252_byte_is_found_on_its_own_line(db: Database, tmp_path: Path) -> None:
    extract = base_extract()
    extract["households.csv"] += [
        [f"HH-PB-{n:04d}", "20", "Punjab", "Lahore", "Lahore City", "2021-03-04", "active"]
        for n in range(10, 1010)
    ]
    extract["households.csv"][900][4] = "Sh\u00e1lamar"
    write_extract(tmp_path, {"households.csv": extract["households.csv"]})
    path = tmp_path / "households.csv"
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252"))
    with pytest.raises(RegistryImportError) as caught:
        await import_registry(db, tmp_path)
    assert str(caught.value).startswith(
        "households.csv line 902: not UTF-8 text (byte 0xE1 at character 31;"
    )
    assert str(caught.value).endswith("save it as CSV UTF-8")


async def test_a_utf16_file_is_named_as_such(db: Database, tmp_path: Path) -> None:
    write_extract(tmp_path, {"households.csv": base_extract()["households.csv"]})
    path = tmp_path / "households.csv"
    text_ = path.read_text(encoding="utf-8")
    path.write_bytes(text_.encode("utf-16"))
    with pytest.raises(RegistryImportError, match="UTF-16 text, not UTF-8: save it as CSV UTF-8"):
        await import_registry(db, tmp_path)
    # Without its byte-order mark it decodes as UTF-8 full of NULs.
    path.write_bytes(text_.encode("utf-16-le"))
    with pytest.raises(RegistryImportError, match="line 1: the header holds NUL characters"):
        await import_registry(db, tmp_path)


async def test_a_workbook_or_semicolons_are_named_as_such(db: Database, tmp_path: Path) -> None:
    """What a spreadsheet writes when not asked for CSV UTF-8: a workbook renamed `.csv` was
    'not UTF-8 text (… Windows-1252 or another code page?)', and a file separated by
    semicolons (Excel's CSV where the comma is the decimal sign) 'missing column(s)' that were
    all there."""
    path = tmp_path / "households.csv"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xa1\xb2\xff\xfe" * 64)
    with pytest.raises(RegistryImportError) as workbook:
        await import_registry(db, tmp_path)
    assert str(workbook.value) == (
        "households.csv: an Excel workbook, not CSV text: open it in Excel and save it as CSV UTF-8"
    )
    for separator in (";", "\t"):
        rows = [HEADERS["households.csv"], *base_extract()["households.csv"]]
        path.write_text("".join(separator.join(row) + "\n" for row in rows), encoding="utf-8")
        with pytest.raises(RegistryImportError) as separated:
            await import_registry(db, tmp_path)
        assert str(separated.value).startswith(
            "households.csv line 1: the columns are separated by"
        )
        assert "not commas: save it as CSV (comma delimited) UTF-8" in str(separated.value)
    assert await scalar(db, "SELECT count(*) FROM households") == 0


async def test_cli_warns_of_a_programme_the_programmes_file_does_not_name(
    db: Database, tmp_path: Path
) -> None:
    extract = base_extract()
    extract["payments.csv"][1][2] = "Kafalat"
    write_extract(tmp_path, extract)
    result = await asyncio.to_thread(_invoke, "import", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (
        "Warning: programme 'kafalat' (1 row(s), first at payments.csv line 3) is not in the "
        "programmes file: answers show it as 'Kafalat' in every language"
    ) in " ".join(result.stderr.split())
    assert "taleemi_wazaif" not in result.stderr
    assert await scalar(db, "SELECT count(*) FROM payments WHERE programme = 'kafalat'") == 1


async def test_file_names_in_another_case_are_read_and_other_csv_files_named(
    db: Database, tmp_path: Path
) -> None:
    extract = base_extract()
    write_extract(tmp_path, {name: extract[name] for name in ("households.csv", "persons.csv")})
    (tmp_path / "persons.csv").rename(tmp_path / "Persons.CSV")
    (tmp_path / "households.csv").rename(tmp_path / "HOUSEHOLDS.csv")
    (tmp_path / "payments (1).csv").write_text("payment_id\n", encoding="utf-8")
    result = await asyncio.to_thread(_invoke, "import", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert await scalar(db, "SELECT count(*) FROM persons") == 3
    assert "payments (1).csv was not read: it is none of households.csv" in " ".join(
        result.stderr.split()
    )
    assert "Not in this extract, left as they were: enrollments.csv, payments.csv." in " ".join(
        result.stdout.split()
    )
    write_csv(tmp_path / "persons.csv", HEADERS["persons.csv"], extract["persons.csv"])
    with pytest.raises(RegistryImportError, match=r"both Persons\.CSV and persons\.csv are there"):
        await import_registry(db, tmp_path)


async def test_an_interrupted_import_writes_nothing_says_so_and_can_be_run_again(
    db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_extract(tmp_path, base_extract())

    def stop_at_the_last_write(step: str, _rows: int) -> None:
        if step == importer.write_step("payments.csv"):
            raise KeyboardInterrupt  # Ctrl-C

    async def work(database: Database) -> None:
        await import_registry(database, tmp_path, progress=stop_at_the_last_write)

    with pytest.raises(typer.Exit) as stopped:
        await asyncio.to_thread(registry_cli._run, work)
    assert stopped.value.exit_code == 130
    assert "Interrupted: nothing was written; the registry is as it was." in " ".join(
        capsys.readouterr().err.split()
    )
    assert await scalar(db, "SELECT count(*) FROM households") == 0
    report = await import_registry(db, tmp_path)
    assert report.rows["persons.csv"] == 3
    assert await scalar(db, "SELECT count(*) FROM payments") == 2


# -- export and round trip -----------------------------------------------------------------


async def test_seed_export_import_round_trip(db: Database, tmp_path: Path) -> None:
    await seed_registry(db, households=400, seed=3)
    seeded = await dump_registry(db)
    exported = await export_registry(db, tmp_path / "one")
    assert exported.rows == {f"{t}.csv": len(rows) for t, rows in seeded.items()}
    async with db.engine.begin() as conn:
        await clear_registry(conn)
    imported = await import_registry(db, tmp_path / "one")
    assert imported.rows == exported.rows
    assert await dump_registry(db) == seeded
    # Importing the same extract again changes nothing; exporting again gives the same bytes.
    await import_registry(db, tmp_path / "one")
    assert await dump_registry(db) == seeded
    await export_registry(db, tmp_path / "two")
    for name in exported.rows:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


async def test_export_writes_the_spec_format(db: Database, tmp_path: Path) -> None:
    await import_registry(db, write_extract(tmp_path / "in", base_extract()))
    await export_registry(db, tmp_path / "out")
    for name, header in HEADERS.items():
        lines = (tmp_path / "out" / name).read_text(encoding="utf-8").splitlines()
        assert lines[0] == ",".join(header)
    households = (tmp_path / "out" / "households.csv").read_text().splitlines()
    assert households[1] == "HH-PB-0001,18.50,Punjab,Lahore,Lahore City,2021-03-04,active"
    persons = (tmp_path / "out" / "persons.csv").read_text().splitlines()
    assert "3520212345682,HH-PB-0001,Nasreen Bibi,F,1980-02-02,spouse,+923001234567," in persons
    payments = (tmp_path / "out" / "payments.csv").read_text().splitlines()
    assert payments[1] == (
        "PAY-0001,3520212345682,kafaalat,2026-Q3,13500,2026-08-01,2026-08-31,"
        'retailer,"HBL Konnect agent, Ichhra Bazaar",collected,'
    )


# -- the command line ----------------------------------------------------------------------


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(registry_app, list(args))


async def test_cli_import_reports_a_bad_file_and_exits_1(db: Database, tmp_path: Path) -> None:
    extract = base_extract()
    extract["persons.csv"][1][0] = "3520"
    write_extract(tmp_path, extract)
    result = await asyncio.to_thread(_invoke, "import", str(tmp_path))
    assert result.exit_code == 1
    assert "persons.csv line 3, field cnic: '3520' is not a CNIC (13 digits)" in result.stderr
    assert "Nothing was imported: the registry is as it was." in result.stderr
    assert "Traceback" not in result.output
    assert await scalar(db, "SELECT count(*) FROM households") == 0


async def test_cli_import_counts_a_repeated_person_once_and_warns(
    db: Database, tmp_path: Path
) -> None:
    extract = base_extract()
    extract["persons.csv"].append(list(extract["persons.csv"][0]))
    write_extract(tmp_path, extract)
    result = await asyncio.to_thread(_invoke, "import", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "9 rows in" in result.stdout
    assert (
        "Warning: persons.csv: 1 row(s) repeat a key of an earlier line and were counted once, "
        "the last line of each kept: CNIC 35202-*******-1 on lines 2 and 5"
    ) in " ".join(result.stderr.split())


async def test_cli_seed_export_import(db: Database, tmp_path: Path) -> None:
    result = await asyncio.to_thread(_invoke, "seed", "--households", "150", "--seed", "4")
    assert result.exit_code == 0, result.output
    assert "rows/s" in result.stdout
    assert await scalar(db, "SELECT count(*) FROM households") == 150
    again = await asyncio.to_thread(_invoke, "seed", "--households", "150")
    assert again.exit_code == 1
    # The way out is named as it is typed.
    assert "already holds households; seed with --replace to start afresh" in again.stderr
    exported = await asyncio.to_thread(_invoke, "export", str(tmp_path))
    assert exported.exit_code == 0, exported.output
    replaced = await asyncio.to_thread(_invoke, "seed", "--households", "10", "--replace")
    assert replaced.exit_code == 0, replaced.output
    imported = await asyncio.to_thread(_invoke, "import", str(tmp_path))
    assert imported.exit_code == 0, imported.output
    assert "households.csv" in imported.stdout
    exported_ids = {
        line.split(",")[0] for line in (tmp_path / "households.csv").read_text().splitlines()[1:]
    }
    async with db.engine.connect() as conn:
        ids = set((await conn.execute(text("SELECT household_id FROM households"))).scalars())
    assert exported_ids <= ids and len(ids) <= 160
