"""POST /instance-storage/instances/bulk: per-record outcomes, error files, FOLIO semantics."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi import FastAPI

from loadbay.files import jobs as file_jobs
from tests.api.instances.helpers import (
    INSTANCES,
    STATUS,
    bulk,
    iid,
    instance,
    stored,
    text_of,
    upload,
)
from tests.conftest import ClientFactory


async def test_a_clean_file_creates_every_instance(client: httpx.AsyncClient) -> None:
    await upload(client, "in/a.ndjson", instance(1), instance(2), instance(3))

    response = await bulk(client, "in/a.ndjson")

    assert response.status_code == 201
    assert response.json() == {
        "errorRecordsFileName": "in/a.ndjson_failedEntities",
        "errorsFileName": "in/a.ndjson_errors",
        "errorsNumber": 0,
    }
    assert await text_of(client, "in/a.ndjson_errors") == ""
    assert await text_of(client, "in/a.ndjson_failedEntities") == ""
    first = await stored(client, 1)
    assert first["title"] == "Title 1"
    assert first["_version"] == 1
    assert first["hrid"] == "in00000000001"
    page = (await client.get(INSTANCES, params={"limit": 2, "offset": 1})).json()
    assert page["totalRecords"] == 3
    assert [i["id"] for i in page["instances"]] == [iid(2), iid(3)]


async def test_bad_lines_fail_alone_into_the_error_files(client: httpx.AsyncClient) -> None:
    bad_type = instance(4, instanceTypeId="not-a-uuid")
    extra = instance(5, colour="blue")
    no_title = instance(6, title=None)
    await upload(
        client,
        "mixed.ndjson",
        instance(1),
        b"{not json",
        bad_type,
        extra,
        no_title,
        instance(7, instanceFormatIds=["bad"]),
        instance(2),
    )

    response = await bulk(client, "mixed.ndjson")

    assert response.json()["errorsNumber"] == 5
    errors = (await text_of(client, "mixed.ndjson_errors")).splitlines()
    assert [line.split(", ", 1)[0] for line in errors] == [
        "2",
        iid(4),
        iid(5),
        iid(6),
        iid(7),
    ]
    codes = [line.split(", ", 1)[1].split(":")[0] for line in errors]
    assert codes == ["INVALID_JSON"] + ["VALIDATION_ERROR"] * 4
    assert "unrecognized field(s): colour" in errors[2]
    assert "title may not be null" in errors[3]
    failed = (await text_of(client, "mixed.ndjson_failedEntities")).splitlines()
    assert failed[0] == "{not json"
    assert [f for f in failed[1:]] == [
        line.decode()
        for line in __import__("tests.api.instances.helpers", fromlist=["x"])
        .ndjson(bad_type, extra, no_title, instance(7, instanceFormatIds=["bad"]))
        .splitlines()
    ]
    assert (await client.get(INSTANCES)).json()["totalRecords"] == 2


async def test_updates_replace_the_record_but_keep_protected_fields(
    client: httpx.AsyncClient,
) -> None:
    await upload(
        client,
        "v1.ndjson",
        instance(1, staffSuppress=True, statusId=STATUS, editions=["1st"], tags={"tagList": ["a"]}),
    )
    await bulk(client, "v1.ndjson")
    await upload(
        client,
        "v2.ndjson",
        instance(1, title="New title", staffSuppress=False, discoverySuppress=True, _version=1),
    )

    response = await bulk(client, "v2.ndjson")

    assert response.json()["errorsNumber"] == 0
    record = await stored(client, 1)
    assert record["title"] == "New title"
    assert record["_version"] == 2
    assert "editions" not in record
    assert record["staffSuppress"] is True
    assert record["statusId"] == STATUS
    assert record["tags"] == {"tagList": ["a"]}
    assert "discoverySuppress" not in record
    assert record["hrid"] == "in00000000001"


@pytest.mark.parametrize(
    ("version", "shown"), [(1, None), (7, "7"), (None, "<NULL>"), (-1, "<NULL>")]
)
async def test_an_update_needs_the_stored_version_as_folio_locks_optimistically(
    client: httpx.AsyncClient, version: int | None, shown: str | None
) -> None:
    await upload(client, "a.ndjson", instance(1))
    await bulk(client, "a.ndjson")
    await upload(client, "b.ndjson", instance(1, title="Changed", _version=version))

    response = await bulk(client, "b.ndjson")

    record = await stored(client, 1)
    if shown is None:
        assert response.json()["errorsNumber"] == 0
        assert (record["title"], record["_version"]) == ("Changed", 2)
        return
    assert response.json()["errorsNumber"] == 1
    assert (record["title"], record["_version"]) == ("Title 1", 1)
    assert await text_of(client, "b.ndjson_errors") == (
        f"{iid(1)}, OPTIMISTIC_LOCKING: Cannot update record {iid(1)} because it has been "
        f"changed (optimistic locking): Stored _version is 1, _version of request is {shown}\n"
    )


async def test_a_create_needs_no_version(client: httpx.AsyncClient) -> None:
    await upload(client, "a.ndjson", instance(1), instance(2, _version=5))

    response = await bulk(client, "a.ndjson")

    assert response.json()["errorsNumber"] == 0
    assert [(await stored(client, n))["_version"] for n in (1, 2)] == [1, 1]


@pytest.mark.parametrize("settings_overrides", [{"instance_optimistic_locking": "off"}])
async def test_with_optimistic_locking_off_every_update_overwrites(
    client: httpx.AsyncClient,
) -> None:
    await upload(client, "a.ndjson", instance(1), instance(2))
    await bulk(client, "a.ndjson")
    await upload(
        client, "b.ndjson", instance(1, title="No version"), instance(2, title="Old", _version=9)
    )

    response = await bulk(client, "b.ndjson")

    assert response.json()["errorsNumber"] == 0
    assert [(await stored(client, n))["_version"] for n in (1, 2)] == [2, 2]
    assert (await stored(client, 2))["title"] == "Old"


async def test_hrids_are_assigned_kept_and_unique(client: httpx.AsyncClient) -> None:
    await upload(
        client,
        "a.ndjson",
        instance(1),
        instance(2, hrid="custom-7"),
        instance(3),
        instance(4, hrid="custom-7"),
        instance(5, matchKey="mk"),
        instance(6, matchKey="mk"),
    )
    await bulk(client, "a.ndjson")
    await upload(client, "b.ndjson", instance(7, hrid="in00000000001"), instance(8, matchKey="mk"))

    second = await bulk(client, "b.ndjson")

    assert (await stored(client, 1))["hrid"] == "in00000000001"
    assert (await stored(client, 2))["hrid"] == "custom-7"
    assert (await stored(client, 3))["hrid"] == "in00000000002"
    first_errors = (await text_of(client, "a.ndjson_errors")).splitlines()
    assert [line.split(", ")[0] for line in first_errors] == [iid(4), iid(6)]
    assert all("UNIQUE_VIOLATION" in line for line in first_errors)
    assert second.json()["errorsNumber"] == 2
    assert "hrid 'in00000000001' is already used" in await text_of(client, "b.ndjson_errors")


async def test_a_re_load_mixing_stored_and_new_ids_meets_each_as_what_it_is(
    client: httpx.AsyncClient, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A file's chunks are first taken for new (on PostgreSQL, after a load of new records):
    one that meets stored records is written again after reading them, as if it had never
    been tried: the stored keep their hrids and protected fields, each record changes once."""
    await upload(client, "a.ndjson", instance(1, statusId=STATUS), instance(3, statusId=STATUS))
    await bulk(client, "a.ndjson")
    await upload(
        client,
        "b.ndjson",
        instance(2),
        instance(1, title="One again", _version=1),
        instance(4),
        instance(3, title="Three again", _version=1),
    )
    caplog.set_level(logging.DEBUG, logger="loadbay.files")

    response = await bulk(client, "b.ndjson")

    guessed_wrong = [r for r in caplog.records if "met stored records" in r.getMessage()]
    assert len(guessed_wrong) == (1 if backend == "postgres" else 0)

    assert response.json()["errorsNumber"] == 0
    again = [await stored(client, n) for n in (1, 3)]
    assert [(r["title"], r["_version"], r["hrid"]) for r in again] == [
        ("One again", 2, "in00000000001"),
        ("Three again", 2, "in00000000002"),
    ]
    assert all(r["statusId"] == STATUS for r in again)
    new = [await stored(client, n) for n in (2, 4)]
    assert [r["_version"] for r in new] == [1, 1]
    hrids = {r["hrid"] for r in new}
    assert len(hrids) == 2
    assert all(h.startswith("in") and h not in {"in00000000001", "in00000000002"} for h in hrids)
    events = (await client.get("/events", params={"collection": "instances"})).json()["data"]
    assert sorted((e["key"], e["type"]) for e in events[2:]) == [
        (iid(1), "UPDATE"),
        (iid(2), "CREATE"),
        (iid(3), "UPDATE"),
        (iid(4), "CREATE"),
    ]
    assert len(events) == 6


