"""Load a CSV registry extract (SPEC §9) with upsert semantics, all or nothing, and write one."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import re
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import asyncpg
import phonenumbers
from sqlalchemy import select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db import Database
from api.identity import (
    Cnic,
    InvalidCnic,
    InvalidPhone,
    mask_cnic,
    mask_phone,
    normalise_phone,
    normalise_text,
)
from api.registry.models import Base
from api.registry.seed import analyze_registry, driver_connection

#: Rows validated and written per round trip; a 10-million-row file never sits in memory.
CHUNK_ROWS = 20_000
#: Lines of a staged file upserted per statement on PostgreSQL.
UPSERT_SLICE_LINES = 250_000
# SQLite caps the number of bound parameters per statement.
_SQLITE_IN_BATCH = 500


#: Problems an import that refuses an extract names, in file order; the rest are counted.
PROBLEMS_SHOWN = 20


class RegistryImportError(Exception):
    """A registry extract that cannot be loaded, and where: file, line, field.

    An import reads the whole extract before it refuses it: the error is the first problem
    found, `others` the next ones (up to PROBLEMS_SHOWN in all) and `counts` every problem per
    file; `str()` names them one a line."""

    def __init__(
        self,
        file: str,
        line: int | None,
        field: str | None,
        message: str,
        *,
        others: Sequence[RegistryImportError] = (),
        counts: dict[str, int] | None = None,
    ) -> None:
        super().__init__(file, line, field, message)
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        self.others = tuple(others)
        self.counts = counts or {file: 1}

    @property
    def count(self) -> int:
        """How many problems the extract has (rows refused, files unreadable)."""
        return sum(self.counts.values())

    def _one(self) -> str:
        where = self.file if self.line is None else f"{self.file} line {self.line}"
        if self.field:
            where = f"{where}, field {self.field}"
        return f"{where}: {self.message}"

    def __str__(self) -> str:
        if self.count == 1:
            return self._one()
        named = [self._one(), *(other._one() for other in self.others)]
        total = f"{self.count:,} problems"
        if len(named) < self.count:
            total = f"{total}, the first {len(named)} named"
        files = ", ".join(f"{name} {count:,}" for name, count in self.counts.items())
        return "\n".join([*named, f"{total}: {files}"])


class _Problems:
    """What an import has found wrong so far: the first PROBLEMS_SHOWN problems, and how many
    per file. Once there is one, nothing more is written, but every file is still read."""

    def __init__(self) -> None:
        self.shown: list[RegistryImportError] = []
        self.counts: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self.counts)

    def add(self, error: RegistryImportError, *, also: int = 0) -> None:
        """Note `error`, and `also` more problems of its file that are counted, not named."""
        self.counts[error.file] = self.counts.get(error.file, 0) + 1 + also
        if len(self.shown) < PROBLEMS_SHOWN:
            self.shown.append(error)

    def raise_any(self) -> None:
        if self.shown:
            first, *others = self.shown
            raise RegistryImportError(
                first.file,
                first.line,
                first.field,
                first.message,
                others=others,
                counts=dict(self.counts),
            )


#: Repeated keys a warning names, with their lines; the rest are counted.
REPEATED_SHOWN = 5


@dataclass
class Repeated:
    """Keys a file holds on more than one line (the last line of each is what is kept)."""

    #: How many keys are repeated, and the lines they take beyond the first of each.
    keys: int
    extra_rows: int
    #: The first REPEATED_SHOWN keys, in file order: the key as the operator may see it (a
    #: CNIC masked) and the lines it is on.
    shown: list[tuple[str, list[int]]]


#: Numbers that are no Pakistani mobile a warning names, with their lines; the rest are counted.
NOT_MOBILE_SHOWN = 5


@dataclass
class NotMobiles:
    """Mobiles a file gives that are phone numbers but no Pakistani mobile (a landline, a
    foreign number): their persons are imported with no registered mobile."""

    rows: int = 0
    #: The first NOT_MOBILE_SHOWN, in file order: the line and the number, masked, with what it
    #: is (`+92423****234, a landline`).
    shown: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class ImportReport:
    """Rows imported per file (a key repeated in a file counted once) and how long the whole
    import took."""

    rows: dict[str, int] = field(default_factory=dict)
    #: file → the keys it repeats.
    repeated: dict[str, Repeated] = field(default_factory=dict)
    seconds: float = 0.0
    #: programme → (rows, first file and line) for programmes the programmes file does not name.
    unknown_programmes: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: CSV files in the folder that are none of the extract's, left unread.
    ignored: list[str] = field(default_factory=list)
    #: file → columns of its header the extract does not define, left unread.
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    #: file → the mobiles it gives that are no Pakistani mobile, imported as none.
    not_mobiles: dict[str, NotMobiles] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def warnings(self) -> list[str]:
        """What was imported but deserves a look, one sentence each."""
        expected = ", ".join(spec.filename for spec in FILES)
        files = [f"{name} was not read: it is none of {expected}" for name in self.ignored]
        columns = [
            f"{name}: column(s) {', '.join(repr(c) for c in extra)} not read (not in the "
            "extract's format)"
            for name, extra in self.ignored_columns.items()
        ]
        repeated = [_repeated_warning(name, found) for name, found in self.repeated.items()]
        not_mobiles = [_not_mobile_warning(name, found) for name, found in self.not_mobiles.items()]
        return (
            files
            + columns
            + repeated
            + not_mobiles
            + [
                f"programme {programme!r} ({rows:,} row(s), first at {where}) is not in the "
                "programmes file: answers show it as "
                f"{programme.replace('_', ' ').title()!r} in every language"
                for programme, (rows, where) in sorted(self.unknown_programmes.items())
            ]
        )


def _repeated_warning(name: str, found: Repeated) -> str:
    shown = "; ".join(
        f"{key} on lines {', '.join(str(n) for n in lines[:-1])} and {lines[-1]}"
        for key, lines in found.shown
    )
    more = found.keys - len(found.shown)
    others = f"; and {more:,} more key(s)" if more > 0 else ""
    return (
        f"{name}: {found.extra_rows:,} row(s) repeat a key of an earlier line and were counted "
        f"once, the last line of each kept: {shown}{others}"
    )


def _not_mobile_warning(name: str, found: NotMobiles) -> str:
    shown = "; ".join(f"line {line} ({number})" for line, number in found.shown)
    more = found.rows - len(found.shown)
    others = f"; and {more:,} more" if more > 0 else ""
    return (
        f"{name}: {found.rows:,} mobile(s) are not Pakistani mobile numbers (a code sent there "
        f"would never arrive), imported as no registered mobile: {shown}{others}"
    )


@dataclass
class ExportReport:
    """Rows written per file and how long the export took."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.rows.values())


