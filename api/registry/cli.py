"""`rabta registry seed | import | export`: the registry extract from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from api.cli_support import err, settings_or_exit
from api.db import Database
from api.migrate import upgrade_async
from api.programmes import get_programmes
from api.registry.importer import (
    FILES,
    RegistryImportError,
    count_lines,
    export_registry,
    extract_files,
    import_registry,
    read_step,
    write_step,
)
from api.registry.remove import (
    RemovalAudit,
    RemovalPlan,
    parse_cnic,
    remove_from_registry,
)
from api.registry.seed import MAX_HOUSEHOLDS, RegistryNotEmpty, sample_cnics, seed_registry


def _operator() -> str:
    """The audit log's actor for a command an operator runs: `cli:` and their account."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # a container's user may have no name
        return "cli"


registry_app = typer.Typer(
    help="The registry extract: seed a synthetic one, import or export CSV files, remove people.",
    no_args_is_help=True,
)

out = Console()

T = TypeVar("T")


class _RateColumn(ProgressColumn):
    """Rows per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "–/s", style="progress.data.speed")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<21}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
    )


def _advance(bar: Progress, task: TaskID, rows: int) -> None:
    # Tasks are created stopped so that a step's elapsed time and rate start with its work.
    bar.start_task(task)
    bar.advance(task, rows)


def _run(
    work: Callable[[Database], Awaitable[T]],
    interrupted: str = "nothing was written; the registry is as it was.",
    refused: str | None = None,
) -> T:
    """Migrate, open the database, do `work`, close; known failures exit 1 without a trace.

    Every registry command writes in one transaction, so Ctrl-C rolls it back; `interrupted`
    tells the operator what that leaves behind, and `refused` (when given) what a refused
    extract does."""

    settings = settings_or_exit()

    async def main() -> T:
        await upgrade_async(settings.database_url)
        async with Database.opened(settings) as db:
            return await work(db)

    try:
        return asyncio.run(main())
    except (RegistryImportError, RegistryNotEmpty) as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", soft_wrap=True)
        if refused is not None and isinstance(exc, RegistryImportError):
            err.print(escape(refused), soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print(f"[red]Interrupted:[/red] {escape(interrupted)}", soft_wrap=True)
        raise typer.Exit(130) from None


def _summary(title: str, rows: dict[str, int], seconds: float) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in rows.items():
        table.add_row(name, f"{count:,}")
    total = sum(rows.values())
    table.add_row("[bold]total", f"[bold]{total:,}")
    out.print(table)
    rate = total / seconds if seconds else 0.0
    rows_word = "row" if total == 1 else "rows"
    out.print(f"{total:,} {rows_word} in {seconds:,.1f} s ({rate:,.0f} rows/s)")


@registry_app.command("seed")
def seed_command(
    households: Annotated[
        int,
        typer.Option(
            "--households",
            "-n",
            min=1,
            max=MAX_HOUSEHOLDS,
            help="How many households to generate (up to ten million).",
        ),
    ] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same registry.")] = 1,
    replace: Annotated[
        bool, typer.Option("--replace", help="Empty the registry first if it holds data.")
    ] = False,
) -> None:
    """Generate a deterministic synthetic registry."""
    cutoff = settings_or_exit().pmt_cutoff

    async def work(db: Database) -> None:
        with _progress() as bar:
            task = bar.add_task("households", total=households)
            report = await seed_registry(
                db,
                households=households,
                seed=seed,
                cutoff=cutoff,
                replace=replace,
                progress=lambda n: bar.advance(task, n),
            )
        _summary(f"Seeded registry (seed {seed})", report.per_table(), report.seconds)
        samples = await sample_cnics(db, limit=3, cutoff=cutoff)
        for sample in samples:
            out.print(
                f"  try CNIC {sample.cnic} ({sample.status.replace('_', ' ')}), "
                f"mobile {sample.mobile or '-'}"
            )

    _run(work)


@registry_app.command("import")
def import_command(
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, dir_okay=True, help="Folder with the CSV files."
        ),
    ],
) -> None:
    """Load a CSV registry extract (upsert, all or nothing)."""
    try:
        programmes = set(get_programmes().names)
    except ValueError as exc:
        err.print(f"[red]Programmes file refused:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None

    async def work(db: Database) -> None:
        with _progress() as bar:
            tasks: dict[str, TaskID] = {}
            totals: dict[str, int] = {}
            for spec, path in extract_files(directory)[0]:
                total = await count_lines(path)
                for step in (read_step(spec.filename), write_step(spec.filename)):
                    tasks[step] = bar.add_task(step, total=total, start=False)
                    totals[step] = total
            report = await import_registry(
                db,
                directory,
                progress=lambda step, n: _advance(bar, tasks[step], n),
                programmes=programmes,
            )
            # Repeated keys and multi-line fields make the line count an estimate.
            for step, task in tasks.items():
                bar.update(task, completed=totals[step])
        _summary(f"Imported {directory}", report.rows, report.seconds)
        absent = [spec.filename for spec in FILES if spec.filename not in report.rows]
        if absent:
            out.print(f"Not in this extract, left as they were: {', '.join(absent)}.")
        for warning in report.warnings():
            err.print(f"[yellow]Warning:[/yellow] {escape(warning)}", soft_wrap=True)

    _run(work, refused="Nothing was imported: the registry is as it was.")


@registry_app.command("export")
def export_command(
    directory: Annotated[
        Path, typer.Argument(file_okay=False, dir_okay=True, help="Folder to write into.")
    ],
) -> None:
    """Write the registry as CSV files in the import format."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        err.print(f"[red]Cannot write to {escape(str(directory))}:[/red] {escape(reason)}")
        raise typer.Exit(1) from None

    async def work(db: Database) -> None:
        with _progress() as bar:
            tasks = {
                spec.filename: bar.add_task(spec.filename, total=None, start=False)
                for spec in FILES
            }
            report = await export_registry(
                db, directory, progress=lambda name, n: _advance(bar, tasks[name], n)
            )
            for name, task in tasks.items():
                bar.update(task, total=report.rows.get(name, 0), completed=report.rows[name])
        _summary(f"Exported to {directory}", report.rows, report.seconds)

    _run(work, interrupted=f"the files in {directory} are incomplete; export again.")