@pytest.mark.parametrize(
    "settings_overrides", [{"instance_optimistic_locking": "off", "file_chunk_lines": 40}]
)
async def test_two_files_of_the_same_ids_loaded_at_once_store_each_instance_once(
    client: httpx.AsyncClient,
) -> None:
    """Both jobs take their chunks for new: the first to insert an id creates it, and the
    other meets it stored and writes it again, as an update, after reading it."""
    ids = range(1, 201)
    for name in ("a", "b"):
        await upload(client, f"{name}.ndjson", *(instance(n, title=f"{name} {n}") for n in ids))

    answers = await asyncio.gather(bulk(client, "a.ndjson"), bulk(client, "b.ndjson"))

    assert [answer.json()["errorsNumber"] for answer in answers] == [0, 0]
    records = [await stored(client, n) for n in ids]
    assert {r["_version"] for r in records} == {2}
    assert all(r["title"] in (f"a {n}", f"b {n}") for n, r in zip(ids, records, strict=True))
    assert len({r["hrid"] for r in records}) == len(ids)
    events = (
        await client.get("/events", params={"collection": "instances", "limit": 1000})
    ).json()["data"]
    assert sorted((e["key"], e["type"]) for e in events) == sorted(
        (iid(n), kind) for n in ids for kind in ("CREATE", "UPDATE")
    )