class _Invalid(ValueError):
    """A value that does not fit its column; the caller adds file, line and field."""


class _NotMobile(Exception):
    """A phone number that is no Pakistani mobile: the row is kept with no registered mobile,
    and the report names it."""

    def __init__(self, described: str) -> None:
        super().__init__(described)
        #: The number masked, and what it is: `+92423****234, a landline`.
        self.described = described


# -- values --------------------------------------------------------------------------------

_PLAIN_CNIC = re.compile(r"[1-7][0-9]{12}", re.ASCII)
# The national mobile pattern (PROTOCOLS §6) already in E.164 skips phonenumbers, which is slow.
_PLAIN_MOBILE = re.compile(r"\+923(?:[0-247][0-9]|3[0-79]|55|64)[0-9]{7}", re.ASCII)
_SPACE = re.compile(r"\s")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", re.ASCII)
_MAX_INT = 2**31 - 1
#: A value with this many digits or more may be a CNIC (13) or a phone number (10 to 12),
#: perhaps mistyped or in the wrong column; dates have 8 and are quoted whole.
_DIGITS_MASKED = 9

Parser = Callable[[str], Any]


def quoted(value: str) -> str:
    """`value` as an error message quotes it: when it holds `_DIGITS_MASKED` digits or more,
    all but the first five and the last are starred (`'85202-*******-1'`), as logs mask a
    CNIC, so that a refused row never prints a whole CNIC or phone number."""
    digits = sum(c.isdigit() for c in value)
    if digits < _DIGITS_MASKED:
        return repr(value)
    seen = 0
    shown = []
    for char in value:
        if char.isdigit():
            seen += 1
            shown.append(char if seen <= 5 or seen == digits else "*")
        else:
            shown.append(char)
    return repr("".join(shown))


def _cnic(value: str) -> str:
    if _PLAIN_CNIC.fullmatch(value):
        return value
    try:
        return Cnic.parse(value).digits
    except InvalidCnic:
        raise _Invalid(f"{quoted(value)} is not a CNIC (13 digits)") from None


