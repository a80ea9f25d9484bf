"""The `loadbay` command: serve, migrate."""

from __future__ import annotations

import asyncio
import os

import typer
import uvicorn
from rich.console import Console

from loadbay.config import Settings
from loadbay.storage import migrate as migrations
from loadbay.storage.database import Database

app = typer.Typer(help="Loadbay: a self-hosted bulk ingestion server.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to listen on [env LOADBAY_HOST]."),
    port: int = typer.Option(None, help="Port to listen on [env LOADBAY_PORT]."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    migrate: bool = typer.Option(True, help="Apply database migrations before serving."),
) -> None:
    """Run the HTTP server (SQLite and a local folder unless configured otherwise)."""
    settings = Settings()
    if migrate:
        _migrate(settings)
    # Workers find the schema ready; they check it instead of racing to migrate it.
    os.environ["LOADBAY_MIGRATE_ON_START"] = "false"
    uvicorn.run(
        "loadbay.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="info",
    )


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest revision."""
    _migrate(Settings())


def _migrate(settings: Settings) -> None:
    async def run() -> str | None:
        db = Database(settings.database_url)
        try:
            await migrations.upgrade(db)
            return await migrations.current_revision(db)
        finally:
            await db.dispose()

    revision = asyncio.run(run())
    console.print(
        f"[green]database migrated[/green] to revision {revision} ({_redacted(settings)})"
    )


def _redacted(settings: Settings) -> str:
    from sqlalchemy import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)