async def test_an_assigned_hrid_an_instance_chose_for_itself_fails_the_record_not_the_file(
    client: httpx.AsyncClient,
) -> None:
    await upload(client, "chosen.ndjson", instance(1, hrid="in00000000002"))
    await bulk(client, "chosen.ndjson")
    await upload(client, "blank.ndjson", instance(2), instance(3), instance(4))

    response = await bulk(client, "blank.ndjson")

    assert response.json()["errorsNumber"] == 1
    errors = await text_of(client, "blank.ndjson_errors")
    assert errors.startswith(f"{iid(3)}, UNIQUE_VIOLATION: hrid 'in00000000002' is already used")
    assert [(await stored(client, n))["hrid"] for n in (1, 2, 4)] == [
        "in00000000002",
        "in00000000001",
        "in00000000003",
    ]


async def test_an_update_keeping_its_hrid_and_match_key_passes_and_a_taker_fails(
    client: httpx.AsyncClient,
) -> None:
    await upload(client, "a.ndjson", instance(1, hrid="h-1", matchKey="mk-1"), instance(2))
    await bulk(client, "a.ndjson")
    await upload(
        client,
        "b.ndjson",
        instance(1, title="Kept", hrid="h-1", matchKey="mk-1", _version=1),
        instance(2, title="Taker", matchKey="mk-1", _version=1),
        instance(3, hrid="h-1"),
    )

    response = await bulk(client, "b.ndjson")

    errors = (await text_of(client, "b.ndjson_errors")).splitlines()
    assert response.json()["errorsNumber"] == 2
    assert [line.split(", ")[0] for line in errors] == [iid(2), iid(3)]
    assert "matchKey 'mk-1' is already used by instance" in errors[0]
    assert "hrid 'h-1' is already used by instance" in errors[1]
    assert (await stored(client, 1))["title"] == "Kept"


@pytest.mark.parametrize(
    "settings_overrides", [{"file_chunk_lines": 2, "instance_optimistic_locking": "off"}]
)
async def test_the_last_duplicate_id_in_a_file_wins_across_chunks(
    client: httpx.AsyncClient,
) -> None:
    await upload(
        client,
        "dups.ndjson",
        instance(1, title="first"),
        instance(2),
        instance(1, title="second"),
        instance(3),
        instance(1, title="third"),
    )

    response = await bulk(client, "dups.ndjson")

    assert response.json()["errorsNumber"] == 0
    record = await stored(client, 1)
    assert record["title"] == "third"
    assert (await client.get(INSTANCES)).json()["totalRecords"] == 3