def _mobile(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if _PLAIN_MOBILE.fullmatch(value):
        return value
    try:
        e164 = normalise_phone(value)
    except InvalidPhone:
        raise _Invalid(f"{quoted(value)} is not a phone number") from None
    if _PLAIN_MOBILE.fullmatch(e164):
        return e164
    # A registered mobile is where verification codes go (SPEC §3): a landline, a UAN or a
    # foreign number would never receive one, and refusing a national extract for one such
    # row would be harsh; phonenumbers has the last word on what is a mobile.
    number = phonenumbers.parse(e164)
    kind = phonenumbers.number_type(number)
    if number.country_code == 92 and kind == phonenumbers.PhoneNumberType.MOBILE:
        return e164
    if number.country_code != 92:
        what = "a foreign number"
    elif kind == phonenumbers.PhoneNumberType.FIXED_LINE:
        what = "a landline"
    else:
        what = "not a mobile"
    raise _NotMobile(f"{mask_phone(e164)}, {what}")


def _ascii(value: str) -> str:
    """`value` trimmed, with Urdu and Arabic-Indic digits made ASCII (SPEC §2)."""
    return value.strip() if value.isascii() else normalise_text(value)


def _date(value: str) -> dt.date:
    text = _ascii(value)
    if not _ISO_DATE.fullmatch(text):
        raise _Invalid(f"{value.strip()!r} is not a date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _Invalid(f"{value.strip()!r} is not a date (YYYY-MM-DD)") from None


def _optional_date(value: str) -> dt.date | None:
    return _date(value) if value.strip() else None


def _score(value: str) -> Decimal:
    text = _ascii(value)
    # Decimal() also reads '1_8' (18), '1e1', '+18' and 'NaN': a score is written plainly.
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise _Invalid(f"{quoted(value.strip())} is not a number (digits and one dot, e.g. 18.25)")
    score = Decimal(text)
    if not 0 <= score <= 100:
        raise _Invalid(f"{quoted(value.strip())} is not a PMT score between 0 and 100")
    return score.quantize(Decimal("0.01"))


def _amount(value: str) -> int:
    text = _ascii(value)
    if not text.isascii() or not text.isdigit():
        raise _Invalid(f"{quoted(value.strip())} is not a whole number of rupees")
    amount = int(text)
    if amount > _MAX_INT:
        raise _Invalid(f"{quoted(value.strip())} is too large (at most {_MAX_INT:,})")
    return amount


def _gender(value: str) -> str:
    gender = {"m": "M", "male": "M", "f": "F", "female": "F"}.get(value.strip().lower())
    if gender is None:
        raise _Invalid(f"{quoted(value)} is not a gender (M or F)")
    return gender


def _choice(*choices: str) -> Parser:
    allowed = frozenset(choices)

    def parse(value: str) -> str:
        cleaned = value.strip().lower()
        if cleaned not in allowed:
            raise _Invalid(f"{quoted(value)} is not one of {', '.join(choices)}")
        return cleaned

    return parse


def _text(max_length: int, *, required: bool = True, lower: bool = False) -> Parser:
    def parse(value: str) -> str:
        cleaned = value.strip()
        if not cleaned.isprintable() or "  " in cleaned:
            # Line breaks (a cell typed with Alt+Enter), tabs and runs of spaces become one
            # space: these values end up in one-line SMS and USSD answers.
            cleaned = " ".join(cleaned.split())
        if lower:
            cleaned = cleaned.lower()
        if required and not cleaned:
            raise _Invalid("is empty")
        if "\x00" in cleaned:
            # PostgreSQL refuses it (for a whole chunk of lines); SQLite would store it.
            raise _Invalid("contains a NUL character (a UTF-16 file?)")
        if len(cleaned) > max_length:
            raise _Invalid(f"{quoted(value)} is longer than {max_length} characters")
        return cleaned

    return parse


def _optional_text(max_length: int) -> Parser:
    parse = _text(max_length, required=False)

    def optional(value: str) -> str | None:
        return parse(value) or None

    return optional


def _key(max_length: int, *, lower: bool = False) -> Parser:
    parse = _text(max_length, lower=lower)

    def key(value: str) -> str:
        cleaned = parse(value)
        if _SPACE.search(cleaned):
            raise _Invalid(f"{quoted(value)} contains spaces")
        return cleaned

    return key


# -- files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileSpec:
    filename: str
    table: str
    key: tuple[str, ...]
    parsers: dict[str, Parser]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.parsers)


FILES: tuple[_FileSpec, ...] = (
    _FileSpec(
        "households.csv",
        "households",
        ("household_id",),
        {
            "household_id": _key(20),
            "pmt_score": _score,
            "province": _text(40),
            "district": _text(60),
            "tehsil": _text(60),
            "survey_date": _date,
            "status": _choice("active", "under_review"),
        },
    ),
    _FileSpec(
        "persons.csv",
        "persons",
        ("cnic",),
        {
            "cnic": _cnic,
            "household_id": _key(20),
            "full_name": _text(120),
            "gender": _gender,
            "birth_date": _date,
            "relation": _text(20, lower=True),
            "mobile": _mobile,
            "cnic_expiry": _optional_date,
        },
    ),
    _FileSpec(
        "enrollments.csv",
        "enrollments",
        ("cnic", "programme"),
        {
            "cnic": _cnic,
            "programme": _key(40, lower=True),
            "status": _choice("active", "suspended", "exited", "pending"),
            "since": _date,
        },
    ),
    _FileSpec(
        "payments.csv",
        "payments",
        ("payment_id",),
        {
            "payment_id": _key(32),
            "cnic": _cnic,
            "programme": _key(40, lower=True),
            "tranche": _text(20),
            "amount_pkr": _amount,
            "window_start": _date,
            "window_end": _date,
            "mode": _choice("bank", "campsite", "retailer"),
            "place": _text(120, required=False),
            "status": _choice("scheduled", "ready", "collected", "failed", "withheld"),
            "reason": _optional_text(200),
        },
    ),
)


def _read_chunks(
    path: Path, spec: _FileSpec, report: ImportReport, problems: _Problems
) -> Iterator[list[tuple[Any, ...]]]:
    """Validated rows (in column order, the line number last) in chunks of CHUNK_ROWS; columns
    the extract does not define are left unread and listed in `report.ignored_columns`.

    A row that is refused is left out and added to `problems`, and reading goes on; a file
    that cannot be read on (not UTF-8, not CSV, a bad header) is added to `problems` and left.

    A row's line is the one it starts on: a quoted field with line breaks spreads a row over
    several lines, and `reader.line_num` is the last of them."""
    name = spec.filename
    try:
        yield from _validated_chunks(path, spec, report, problems)
    except UnicodeDecodeError:
        problems.add(_not_utf8(path, name))
    except _NotCsv as exc:
        problems.add(RegistryImportError(name, exc.line, None, f"not valid CSV ({exc.error})"))
    except RegistryImportError as exc:
        problems.add(exc)


class _NotCsv(Exception):
    """The CSV reader gave up on the row starting at `line`."""

    def __init__(self, line: int, error: csv.Error) -> None:
        super().__init__(line, error)
        self.line = line
        self.error = error


def _validated_chunks(
    path: Path, spec: _FileSpec, report: ImportReport, problems: _Problems
) -> Iterator[list[tuple[Any, ...]]]:
    """The work of `_read_chunks`, which turns what stops it into a problem."""
    name = spec.filename
    # The last line of the rows read so far; the next row starts on the line after it.
    ended = 0
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            header = next(reader, None)
            if header is None:
                raise RegistryImportError(name, 1, None, "the file is empty (no header row)")
            ended = reader.line_num
            order = _column_order(name, header, spec.columns)
            extra = [h.strip() for h in header if h.strip().lower() not in spec.columns]
            # Unnamed columns are what a spreadsheet's stray trailing commas make.
            extra = [h for h in extra if h]
            if extra:
                report.ignored_columns[name] = extra
            parsers = [spec.parsers[c] for c in spec.columns]
            width = len(header)
            window = (
                (spec.columns.index("window_start"), spec.columns.index("window_end"))
                if spec.table == "payments"
                else None
            )
            chunk: list[tuple[Any, ...]] = []
            for record in reader:
                line, ended = ended + 1, reader.line_num
                # Blank lines, and the all-empty rows (",,,,") spreadsheets leave at the end.
                if not any(record) or not "".join(record).strip():
                    continue
                if len(record) != width:
                    fields = f"expected {width} fields, found {len(record)}"
                    if len(record) > width:
                        # The usual cause: a name or a place with a comma, not quoted.
                        fields += (
                            ": a value with a comma in it (a name, a place) must be in double "
                            "quotes"
                        )
                    problems.add(RegistryImportError(name, line, None, fields))
                    continue
                values = []
                not_mobile = None
                for column, parser, index in zip(spec.columns, parsers, order, strict=True):
                    try:
                        values.append(parser(record[index]))
                    except _NotMobile as exc:
                        values.append(None)
                        not_mobile = exc.described
                    except _Invalid as exc:
                        problems.add(RegistryImportError(name, line, column, str(exc)))
                        break
                if len(values) < len(parsers):
                    continue
                if window is not None and values[window[1]] < values[window[0]]:
                    problems.add(
                        RegistryImportError(
                            name, line, "window_end", "the window ends before it starts"
                        )
                    )
                    continue
                if not_mobile is not None:
                    found = report.not_mobiles.setdefault(name, NotMobiles())
                    found.rows += 1
                    if len(found.shown) < NOT_MOBILE_SHOWN:
                        found.shown.append((line, not_mobile))
                values.append(line)
                chunk.append(tuple(values))
                if len(chunk) >= CHUNK_ROWS:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
    except csv.Error as exc:
        raise _NotCsv(ended + 1, exc) from None


def _not_utf8(path: Path, name: str) -> RegistryImportError:
    """Where a file stops being UTF-8: the text is decoded in blocks, so the reader's line is
    not the line of the bad byte; read the bytes again to find it."""
    advice = "save it as CSV UTF-8"
    with path.open("rb") as handle:
        start = handle.read(8)
        if start[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return RegistryImportError(name, None, None, f"UTF-16 text, not UTF-8: {advice}")
        # A workbook renamed .csv: .xlsx is a zip file, .xls an OLE2 compound file.
        if start.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")):
            return RegistryImportError(
                name, None, None, f"an Excel workbook, not CSV text: open it in Excel and {advice}"
            )
        handle.seek(0)
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return RegistryImportError(
                    name,
                    number,
                    None,
                    f"not UTF-8 text (byte 0x{raw[exc.start]:02X} at character "
                    f"{len(raw[: exc.start].decode('utf-8', 'replace')) + 1}; "
                    f"Windows-1252 or another code page?): {advice}",
                )
    return RegistryImportError(name, None, None, f"not UTF-8 text: {advice}")


def _column_order(name: str, header: list[str], columns: Sequence[str]) -> list[int]:
    if any("\x00" in h for h in header):
        raise RegistryImportError(
            name, 1, None, "the header holds NUL characters: UTF-16 text? save it as CSV UTF-8"
        )
    if len(header) == 1:
        for separator, called in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if separator in header[0]:
                raise RegistryImportError(
                    name,
                    1,
                    None,
                    f"the columns are separated by {called}, not commas: save it as CSV "
                    "(comma delimited) UTF-8",
                )
    names = [h.strip().lower() for h in header]
    missing = [c for c in columns if c not in names]
    repeated = sorted({h for h in names if names.count(h) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    if problems:
        raise RegistryImportError(
            name, 1, None, "; ".join(problems) + f" (expected: {', '.join(columns)})"
        )
    return [names.index(c) for c in columns]


async def _chunks(
    path: Path, spec: _FileSpec, report: ImportReport, problems: _Problems
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The chunks of `_read_chunks`, parsed in a worker thread while the caller writes."""
    iterator = _read_chunks(path, spec, report, problems)
    pending = asyncio.ensure_future(asyncio.to_thread(next, iterator, None))
    try:
        while (chunk := await pending) is not None:
            pending = asyncio.ensure_future(asyncio.to_thread(next, iterator, None))
            yield chunk
    finally:
        pending.cancel()


# -- import --------------------------------------------------------------------------------

Progress = Callable[[str, int], None]


def read_step(filename: str) -> str:
    """The progress label for rows read and validated from `filename`."""
    return f"read {filename}"


def write_step(filename: str) -> str:
    """The progress label for rows of `filename` written to the registry."""
    return f"write {filename}"


def extract_files(directory: Path) -> tuple[list[tuple[_FileSpec, Path]], list[str]]:
    """The extract's files in `directory`, in load order, and the other CSV files there.

    A file is found whatever the case of its name (`Persons.CSV`, as Windows tools write it);
    two files whose names differ only in case are an error."""
    try:
        files = sorted(p for p in directory.iterdir() if p.is_file())
    except OSError as exc:
        raise RegistryImportError(str(directory), None, None, exc.strerror or str(exc)) from None
    present: list[tuple[_FileSpec, Path]] = []
    claimed: set[Path] = set()
    for spec in FILES:
        matches = [p for p in files if p.name.lower() == spec.filename]
        if len(matches) > 1:
            names = " and ".join(p.name for p in matches)
            raise RegistryImportError(
                str(directory), None, None, f"both {names} are there: keep one {spec.filename}"
            )
        if matches:
            present.append((spec, matches[0]))
            claimed.add(matches[0])
    ignored = [p.name for p in files if p.suffix.lower() == ".csv" and p not in claimed]
    return present, ignored


async def import_registry(
    db: Database,
    directory: Path,
    *,
    progress: Progress | None = None,
    programmes: Collection[str] | None = None,
) -> ImportReport:
    """Upsert the CSV extract in `directory` in one transaction; raise RegistryImportError.

    Every file is read through before an extract is refused, and the error names its problems
    (up to PROBLEMS_SHOWN, the rest counted). `progress(step, rows)` is called with
    `read_step(file)` as rows are validated and with `write_step(file)` as they are written
    (on PostgreSQL, by the lines each slice of the file covers).
    Rows of a programme not in `programmes` (when given) are imported and listed in the
    report's warnings.
    """
    started = time.perf_counter()
    present, ignored = extract_files(directory)
    if not present:
        expected = ", ".join(spec.filename for spec in FILES)
        found = f" (found: {', '.join(ignored)})" if ignored else ""
        raise RegistryImportError(str(directory), None, None, f"none of {expected} is there{found}")
    report = ImportReport(ignored=ignored)
    report_progress = progress or (lambda _step, _rows: None)
    known = frozenset(programmes) if programmes is not None else None
    problems = _Problems()

    async with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await _import_postgres(conn, present, report, report_progress, known, problems)
        else:
            for spec, path in present:
                report.rows[spec.filename] = await _load_sqlite(
                    conn, spec, path, report_progress, report, known, problems
                )
            problems.raise_any()
    await analyze_registry(db)
    report.seconds = time.perf_counter() - started
    return report


async def _import_postgres(
    conn: AsyncConnection,
    present: list[tuple[_FileSpec, Path]],
    report: ImportReport,
    progress: Progress,
    programmes: frozenset[str] | None,
    problems: _Problems,
) -> None:
    """Stage every file (so any bad row is found before the heavy writes), then upsert."""
    apg = await driver_connection(conn)
    # Sorting for DISTINCT ON and the reference check are faster in memory; local to this import.
    await apg.execute("SET LOCAL work_mem = '128MB'")
    for spec, path in present:
        report.rows[spec.filename] = await _stage_postgres(
            apg, spec, path, progress, report, programmes, problems
        )
    # A reference to a refused row would look like one to nothing: those checks wait.
    problems.raise_any()
    staged = {spec.table for spec, _ in present}
    if "persons" in staged:
        also_staged = (
            "AND NOT EXISTS (SELECT 1 FROM import_households s "
            "WHERE s.household_id = t.household_id) "
            if "households" in staged
            else ""
        )
        orphans = await apg.fetch(
            "SELECT t._line, t.household_id, count(*) OVER () AS orphans "  # noqa: S608
            "FROM import_persons t WHERE NOT EXISTS "
            "(SELECT 1 FROM households h WHERE h.household_id = t.household_id) "
            f"{also_staged}ORDER BY t._line LIMIT {PROBLEMS_SHOWN}"
        )
        _note_orphans(
            problems,
            [_unknown_household("persons.csv", r["_line"], r["household_id"]) for r in orphans],
            orphans[0]["orphans"] if orphans else 0,
        )
    for spec, _ in present:
        if "cnic" not in spec.columns or spec.table == "persons":
            continue
        also_staged = (
            "AND NOT EXISTS (SELECT 1 FROM import_persons s WHERE s.cnic = t.cnic) "
            if "persons" in staged
            else ""
        )
        orphans = await apg.fetch(
            "SELECT t._line, t.cnic, count(*) OVER () AS orphans "  # noqa: S608
            f"FROM import_{spec.table} t WHERE NOT EXISTS "
            "(SELECT 1 FROM persons p WHERE p.cnic = t.cnic) "
            f"{also_staged}ORDER BY t._line LIMIT {PROBLEMS_SHOWN}"
        )
        _note_orphans(
            problems,
            [_unknown_person(spec.filename, r["_line"], r["cnic"]) for r in orphans],
            orphans[0]["orphans"] if orphans else 0,
        )
    problems.raise_any()
    for spec, _ in present:
        await _upsert_postgres(apg, spec, progress)


def _note_orphans(problems: _Problems, named: list[RegistryImportError], total: int) -> None:
    """Add the references to nothing a query named (the first few) and counted (`total`)."""
    for number, error in enumerate(named, start=1):
        problems.add(error, also=total - len(named) if number == len(named) else 0)


async def _stage_postgres(
    apg: Any,
    spec: _FileSpec,
    path: Path,
    progress: Progress,
    report: ImportReport,
    programmes: frozenset[str] | None,
    problems: _Problems,
) -> int:
    staging = f"import_{spec.table}"
    await apg.execute(
        f"CREATE TEMP TABLE {staging} (LIKE {spec.table}, _line bigint NOT NULL) ON COMMIT DROP"
    )
    rows = 0
    async for chunk in _chunks(path, spec, report, problems):
        progress(read_step(spec.filename), len(chunk))
        if problems:
            continue  # the import is refused: only the problems are still looked for
        try:
            await apg.copy_records_to_table(
                staging, records=chunk, columns=[*spec.columns, "_line"]
            )
        except asyncpg.PostgresError as exc:
            first, last = chunk[0][-1], chunk[-1][-1]
            raise RegistryImportError(
                spec.filename, None, None, f"lines {first}–{last}: {_first_line(exc)}"
            ) from None
        rows += len(chunk)
        _note_programmes(spec, chunk, report, programmes)
    if problems:
        return rows
    # Rows arrive in line order, so a BRIN index finds a slice of lines cheaply.
    await apg.execute(f"CREATE INDEX ON {staging} USING brin (_line)")
    await apg.execute(f"ANALYZE {staging}")
    found = await apg.fetch(_repeated_query(spec, staging, postgres=True))
    return rows - _note_repeated(spec, [tuple(r) for r in found], report)


async def _upsert_postgres(apg: Any, spec: _FileSpec, progress: Progress) -> None:
    staging = f"import_{spec.table}"
    columns = ", ".join(spec.columns)
    key = ", ".join(spec.key)
    others = [c for c in spec.columns if c not in spec.key]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in others)
    # A row the extract does not change is left as it is: a month's extract is mostly the
    # last one, and rewriting every row would leave as many dead rows (tables twice their size
    # until vacuumed) and as much WAL for the replica on every import.
    changed = (
        f"({', '.join(f'{spec.table}.{c}' for c in others)}) IS DISTINCT FROM "
        f"({', '.join(f'EXCLUDED.{c}' for c in others)})"
    )
    # Slices in line order, DISTINCT ON within a slice: a key repeated in a file ends up with
    # its last row, as it would row by row; and the progress bar moves while writing, by the
    # lines a slice covers (rows left unchanged are not counted by the statement).
    statement = (
        f"INSERT INTO {spec.table} ({columns}) "  # noqa: S608
        f"SELECT DISTINCT ON ({key}) {columns} FROM {staging} "
        f"WHERE _line >= $1 AND _line < $2 ORDER BY {key}, _line DESC "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE {changed}"
    )
    last_line = await apg.fetchval(f"SELECT max(_line) FROM {staging}")  # noqa: S608
    if last_line is None:
        return
    for first in range(2, last_line + 1, UPSERT_SLICE_LINES):
        last = min(first + UPSERT_SLICE_LINES - 1, last_line)
        try:
            await apg.execute(statement, first, first + UPSERT_SLICE_LINES)
        except asyncpg.PostgresError as exc:
            raise RegistryImportError(
                spec.filename, None, None, f"lines {first}–{last}: {_first_line(exc)}"
            ) from None
        progress(write_step(spec.filename), last - first + 1)


async def _load_sqlite(
    conn: AsyncConnection,
    spec: _FileSpec,
    path: Path,
    progress: Progress,
    report: ImportReport,
    programmes: frozenset[str] | None,
    problems: _Problems,
) -> int:
    table = Base.metadata.tables[spec.table]
    statement = sqlite_insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(spec.key),
        set_={c: statement.excluded[c] for c in spec.columns if c not in spec.key},
    )
    # Each line's key, to find the keys the file repeats once it is read (the upsert keeps the
    # last line of each, and would count every line).
    keys = f"import_keys_{spec.table}"
    # Left by a failed import: Python's sqlite3 begins its transaction at the first write, so
    # a table created before it is not rolled back.
    await conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{keys}")
    await conn.exec_driver_sql(
        f"CREATE TEMP TABLE {keys} ({', '.join(spec.key)}, _line INTEGER NOT NULL)"
    )
    key_at = [spec.columns.index(k) for k in spec.key]
    # Once an earlier file has a problem, its rows were not all written: a reference to one of
    # them would look like one to nothing, so only this file's own values are checked.
    checked = not problems
    rows = 0
    async for chunk in _chunks(path, spec, report, problems):
        progress(read_step(spec.filename), len(chunk))
        if not checked:
            continue
        await conn.exec_driver_sql(
            f"INSERT INTO {keys} VALUES ({', '.join('?' * (len(spec.key) + 1))})",  # noqa: S608
            [(*(row[i] for i in key_at), row[-1]) for row in chunk],
        )
        _note_programmes(spec, chunk, report, programmes)
        if spec.table == "persons":
            await _check_households_sqlite(conn, spec.filename, chunk, problems)
        elif "cnic" in spec.columns:
            # persons.csv, when there is one, was written before this file in this transaction.
            await _check_persons_sqlite(conn, spec, chunk, problems)
        if problems:
            continue  # the import is refused; its references are still checked
        try:
            await conn.execute(
                statement, [dict(zip(spec.columns, row, strict=False)) for row in chunk]
            )
        except DBAPIError as exc:
            first, last = chunk[0][-1], chunk[-1][-1]
            raise RegistryImportError(
                spec.filename, None, None, f"lines {first}–{last}: {_first_line(exc.orig)}"
            ) from None
        rows += len(chunk)
        progress(write_step(spec.filename), len(chunk))
    if problems:
        return rows
    found = (await conn.exec_driver_sql(_repeated_query(spec, keys, postgres=False))).all()
    await conn.exec_driver_sql(f"DROP TABLE {keys}")
    return rows - _note_repeated(spec, [tuple(r) for r in found], report)


def _repeated_query(spec: _FileSpec, table: str, *, postgres: bool) -> str:
    """The first REPEATED_SHOWN keys `table` holds on more than one line, in file order, each
    with its lines, and on every row the count of repeated keys and of lines beyond the first
    of each."""
    key = ", ".join(spec.key)
    lines = (
        "string_agg(_line::text, ',' ORDER BY _line)" if postgres else "group_concat(_line, ',')"
    )
    return (
        f"SELECT {key}, {lines}, count(*) OVER (), sum(count(*) - 1) OVER () "  # noqa: S608
        f"FROM {table} GROUP BY {key} HAVING count(*) > 1 "
        f"ORDER BY min(_line) LIMIT {REPEATED_SHOWN}"
    )


def _note_repeated(spec: _FileSpec, found: list[tuple[Any, ...]], report: ImportReport) -> int:
    """Put what `_repeated_query` found in the report; the lines beyond the first of each key."""
    if not found:
        return 0
    width = len(spec.key)
    shown = [
        (_describe_key(spec, row[:width]), sorted(int(n) for n in str(row[width]).split(",")))
        for row in found
    ]
    extra_rows = int(found[0][width + 2])
    report.repeated[spec.filename] = Repeated(int(found[0][width + 1]), extra_rows, shown)
    return extra_rows


def _describe_key(spec: _FileSpec, values: Sequence[Any]) -> str:
    """A key as a warning names it: `CNIC 35202-*******-1, programme 'kafaalat'`."""
    words = {"household_id": "household", "payment_id": "payment"}
    return ", ".join(
        f"CNIC {mask_cnic(str(value))}"
        if column == "cnic"
        else f"{words.get(column, column)} {value!r}"
        for column, value in zip(spec.key, values, strict=True)
    )


async def _check_households_sqlite(
    conn: AsyncConnection, filename: str, chunk: list[tuple[Any, ...]], problems: _Problems
) -> None:
    wanted = sorted({row[1] for row in chunk})
    known: set[str] = set()
    households = Base.metadata.tables["households"]
    for start in range(0, len(wanted), _SQLITE_IN_BATCH):
        batch = wanted[start : start + _SQLITE_IN_BATCH]
        result = await conn.execute(
            select(households.c.household_id).where(households.c.household_id.in_(batch))
        )
        known.update(result.scalars())
    if len(known) == len(wanted):
        return
    for row in chunk:
        if row[1] not in known:
            problems.add(_unknown_household(filename, row[-1], row[1]))


async def _check_persons_sqlite(
    conn: AsyncConnection, spec: _FileSpec, chunk: list[tuple[Any, ...]], problems: _Problems
) -> None:
    index = spec.columns.index("cnic")
    wanted = sorted({row[index] for row in chunk})
    known: set[str] = set()
    persons = Base.metadata.tables["persons"]
    for start in range(0, len(wanted), _SQLITE_IN_BATCH):
        batch = wanted[start : start + _SQLITE_IN_BATCH]
        result = await conn.execute(select(persons.c.cnic).where(persons.c.cnic.in_(batch)))
        known.update(result.scalars())
    if len(known) == len(wanted):
        return
    for row in chunk:
        if row[index] not in known:
            problems.add(_unknown_person(spec.filename, row[-1], row[index]))


def _note_programmes(
    spec: _FileSpec,
    chunk: list[tuple[Any, ...]],
    report: ImportReport,
    programmes: frozenset[str] | None,
) -> None:
    if programmes is None or "programme" not in spec.columns:
        return
    index = spec.columns.index("programme")
    unknown = {row[index] for row in chunk} - programmes
    for programme in unknown:
        rows = [row for row in chunk if row[index] == programme]
        seen, first = report.unknown_programmes.get(
            programme, (0, f"{spec.filename} line {rows[0][-1]}")
        )
        report.unknown_programmes[programme] = (seen + len(rows), first)


def _unknown_person(filename: str, line: int, cnic: str) -> RegistryImportError:
    return RegistryImportError(
        filename,
        line,
        "cnic",
        f"CNIC {mask_cnic(cnic)} is neither in persons.csv nor in the registry",
    )


def _unknown_household(filename: str, line: int, household_id: str) -> RegistryImportError:
    return RegistryImportError(
        filename,
        line,
        "household_id",
        f"household {household_id!r} is neither in households.csv nor in the registry",
    )


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else "failed"


# -- export --------------------------------------------------------------------------------


async def export_registry(
    db: Database,
    directory: Path,
    *,
    progress: Callable[[str, int], None] | None = None,
) -> ExportReport:
    """Write the registry as the four CSV files of SPEC §9 into `directory`, streaming."""
    started = time.perf_counter()
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    report = ExportReport()
    async with db.registry_engine.begin() as conn:
        postgres = conn.dialect.name == "postgresql"
        for spec in FILES:
            path = directory / spec.filename
            if postgres:
                rows = await _export_postgres(conn, spec, path)
                if progress is not None:
                    progress(spec.filename, rows)
            else:
                rows = await _export_sqlite(conn, spec, path, progress)
            report.rows[spec.filename] = rows
    report.seconds = time.perf_counter() - started
    return report


async def _export_postgres(conn: AsyncConnection, spec: _FileSpec, path: Path) -> int:
    apg = await driver_connection(conn)
    await apg.execute("SET LOCAL datestyle = 'ISO, YMD'")
    status = await apg.copy_from_query(
        f"SELECT {', '.join(spec.columns)} FROM {spec.table} "  # noqa: S608
        f"ORDER BY {', '.join(spec.key)}",
        output=str(path),
        format="csv",
        header=True,
        encoding="utf-8",
    )
    return int(status.split()[-1])


async def _export_sqlite(
    conn: AsyncConnection,
    spec: _FileSpec,
    path: Path,
    progress: Callable[[str, int], None] | None,
) -> int:
    table = Base.metadata.tables[spec.table]
    query = select(*(table.c[c] for c in spec.columns)).order_by(*(table.c[c] for c in spec.key))
    rows = 0
    handle = _open_for_writing(path)
    try:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(spec.columns)
        result = await conn.stream(query.execution_options(yield_per=CHUNK_ROWS))
        async for partition in result.partitions():
            writer.writerows([_csv_value(v) for v in row] for row in partition)
            rows += len(partition)
            if progress is not None:
                progress(spec.filename, len(partition))
    finally:
        handle.close()
    return rows


def _open_for_writing(path: Path) -> IO[str]:
    return path.open("w", encoding="utf-8", newline="")


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal | float):
        return f"{value:.2f}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


async def count_lines(path: Path) -> int:
    """Data rows in a CSV file, counted fast (for a progress bar's total)."""
    return await asyncio.to_thread(_count_lines, path)


def _count_lines(path: Path) -> int:
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(0, lines - 1)
