"""The OpenAPI document describes what is served."""

from __future__ import annotations

import re

import httpx


async def test_every_endpoint_is_documented(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    paths = spec["paths"]
    assert set(paths["/api/v1/batch-inserts"]) == {"get", "post"}
    assert set(paths["/api/v1/batch-inserts/{batch_id}"]) == {"get", "put", "delete"}
    assert set(paths["/api/v1/activities"]) == {"get"}
    assert set(paths["/api/v1/activities/{activity_id}"]) == {"get"}


async def test_raw_bodies_are_documented_inline(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    post = spec["paths"]["/api/v1/batch-inserts"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    item = schema["properties"]["activities"]["items"]
    assert set(item["required"]) == {
        "coordinator_id",
        "mentor_id",
        "activity_type",
        "activity_date",
        "duration_minutes",
    }
    assert "201" in post["responses"]
    assert "413" in post["responses"]
    assert "database_unavailable" in post["responses"]["503"]["description"]
    put = spec["paths"]["/api/v1/batch-inserts/{batch_id}"]["put"]
    put_schema = put["requestBody"]["content"]["application/json"]["schema"]
    assert "retry_indices" in put_schema["properties"]
    assert "$ref" not in str(schema)


async def test_the_docs_pages_load_every_asset_from_this_server(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        assert "cdn.jsdelivr.net" not in html
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
        assert assets, html
        for asset in assets:
            assert asset.startswith("/"), asset  # on this server, not elsewhere
            assert (await client.get(asset)).status_code == 200, asset