async def test_nul_in_a_value_stored_as_plain_text_fails_that_line_alone(
    client: httpx.AsyncClient,
) -> None:
    """hrid, matchKey and a linked title's text are columns, not JSON: NUL cannot go there
    (PostgreSQL refuses it), so the line is refused by name, on either database."""
    await upload(
        client,
        "nul.ndjson",
        instance(1, hrid="in\u0000x"),
        instance(2, matchKey="k\u0000"),
        instance(3, precedingTitles=[{"title": "Old\u0000name"}]),
        instance(4, title="Title with \u0000 in JSON is fine"),
    )

    response = await bulk(client, "nul.ndjson")

    assert response.json()["errorsNumber"] == 3
    errors = (await text_of(client, "nul.ndjson_errors")).splitlines()
    assert [line.split(", ", 1)[0] for line in errors] == [iid(1), iid(2), iid(3)]
    assert "hrid may not contain NUL" in errors[0]
    assert "matchKey may not contain NUL" in errors[1]
    assert "title of a linked title may not contain NUL" in errors[2]
    assert (await stored(client, 4))["title"] == "Title with \u0000 in JSON is fine"


async def test_error_parts_left_by_an_earlier_run_do_not_reach_the_error_files(
    client: httpx.AsyncClient,
) -> None:
    """A run that wrote a chunk's error parts and died before its commit leaves them; the
    chunk, redone without failures, takes them away."""
    await upload(client, "a.ndjson", instance(1), instance(2))
    for stale in ("a.ndjson_errors.parts/0000000000", "a.ndjson_failedEntities.parts/0000000000"):
        assert (await client.put(f"/files/{stale}", content=b"stale\n")).status_code == 201

    response = await bulk(client, "a.ndjson")

    assert response.json()["errorsNumber"] == 0
    assert await text_of(client, "a.ndjson_errors") == ""
    assert await text_of(client, "a.ndjson_failedEntities") == ""


async def test_gzipped_files_are_read(client: httpx.AsyncClient) -> None:
    await upload(client, "a.ndjson.gz", instance(1), b"oops", instance(2), gz=True)

    response = await bulk(client, "a.ndjson.gz")

    assert response.json()["errorsNumber"] == 1
    assert (await stored(client, 2))["title"] == "Title 2"


async def test_an_instance_without_id_gets_one(client: httpx.AsyncClient) -> None:
    await upload(client, "a.ndjson", instance(0, id=None))

    await bulk(client, "a.ndjson")

    (record,) = (await client.get(INSTANCES)).json()["instances"]
    assert len(record["id"]) == 36
    assert record["hrid"] == "in00000000001"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"recordsFileName": "missing.ndjson"}, "file_not_found"),
        ({}, "invalid_body"),
        ({"recordsFileName": "a", "publishEvents": "yes"}, "invalid_body"),
        ({"recordsFileName": "a", "unknown": 1}, "invalid_body"),
        ({"recordsFileName": 5}, "invalid_body"),
    ],
)
async def test_bad_requests_are_422_in_the_errors_shape(
    client: httpx.AsyncClient, body: dict, code: str
) -> None:
    response = await client.post("/instance-storage/instances/bulk", json=body)

    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["code"] == code
    assert error["type"] == "1"
    assert isinstance(error["parameters"], list)


@pytest.mark.parametrize("name", ["../other/file", "//abs", "a//b", "a/./b", "x\\y"])
async def test_names_outside_the_tenant_space_are_refused(
    client: httpx.AsyncClient, name: str
) -> None:
    response = await client.post("/instance-storage/instances/bulk", json={"recordsFileName": name})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_file_name"


async def test_publish_events_true_writes_events_and_false_writes_none(
    client: httpx.AsyncClient,
) -> None:
    await upload(client, "a.ndjson", instance(1), instance(2))
    await bulk(client, "a.ndjson")
    await upload(client, "b.ndjson", instance(1, title="Quiet", _version=1))
    await bulk(client, "b.ndjson", publishEvents=False)
    await upload(client, "c.ndjson", instance(2, title="Loud", _version=1))
    await bulk(client, "c.ndjson", publishEvents=True)

    events = (await client.get("/events", params={"collection": "instances"})).json()["data"]

    assert [(e["type"], e["key"]) for e in events] == [
        ("CREATE", iid(1)),
        ("CREATE", iid(2)),
        ("UPDATE", iid(2)),
    ]
    update = events[2]
    assert update["old"]["title"] == "Title 2"
    assert update["new"]["title"] == "Loud"
    assert (update["old"]["_version"], update["new"]["_version"]) == (1, 2)
    assert update["new"]["hrid"] == "in00000000002"
    assert update["jobId"].startswith("job_")


