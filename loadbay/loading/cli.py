"""`loadbay load FILE --into SURFACE`: the loader on the command line."""

from __future__ import annotations

import asyncio
import sys
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
                concurrency,
                batch_size,
                resume,
                name,
                publish_events,
                shown,
                console,
            )
        )
    except KeyboardInterrupt:
        console.print(f"interrupted: continue with `loadbay load {file} --into {into} --resume`")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (LoadRefused, LoadbayError, ValueError, OSError) as error:
        console.print(f"[red]load stopped: {error}[/red]")
        raise typer.Exit(EXIT_REFUSED) from None
    _report(summary, as_json, console)
    if summary.failed:
        raise typer.Exit(EXIT_FAILED_RECORDS)


async def _run(
    file: Path,
    into: Into,
    url: str,
    key: str,
    concurrency: int,
    batch_size: int | None,
    resume: bool,
    name: str | None,
    publish_events: bool,
    shown: bool,
    console: Console,
) -> Summary:
    async with AsyncLoadbay(url, key) as client:
        if into is Into.INSTANCES:
            with LoadProgress(
                f"{file.name} → instances", None, shown=shown, console=console
            ) as bar:
                return await load_instances(
                    client,
                    file,
                    name or f"loads/{file.name}",
                    publish_events=publish_events,
                    on_progress=bar.update,
                )
        total = count_records(file, file_format(file)) if shown else None
        loader = BatchLoader(
            client, file, into.value, concurrency=concurrency, batch_size=batch_size, resume=resume
        )
        with LoadProgress(f"{file.name} → {into}", total, shown=shown, console=console) as bar:
            return await loader.run(bar.update)


def _report(summary: Summary, as_json: bool, console: Console) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(summary.as_json()).decode() + "\n")
        return
    rate = summary.records / summary.seconds if summary.seconds else 0.0
    line = (
        f"{summary.records:,} records into {summary.into} in {summary.seconds:.1f} s "
        f"({rate:,.0f}/s): {summary.succeeded:,} in, {summary.failed:,} failed"
    )
    if summary.errors_file:
        line += f" — see {summary.errors_file}"
    console.print(line)
