"""`loadbay files put|get|ls`: the files API from the command line, streamed both ways."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import typer

files_app = typer.Typer(
    help="Upload, download and list files on a Loadbay server (LOADBAY_URL, LOADBAY_API_KEY).",
    no_args_is_help=True,
)

URL_OPTION = typer.Option(
    "http://127.0.0.1:8000", envvar="LOADBAY_URL", help="The server [env LOADBAY_URL]."
)
KEY_OPTION = typer.Option(..., envvar="LOADBAY_API_KEY", help="An API key [env LOADBAY_API_KEY].")


def _client(url: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=None
    )


def _fail(response: httpx.Response) -> None:
    if response.is_error:
        response.read()
        typer.echo(f"error {response.status_code}: {response.text}", err=True)
        raise typer.Exit(1)


@files_app.command("put")
def put(
    source: Path = typer.Argument(..., exists=True, dir_okay=False, help="Local file."),
    name: str = typer.Argument(..., help="Name in the tenant's space, e.g. in/batch-1.ndjson."),
    url: str = URL_OPTION,
    key: str = KEY_OPTION,
) -> None:
    """Upload a local file (streamed)."""
    with _client(url, key) as client, source.open("rb") as data:
        response = client.put(f"/files/{name}", content=data)
    _fail(response)
    typer.echo(f"{name}\t{response.json()['size']} bytes")


@files_app.command("get")
def get(
    name: str = typer.Argument(...),
    target: str = typer.Argument("-", help="Local file, or - for standard output."),
    url: str = URL_OPTION,
    key: str = KEY_OPTION,
) -> None:
    """Download a file (streamed)."""
    with _client(url, key) as client, client.stream("GET", f"/files/{name}") as response:
        _fail(response)
        out = sys.stdout.buffer if target == "-" else open(target, "wb")  # noqa: SIM115
        try:
            for chunk in response.iter_bytes():
                out.write(chunk)
        finally:
            if out is not sys.stdout.buffer:
                out.close()
            else:
                out.flush()


@files_app.command("ls")
def ls(
    prefix: str = typer.Option("", help="Only names starting with this."),
    url: str = URL_OPTION,
    key: str = KEY_OPTION,
) -> None:
    """List files: name, size, last modified (tab-separated)."""
    with _client(url, key) as client:
        response = client.get("/files", params={"prefix": prefix})
    _fail(response)
    for entry in response.json()["data"]:
        typer.echo(f"{entry['name']}\t{entry['size']}\t{entry['lastModified']}")