async def test_events_carry_documents_in_any_script_whole(client: httpx.AsyncClient) -> None:
    # The capture adds `_version` before a stored document's closing brace: characters of
    # 2, 3 and 4 bytes just before it must stay whole.
    first, second = 'Ünïcødé "quoted" \\ 漢字 😀', "Ωμέγα 😀"
    # The document keeps its keys' order: the hrid, sent last, ends it.
    await upload(client, "a.ndjson", instance(1, title=first, indexTitle="末", hrid="hr-😀"))
    await bulk(client, "a.ndjson")
    again = instance(1, title=second, indexTitle="é", hrid="hr-😀", _version=1)
    await upload(client, "b.ndjson", again)
    await bulk(client, "b.ndjson")

    events = (await client.get("/events", params={"collection": "instances"})).json()["data"]

    assert [e["type"] for e in events] == ["CREATE", "UPDATE"]
    created, updated = events
    assert (created["new"]["title"], created["new"]["indexTitle"]) == (first, "末")
    assert (updated["old"]["title"], updated["old"]["indexTitle"]) == (first, "末")
    assert (updated["new"]["title"], updated["new"]["indexTitle"]) == (second, "é")
    assert (updated["old"]["_version"], updated["new"]["_version"]) == (1, 2)
    assert updated["new"]["hrid"] == "hr-😀"


async def test_async_mode_answers_202_and_a_job_to_poll(client: httpx.AsyncClient) -> None:
    await upload(client, "a.ndjson", instance(1), b"bad", instance(2))

    response = await client.post(
        "/instance-storage/instances/bulk",
        json={"recordsFileName": "a.ndjson"},
        headers={"Prefer": "respond-async"},
    )

    assert response.status_code == 202
    location = response.headers["location"]
    for _ in range(100):
        job = (await client.get(location)).json()
        if job["status"] != "processing":
            break
        await asyncio.sleep(0.1)
    assert job["status"] == "completed"
    assert (job["linesRead"], job["linesTotal"], job["progress"]) == (3, 3, 100)
    assert (job["succeeded"], job["failed"], job["errorsNumber"]) == (2, 1, 1)
    assert job["errorsFileName"] == "a.ndjson_errors"


async def test_jobs_and_files_are_per_tenant(
    client: httpx.AsyncClient, make_client: ClientFactory
) -> None:
    other = await make_client(tenant="other")
    await upload(client, "mine.ndjson", instance(1))
    accepted = await client.post(
        "/instance-storage/instances/bulk",
        json={"recordsFileName": "mine.ndjson"},
        headers={"Prefer": "respond-async"},
    )

    assert (await other.get(accepted.headers["location"])).status_code == 404
    assert (await bulk(other, "mine.ndjson")).status_code == 422
    assert (await other.get("/files/mine.ndjson")).status_code == 404
    assert (await other.get("/files")).json()["data"] == []


@pytest.mark.parametrize("params", [{"offset": 2**70}, {"offset": -1}, {"limit": 1001}])
async def test_out_of_range_paging_is_422(client: httpx.AsyncClient, params: dict) -> None:
    response = await client.get(INSTANCES, params=params)

    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "invalid_parameter"


@pytest.mark.parametrize("settings_overrides", [{"hrid_prefix": "bk"}])
async def test_the_hrid_prefix_is_configurable(client: httpx.AsyncClient) -> None:
    await upload(client, "a.ndjson", instance(1))

    await bulk(client, "a.ndjson")

    assert (await stored(client, 1))["hrid"] == "bk00000000001"


async def test_a_large_file_refreshes_the_planner_statistics(
    client: httpx.AsyncClient, started: FastAPI, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_jobs, "ANALYZE_AFTER_LINES", 3)
    await upload(client, "in/small.ndjson", instance(1), instance(2))
    await upload(client, "in/large.ndjson", instance(3), instance(4), instance(5))
    before = await _statistics_stamp(started, backend)

    assert (await bulk(client, "in/small.ndjson")).status_code == 201
    after_small = await _statistics_stamp(started, backend)
    assert (await bulk(client, "in/large.ndjson")).status_code == 201
    after_large = await _statistics_stamp(started, backend)

    assert after_small == before
    assert after_large != after_small


async def _statistics_stamp(app: FastAPI, backend: str) -> object:
    """When the instances table was last analyzed (PostgreSQL), or its statistics (SQLite)."""
    async with app.state.db.read() as conn:
        if backend == "postgres":
            query = "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'instances'"
            return (await conn.exec_driver_sql(query)).scalar_one()
        query = "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
        if not (await conn.exec_driver_sql(query)).scalar_one():
            return None
        query = "SELECT stat FROM sqlite_stat1 WHERE tbl = 'instances' ORDER BY idx"
        return (await conn.exec_driver_sql(query)).all()
