"""Malformed batch-insert requests get a precise 4xx in the error envelope, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import ACTIVITIES, BATCHES, activity, batch

JSON = {"content-type": "application/json"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error


async def assert_nothing_stored(client: httpx.AsyncClient) -> None:
    assert (await client.get(ACTIVITIES)).json()["pagination"]["total"] == 0
    assert (await client.get(BATCHES)).json()["pagination"]["total"] == 0


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b'{"activities": [', 400, "malformed_json"),
        (b"\xff\xfe", 400, "malformed_json"),
        (b"", 400, "empty_body"),
        (b"[]", 400, "invalid_body"),
        (b'"activities"', 400, "invalid_body"),
        (b"{}", 400, "invalid_body"),
        (b'{"activities": {}}', 400, "invalid_body"),
        (b'{"activities": null}', 400, "invalid_body"),
        (b'{"activities": []}', 400, "empty_batch"),
        (b'{"activities": [], "extra": 1}', 400, "invalid_body"),
    ],
)
async def test_malformed_bodies(
    client: httpx.AsyncClient, content: bytes, status: int, code: str
) -> None:
    response = await client.post(BATCHES, content=content, headers=JSON)

    assert_error(response, status, code)
    await assert_nothing_stored(client)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_wrong_content_type_is_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(BATCHES, content=b'{"activities": []}', headers=headers)

    assert_error(response, 415, "unsupported_media_type")


async def test_json_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        BATCHES,
        content=httpx.Request("POST", "/", json=batch(activity(1))).content,
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


@pytest.mark.parametrize("settings_overrides", [{"batch_max_records": 3}])
async def test_too_many_records_is_413_and_writes_nothing(client: httpx.AsyncClient) -> None:
    response = await client.post(BATCHES, json=batch(*(activity(n) for n in range(4))))

    error = assert_error(response, 413, "batch_too_large")
    assert "at most 3" in error["message"]
    await assert_nothing_stored(client)
    ok = await client.post(BATCHES, json=batch(*(activity(n) for n in range(3))))
    assert ok.status_code == 201


async def test_default_limit_is_one_thousand_records(client: httpx.AsyncClient) -> None:
    response = await client.post(BATCHES, json=batch(*(activity(n) for n in range(1001))))

    assert_error(response, 413, "batch_too_large")


@pytest.mark.parametrize("settings_overrides", [{"max_body_bytes": 2048}])
async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(BATCHES, json=batch(activity(1, coordinator_id="c" * 4000)))

    assert_error(response, 413, "payload_too_large")
    await assert_nothing_stored(client)


@pytest.mark.parametrize("settings_overrides", [{"max_body_bytes": 2048}])
async def test_oversized_streamed_body_without_length_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"activities": ['
        for _ in range(100):
            yield b'{"mentor_id": "' + b"m" * 50 + b'"},'
        yield b"{}]}"

    response = await client.post(BATCHES, content=chunks(), headers=JSON)

    assert_error(response, 413, "payload_too_large")


async def test_huge_string_value_fails_its_record_only(client: httpx.AsyncClient) -> None:
    response = await client.post(
        BATCHES, json=batch(activity(1, mentor_id="m" * 1_000_000), activity(2))
    )

    assert response.status_code == 201
    results = response.json()["results"]
    assert results[0]["error"] == "validation_error"
    assert results[1]["status"] == "success"


async def test_deeply_nested_json_is_rejected_cleanly(client: httpx.AsyncClient) -> None:
    content = b'{"activities": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
    response = await client.post(BATCHES, content=content, headers=JSON)

    assert_error(response, 400, "malformed_json")


async def test_unknown_route_and_method_use_the_envelope(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(await client.patch(BATCHES), 405, "method_not_allowed")
