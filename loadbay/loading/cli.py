"""`loadbay load FILE --into SURFACE`: the loader on the command line."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import orjson
import typer
from rich.console import Console

from loadbay.client import AsyncLoadbay, LoadbayError
from loadbay.files.cli import KEY_OPTION, URL_OPTION
from loadbay.loading.loader import BatchLoader, LoadRefused, Summary, load_instances
from loadbay.loading.progress import LoadProgress
from loadbay.loading.readers import count_records, file_format
from loadbay.loading.state import LoadState, state_path

EXIT_FAILED_RECORDS = 1
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130


class Into(StrEnum):
    ACTIVITIES = "activities"
    ENTITIES = "entities"
    EVENTS = "events"
    STATES = "states"
    INSTANCES = "instances"


def load(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="NDJSON, JSON array or CSV; .gz too."
    ),
    into: Into = typer.Option(..., "--into", help="Where the records go."),
    url: str = URL_OPTION,
    key: str = KEY_OPTION,
    concurrency: int = typer.Option(4, min=1, max=64, help="Requests in flight."),
    batch_size: int = typer.Option(
        None, min=1, help="Records per request [default: the surface's most]."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the load this file's state file describes."
    ),
    name: str = typer.Option(
        None, help="instances: the file's name on the server [default: loads/<file name>]."
    ),
    publish_events: bool = typer.Option(True, help="instances: publish domain events."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Check every record with the server's validation, write nothing (not instances).",
    ),
    as_json: bool = typer.Option(False, "--json", help="No progress bar; a JSON summary."),
) -> None:
    """Load a records file into a Loadbay server, in batches, several in flight.

    Failed records go to FILE.errors.ndjson with their line and code; the progress is kept in
    FILE.loadbay-state.json, so that --resume after Ctrl-C or a crash sends only the batches
    not yet acknowledged (each batch's Idempotency-Key makes a repeat harmless). Exit code 0
    when every record went in, 1 when some failed, 2 when the load could not run.
    """
    console = Console(stderr=True)
    shown = console.is_terminal and not as_json
    try:
        summary = asyncio.run(
            _run(
                file,
                into,
                url,
                key,
                _Options(concurrency, batch_size, resume, dry_run, name, publish_events),
                shown,
                console,
            )
        )
    except KeyboardInterrupt:
        going_on = " (the job goes on on the server)" if _job_started(file, into) else ""
        console.print(
            f"interrupted{going_on}: continue with `loadbay load {file} --into {into} --resume`"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (LoadRefused, LoadbayError, ValueError, OSError) as error:
        console.print(f"[red]load stopped: {error}[/red]")
        raise typer.Exit(EXIT_REFUSED) from None
    _report(summary, as_json, console)
    if summary.failed:
        raise typer.Exit(EXIT_FAILED_RECORDS)


def _job_started(file: Path, into: Into) -> bool:
    """Whether an instance load got as far as starting its job on the server."""
    saved = LoadState.read(state_path(file)) if into is Into.INSTANCES else None
    return saved is not None and saved.job is not None


@dataclass(frozen=True)
class _Options:
    concurrency: int
    batch_size: int | None
    resume: bool
    dry_run: bool
    name: str | None
    publish_events: bool


async def _run(
    file: Path, into: Into, url: str, key: str, options: _Options, shown: bool, console: Console
) -> Summary:
    async with AsyncLoadbay(url, key) as client:
        if into is Into.INSTANCES:
            if options.dry_run:
                raise LoadRefused("--dry-run checks batch surfaces, not instance files")
            with LoadProgress(
                f"{file.name} → instances", None, shown=shown, console=console
            ) as bar:
                return await load_instances(
                    client,
                    file,
                    options.name or f"loads/{file.name}",
                    publish_events=options.publish_events,
                    on_progress=bar.update,
                    resume=options.resume,
                )
        total = count_records(file, file_format(file)) if shown else None
        loader = BatchLoader(
            client,
            file,
            into.value,
            concurrency=options.concurrency,
            batch_size=options.batch_size,
            resume=options.resume,
            dry_run=options.dry_run,
        )
        label = f"{file.name} → {into}" + (" (dry run)" if options.dry_run else "")
        with LoadProgress(label, total, shown=shown, console=console) as bar:
            return await loader.run(bar.update)


def _report(summary: Summary, as_json: bool, console: Console) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(summary.as_json()).decode() + "\n")
        return
    before = f" ({summary.done_before:,} before the resume)" if summary.done_before else ""
    line = (
        f"{summary.records:,} records into {summary.into}{before} in {summary.seconds:.1f} s "
        f"({summary.records_per_second:,.0f}/s): {summary.succeeded:,} in, "
        f"{summary.failed:,} failed"
    )
    if summary.dry_run:
        line = line.replace(" in,", " valid,") + " (dry run: nothing written)"
    if summary.errors_file:
        line += f" — see {summary.errors_file}"
    console.print(line)