@registry_app.command(
    "remove",
    help="Take persons (by CNIC) or whole households out of the registry, all or nothing. "
    "Their enrollments and payments go with them; Rabta's grievances, audit log and message "
    "logs are kept. Removing what is not there is counted, not an error, so a run can be "
    "repeated.",
)
def remove_command(
    cnics: Annotated[
        list[str] | None,
        typer.Argument(
            help="CNICs to remove (13 digits, dashes and Urdu digits accepted).",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="A file of CNICs, one per line, or a CSV file with a cnic or household_id "
            "column (e.g. a persons.csv of leavers).",
            show_default=False,
        ),
    ] = None,
    households: Annotated[
        list[str] | None,
        typer.Option(
            "--household",
            help="A household id to remove with all its persons; repeat for more.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be removed; change nothing.")
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            help="Why, for each removed person's audit log entry (e.g. 'NSER update "
            "2026-11'); by default the file the list came from.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Take persons or households out of the registry (the help text is above)."""
    plan = RemovalPlan()
    for value in cnics or []:
        try:
            plan.add_cnic(parse_cnic(value))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="CNICS") from None
    for household_id in households or []:
        if not household_id.strip() or any(c.isspace() for c in household_id.strip()):
            raise typer.BadParameter(
                f"{household_id!r} is not a household id", param_hint="--household"
            )
        plan.add_household(household_id.strip())
    # The file is read chunk by chunk as its people are removed, in the removal's transaction:
    # a bad line rolls back what was removed before it.
    plan.file = file
    if not plan.total and file is None:
        err.print(
            "[red]Nothing to remove:[/red] give CNICs, --file FILE or --household ID "
            "(see rabta registry remove --help)."
        )
        raise typer.Exit(2)

    why = reason.strip() if reason and reason.strip() else None
    why = why or (f"rabta registry remove --file {file.name}" if file else "rabta registry remove")

    async def work(db: Database) -> None:
        # A file's lines (comments and blank lines too) make its part of the total an estimate;
        # a file that cannot be read is named as such by the removal.
        lines = 0
        if file is not None:
            with contextlib.suppress(OSError):
                lines = await count_lines(file) + 1
        total = plan.total + lines
        with _progress() as bar:
            task = bar.add_task("remove", total=total, start=False)
            report = await remove_from_registry(
                db,
                plan,
                audit=RemovalAudit(actor=_operator(), reason=why),
                dry_run=dry_run,
                progress=lambda n: _advance(bar, task, n),
            )
            bar.update(task, completed=total)
        _summary("Would remove" if dry_run else "Removed", report.removed(), report.seconds)
        if dry_run:
            out.print("Dry run: nothing was changed.")
        if report.cnics_not_found:
            out.print(f"{report.cnics_not_found:,} CNIC(s) given were not in the registry.")
        if report.households_not_found:
            out.print(
                f"{report.households_not_found:,} household id(s) given were not in the registry."
            )
        if report.contacts_unverified:
            out.print(
                f"{report.contacts_unverified:,} contact(s) verified for a removed CNIC "
                + ("would no longer be verified." if dry_run else "are no longer verified.")
            )
        if report.open_grievances:
            out.print(
                f"{report.open_grievances:,} open grievance(s) of removed persons "
                + ("would stay" if dry_run else "stay")
                + " in the queue."
            )

    _run(work, refused="Nothing was removed: the registry is as it was.")
