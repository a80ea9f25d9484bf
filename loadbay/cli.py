"""The `loadbay` command: serve, migrate, keys, relay, files, load."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import typer
from prometheus_client import start_http_server
from rich.console import Console
from rich.table import Table

from loadbay.auth.keys import ApiKeys, Scope, parse_scopes
from loadbay.config import Settings
from loadbay.errors import LoadbayError
from loadbay.files.cli import files_app
from loadbay.loading.cli import load as load_command
from loadbay.logs import JsonFormatter
from loadbay.relay_process import relay_until_stopped
from loadbay.runtime import run_loop
from loadbay.storage import migrate as migrations
from loadbay.storage import schema_revision
from loadbay.storage.database import Database
from loadbay.storage.types import utcnow
from loadbay.supervisor import become_supervisor

T = TypeVar("T")

app = typer.Typer(
    help="Loadbay: a self-hosted bulk ingestion server.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(files_app, name="files")
app.command("load")(load_command)
console = Console(stderr=True)


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to listen on [env LOADBAY_HOST]."),
    port: int = typer.Option(None, help="Port to listen on [env LOADBAY_PORT]."),
    workers: int = typer.Option(
        None, min=1, help="Worker processes [env LOADBAY_WORKERS; default: one per CPU core]."
    ),
    migrate: bool = typer.Option(True, help="Apply database migrations before serving."),
) -> None:
    """Run the HTTP server (SQLite and a local folder unless configured otherwise)."""
    settings = Settings()
    if migrate:
        _migrate(settings)
    become_supervisor(
        host or settings.host,
        port or settings.port,
        workers or settings.workers or _usable_cores(),
        settings.log_format,
        relay=bool(settings.events_url and settings.relay_in_server),
    )


def _usable_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest revision."""
    _migrate(Settings())


def _migrate(settings: Settings) -> None:
    async def run() -> str | None:
        db = Database(settings.database_url)
        try:
            await migrations.upgrade(db)
            return await schema_revision.current_revision(db)
        finally:
            await db.dispose()

    revision = asyncio.run(run())
    if settings.log_format == "json":
        record = logging.LogRecord("loadbay", logging.INFO, __file__, 0, "", None, None)
        record.msg = f"database migrated to revision {revision} ({_redacted(settings)})"
        print(JsonFormatter().format(record), file=sys.stderr, flush=True)
        return
    console.print(
        f"[green]database migrated[/green] to revision {revision} ({_redacted(settings)})"
    )


def _redacted(settings: Settings) -> str:
    from sqlalchemy import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


@app.command()
def relay(
    metrics_port: int = typer.Option(
        None, help="Serve this relay's Prometheus metrics on this port (/metrics)."
    ),
) -> None:
    """Publish outbox events to LOADBAY_EVENTS_URL until interrupted (Ctrl-C, SIGTERM)."""
    settings = Settings()
    if not settings.events_url:
        console.print("[red]LOADBAY_EVENTS_URL is not set: there is no broker to publish to[/red]")
        raise typer.Exit(2)
    if metrics_port is not None:
        start_http_server(metrics_port, addr=settings.host)
    console.print(f"relaying events to {_redacted_url(settings.events_url or '')}")
    run_loop(relay_until_stopped(settings, migrate=True))


def _redacted_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _with_keys(action: Callable[[ApiKeys], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database(Settings().database_url)
        try:
            await migrations.upgrade(db)
            return await action(ApiKeys(db))
        finally:
            await db.dispose()

    return asyncio.run(run())


@keys_app.command("create")
def keys_create(
    tenant: str = typer.Option(..., help="The tenant the key acts for (created if new)."),
    scope: list[str] = typer.Option(
        ..., help=f"Repeat for several: {', '.join(s.value for s in Scope)}."
    ),
    name: str = typer.Option("", help="What the key is for."),
    expires_in_days: int | None = typer.Option(None, min=1, help="Expire after this many days."),
) -> None:
    """Create an API key and print it, once: only its hash is kept."""
    try:
        scopes = parse_scopes(scope)
    except LoadbayError as error:
        raise typer.BadParameter(error.message, param_hint="--scope") from None
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    try:
        new = _with_keys(lambda keys: keys.create(tenant, scopes, name=name, expires_at=expires))
    except LoadbayError as error:
        raise typer.BadParameter(error.message, param_hint="--tenant") from None
    console.print(
        f"created key {new.info.prefix}… for tenant {tenant!r} ({' '.join(new.info.scopes)})"
    )
    print(new.secret)


@keys_app.command("list")
def keys_list(tenant: str | None = typer.Option(None, help="Only this tenant's keys.")) -> None:
    """List keys by prefix (the secrets themselves are not stored).

    A table on a terminal; tab-separated lines when piped, for scripts.
    """
    columns = ("prefix", "tenant", "name", "scopes", "created", "expires", "revoked")
    rows = [
        (
            key.prefix,
            key.tenant_id,
            key.name,
            ",".join(key.scopes),
            _day(key.created_at),
            _day(key.expires_at),
            _day(key.revoked_at),
        )
        for key in _with_keys(lambda keys: keys.list(tenant))
    ]
    out = Console()
    if not out.is_terminal:
        for row in rows:
            print("\t".join(row))
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    prefix: str = typer.Argument(..., help="The key's prefix, as `keys list` shows."),
) -> None:
    """Revoke a key: it stops working at once."""
    if not _with_keys(lambda keys: keys.revoke(prefix)):
        console.print(f"[red]no active key with prefix {prefix!r}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {prefix}")


def _day(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M")
