"""PUT/GET/list/DELETE /files on the local folder and on a real S3-compatible server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.instances.helpers import bulk, instance, stored, text_of, upload
from tests.conftest import ClientFactory
from tests.domain_events.broker_readers import reachable
from tests.servers import free_port


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback, for the whole run."""
    moto = Path(sys.executable).with_name("moto_server")
    if not moto.exists():
        pytest.skip("moto[server] is not installed: S3 tests skipped")
    port = free_port()
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            if reachable(endpoint):
                break
            time.sleep(0.1)
        else:
            pytest.fail("moto_server did not start")
        yield endpoint
    finally:
        process.kill()
        process.wait()


@pytest.fixture(params=["local", "s3"])
def settings_overrides(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    if request.param == "local":
        return {}
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"lb-{uuid.uuid4().hex[:12]}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")).close()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    return {"files_url": f"s3://{bucket}/loadbay", "s3_endpoint": endpoint}


async def test_put_get_list_delete(client: httpx.AsyncClient) -> None:
    blob = os.urandom(3 * 1024 * 1024 + 17)

    put = await client.put("/files/exports/2026/blob.bin", content=blob)
    got = await client.get("/files/exports/2026/blob.bin")
    listed = (await client.get("/files", params={"prefix": "exports/"})).json()["data"]
    deleted = await client.delete("/files/exports/2026/blob.bin")

    assert put.status_code == 201
    assert put.json() == {"name": "exports/2026/blob.bin", "size": len(blob)}
    assert got.content == blob
    assert got.headers["content-length"] == str(len(blob))
    assert [(f["name"], f["size"]) for f in listed] == [("exports/2026/blob.bin", len(blob))]
    assert deleted.status_code == 204
    assert (await client.get("/files/exports/2026/blob.bin")).status_code == 404


async def test_a_prefix_matches_names_not_only_whole_folders(client: httpx.AsyncClient) -> None:
    for name in ("in/a.ndjson", "in/a.ndjson_errors", "in/ab/c.ndjson", "in/b.ndjson", "out/a"):
        assert (await client.put(f"/files/{name}", content=b"x")).status_code == 201

    async def names(prefix: str) -> list[str]:
        listed = (await client.get("/files", params={"prefix": prefix})).json()["data"]
        return [f["name"] for f in listed]

    assert await names("in/a") == ["in/a.ndjson", "in/a.ndjson_errors", "in/ab/c.ndjson"]
    assert await names("in/ab/") == ["in/ab/c.ndjson"]
    assert await names("i") == [
        "in/a.ndjson",
        "in/a.ndjson_errors",
        "in/ab/c.ndjson",
        "in/b.ndjson",
    ]
    assert await names("") == [
        "in/a.ndjson",
        "in/a.ndjson_errors",
        "in/ab/c.ndjson",
        "in/b.ndjson",
        "out/a",
    ]


async def test_a_streamed_upload_is_stored_whole(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for n in range(40):
            yield bytes([n]) * 256 * 1024

    put = await client.put("/files/big.bin", content=chunks())
    got = await client.get("/files/big.bin")

    assert put.json()["size"] == 40 * 256 * 1024
    assert got.content == b"".join(bytes([n]) * 256 * 1024 for n in range(40))


# Percent-encoded, so that the HTTP client does not normalise them away before the server.
@pytest.mark.parametrize(
    "name", ["..%2Fescape", "a/%2E%2E/%2E%2E/b", "a%2F%2Fb", "%2Fabsolute", "a%5Cb", "a%00b"]
)
async def test_names_that_leave_the_space_are_400(client: httpx.AsyncClient, name: str) -> None:
    response = await client.put(f"/files/{name}", content=b"x")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_file_name"
    assert (await client.get("/files")).json()["data"] == []


async def test_tenants_have_separate_spaces(
    client: httpx.AsyncClient, make_client: ClientFactory
) -> None:
    other = await make_client(tenant="other")
    await client.put("/files/same-name.txt", content=b"mine")
    await other.put("/files/same-name.txt", content=b"theirs")

    assert (await client.get("/files/same-name.txt")).content == b"mine"
    assert (await other.get("/files/same-name.txt")).content == b"theirs"


async def test_file_scopes(make_client: ClientFactory) -> None:
    reader = await make_client(scopes=("read",))
    writer = await make_client(scopes=("ingest:files",))

    assert (await reader.put("/files/x", content=b"x")).status_code == 403
    assert (await writer.put("/files/x", content=b"x")).status_code == 201
    assert (await writer.get("/files/x")).status_code == 403
    assert (await reader.get("/files/x")).status_code == 200


async def test_bulk_upsert_reads_and_writes_through_the_store(client: httpx.AsyncClient) -> None:
    await upload(client, "in/a.ndjson", instance(1), b"broken", instance(2))

    response = await bulk(client, "in/a.ndjson")

    assert response.json()["errorsNumber"] == 1
    assert (await stored(client, 2))["title"] == "Title 2"
    assert (await text_of(client, "in/a.ndjson_failedEntities")) == "broken\n"
    names = [f["name"] for f in (await client.get("/files")).json()["data"]]
    assert names == ["in/a.ndjson", "in/a.ndjson_errors", "in/a.ndjson_failedEntities"]
