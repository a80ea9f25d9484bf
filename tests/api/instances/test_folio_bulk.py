"""Cases ported from FOLIO mod-inventory-storage's own tests of the instance bulk upsert
(InstanceStorageInstancesBulkApiTest / InstanceBulkUpsertIT, InstanceBulkProcessingUtilTest,
BulkProcessingContextTest), over HTTP as mod-marc-migrations calls it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.instances.helpers import bulk, iid, instance, stored, text_of, upload

HOUSTON = {"title": "Houston oil directory"}
TRADE = {"title": "International trade statistics"}
MISSING = "00000000-0000-4000-8000-999999999999"


async def events_of(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/events", params={"collection": "instances", "limit": 1000})
    events: list[dict[str, Any]] = response.json()["data"]
    return events


def titles_of(record: dict[str, Any]) -> list[tuple[str | None, str | None, str | None]]:
    """(precedingInstanceId, succeedingInstanceId, title) of both lists, as read back."""
    return [
        (t.get("precedingInstanceId"), t.get("succeedingInstanceId"), t.get("title"))
        for t in record["precedingTitles"] + record["succeedingTitles"]
    ]


async def test_an_update_keeps_fields_marc_does_not_control_and_replaces_the_titles(
    client: httpx.AsyncClient,
) -> None:
    # shouldUpdateInstancesWithoutErrors: two instances and two titles of the second exist.
    await upload(
        client,
        "seed.ndjson",
        instance(1, tags={"tagList": ["test-tag"]}, administrativeNotes=["test-note"]),
        instance(2, tags={"tagList": ["test-tag"]}, precedingTitles=[HOUSTON, TRADE]),
    )
    await bulk(client, "seed.ndjson")
    await upload(
        client,
        "bulkInstances.ndjson",
        instance(1, title="Long Way to a Small Angry Planet", precedingTitles=[], _version=1),
        instance(2, title="Uprooted", precedingTitles=[HOUSTON, TRADE], _version=1),
    )

    response = await bulk(client, "bulkInstances.ndjson")

    assert response.status_code == 201
    assert response.json()["errorsNumber"] == 0
    first, second = await stored(client, 1), await stored(client, 2)
    assert (first["_version"], second["_version"]) == (2, 2)
    assert first["tags"] == {"tagList": ["test-tag"]}
    assert first["administrativeNotes"] == ["test-note"]
    # Replaced, not added to: two rows, each naming instance 2 as the succeeding end.
    assert titles_of(second) == [
        (None, iid(2), "Houston oil directory"),
        (None, iid(2), "International trade statistics"),
    ]
    assert first["precedingTitles"] == first["succeedingTitles"] == []
    updates = [e for e in await events_of(client) if e["type"] == "UPDATE"]
    assert sorted(e["key"] for e in updates) == [iid(1), iid(2)]


async def test_without_publishing_events_no_update_event_goes_out(
    client: httpx.AsyncClient,
) -> None:
    await upload(client, "seed.ndjson", instance(1), instance(2))
    await bulk(client, "seed.ndjson")
    await upload(client, "b.ndjson", instance(1, _version=1), instance(2, _version=1))

    response = await bulk(client, "b.ndjson", publishEvents=False)

    assert response.json()["errorsNumber"] == 0
    assert [e["type"] for e in await events_of(client)] == ["CREATE", "CREATE"]


async def test_an_instance_whose_title_names_a_missing_instance_is_not_written_at_all(
    client: httpx.AsyncClient,
) -> None:
    # shouldUpdateInstancesInTransaction: the instance and its links are one unit.
    await upload(client, "seed.ndjson", instance(1), instance(2), instance(3))
    await bulk(client, "seed.ndjson")
    link = {"title": "Gone", "precedingInstanceId": MISSING}
    await upload(
        client,
        "parentLocation/filePath/bulkInstances",
        instance(1, title="Changed", precedingTitles=[link], _version=1),
        instance(
            2, title="Changed", succeedingTitles=[{"succeedingInstanceId": MISSING}], _version=1
        ),
        instance(3, title="Changed", precedingTitles=[HOUSTON], _version=1),
    )

    response = await bulk(client, "parentLocation/filePath/bulkInstances")

    assert response.json() == {
        "errorRecordsFileName": "parentLocation/filePath/bulkInstances_failedEntities",
        "errorsFileName": "parentLocation/filePath/bulkInstances_errors",
        "errorsNumber": 2,
    }
    errors = (await text_of(client, "parentLocation/filePath/bulkInstances_errors")).splitlines()
    assert [line.split(",")[0] for line in errors] == [iid(1), iid(2)]
    assert all("optimistic locking" not in line for line in errors)
    assert f"instance {MISSING}" in errors[0]
    assert 'violates foreign key constraint "precedinginstanceid_instance_fkey"' in errors[0]
    assert 'violates foreign key constraint "succeedinginstanceid_instance_fkey"' in errors[1]
    for n in (1, 2):
        record = await stored(client, n)
        assert (record["title"], record["_version"]) == (f"Title {n}", 1)
        assert titles_of(record) == []
    # The other records of the file go on.
    third = await stored(client, 3)
    assert (third["_version"], titles_of(third)) == (2, [(None, iid(3), "Houston oil directory")])
    updates = [e["key"] for e in await events_of(client) if e["type"] == "UPDATE"]
    assert updates == [iid(3)]
    listing = (await client.get("/files", params={"prefix": "parentLocation/filePath/"})).json()
    assert sorted(f["name"] for f in listing["data"]) == [
        "parentLocation/filePath/bulkInstances",
        "parentLocation/filePath/bulkInstances_errors",
        "parentLocation/filePath/bulkInstances_failedEntities",
    ]


async def test_titles_link_two_instances_and_read_from_both_ends(
    client: httpx.AsyncClient,
) -> None:
    await upload(
        client,
        "a.ndjson",
        instance(1),
        # Instance 2 names instance 1, written earlier in the same file, and a title outside.
        instance(
            2,
            precedingTitles=[{"precedingInstanceId": iid(1), "title": "Title 1", "hrid": "x1"}],
            succeedingTitles=[
                {"title": "Later", "identifiers": [{"value": "123", "identifierTypeId": iid(9)}]}
            ],
        ),
    )

    response = await bulk(client, "a.ndjson")

    assert response.json()["errorsNumber"] == 0
    first, second = await stored(client, 1), await stored(client, 2)
    assert titles_of(second) == [(iid(1), iid(2), "Title 1"), (iid(2), None, "Later")]
    assert second["precedingTitles"][0]["hrid"] == "x1"
    assert second["succeedingTitles"][0]["identifiers"] == [
        {"value": "123", "identifierTypeId": iid(9)}
    ]
    assert first["precedingTitles"] == []
    assert first["succeedingTitles"] == second["precedingTitles"]
    assert all(len(t["id"]) == 36 for t in second["precedingTitles"] + second["succeedingTitles"])
    # Links are rows of their own: the stored document and its events do not carry them.
    created = {e["key"]: e for e in await events_of(client)}
    assert "precedingTitles" not in created[iid(2)]["new"]
    listed = (await client.get("/instance-storage/instances")).json()["instances"]
    assert [titles_of(r) for r in listed] == [titles_of(first), titles_of(second)]


async def test_resending_an_instance_replaces_its_links_and_silence_keeps_them(
    client: httpx.AsyncClient,
) -> None:
    await upload(client, "a.ndjson", instance(1), instance(2, precedingTitles=[HOUSTON]))
    await bulk(client, "a.ndjson")
    await upload(client, "b.ndjson", instance(2, title="No titles given", _version=1))
    await bulk(client, "b.ndjson")
    kept = await stored(client, 2)
    await upload(
        client,
        "c.ndjson",
        instance(2, precedingTitles=[{"precedingInstanceId": iid(1), "title": "T"}], _version=2),
    )
    await bulk(client, "c.ndjson")
    replaced = await stored(client, 2)
    await upload(client, "d.ndjson", instance(2, precedingTitles=[], _version=3))
    await bulk(client, "d.ndjson")

    assert titles_of(kept) == [(None, iid(2), "Houston oil directory")]
    assert titles_of(replaced) == [(iid(1), iid(2), "T")]
    assert titles_of(await stored(client, 2)) == []
    assert (await stored(client, 1))["succeedingTitles"] == []


async def test_the_bulk_representation_is_stored_as_folio_maps_it(
    client: httpx.AsyncClient,
) -> None:
    # InstanceBulkProcessingUtilTest: titles, isBoundWith, parent and child instances are not
    # stored inside the instance; everything else is, as sent.
    representation = instance(
        1,
        hrid="in00001",
        matchKey="long_way_to_a_small_angry_planet",
        indexTitle="Long way to a small angry planet",
        tags={"tagList": ["important"]},
        publicationPeriod={"start": 2000, "end": 2001},
        statisticalCodeIds=["53d5c842-1c8a-4b8f-8b5a-cc8f3ec3bc1f"],
        statusUpdatedDate="1970-01-01T12:07:47.602+0000",
        sourceRecordFormat="MARC-JSON",
        precedingTitles=[HOUSTON],
        succeedingTitles=[],
        isBoundWith=False,
        parentInstances=[],
        childInstances=[],
    )
    await upload(client, "rep.ndjson", representation)

    response = await bulk(client, "rep.ndjson")

    assert response.json()["errorsNumber"] == 0
    record = await stored(client, 1)
    for dropped in ("isBoundWith", "parentInstances", "childInstances"):
        assert dropped not in record
    kept = {k: v for k, v in representation.items() if not k.endswith("Titles")}
    kept = {k: v for k, v in kept.items() if k not in ("isBoundWith", "parentInstances")}
    kept.pop("childInstances")
    assert {k: record[k] for k in kept} == kept
    assert record["_version"] == 1
    assert titles_of(record) == [(None, iid(1), "Houston oil directory")]
    (event,) = await events_of(client)
    assert set(event["new"]) == {*kept, "_version"}


async def test_a_records_file_name_with_a_leading_slash_is_the_same_file(
    client: httpx.AsyncClient,
) -> None:
    # BulkProcessingContextTest.shouldReturnFilesPaths
    await upload(client, "parent-folder/bulkInstances", instance(1), b"not json")

    response = await bulk(client, "/parent-folder/bulkInstances")

    assert response.status_code == 201
    assert response.json() == {
        "errorRecordsFileName": "parent-folder/bulkInstances_failedEntities",
        "errorsFileName": "parent-folder/bulkInstances_errors",
        "errorsNumber": 1,
    }
    assert (await text_of(client, "parent-folder/bulkInstances_failedEntities")) == "not json\n"
    assert (await stored(client, 1))["_version"] == 1


async def test_a_link_to_an_instance_failing_in_the_same_chunk_fails_too(
    client: httpx.AsyncClient,
) -> None:
    await upload(
        client,
        "a.ndjson",
        instance(1, instanceTypeId="not-a-uuid"),  # invalid: not written
        instance(2, precedingTitles=[{"precedingInstanceId": iid(1), "title": "Title 1"}]),
    )

    response = await bulk(client, "a.ndjson")

    assert response.json()["errorsNumber"] == 2
    errors = (await text_of(client, "a.ndjson_errors")).splitlines()
    assert [line.split(",")[0] for line in errors] == [iid(1), iid(2)]
    assert "LINKED_INSTANCE_NOT_FOUND" in errors[1]
    assert (await client.get(f"/instance-storage/instances/{iid(2)}")).status_code == 404


@pytest.mark.parametrize("settings_overrides", [{"file_chunk_lines": 1, "file_chunk_writers": 4}])
async def test_chunks_written_at_once_may_link_to_instances_of_earlier_chunks(
    client: httpx.AsyncClient,
) -> None:
    """Each line is a chunk of its own, four written at once; each names the line before."""
    chain = [instance(1)] + [
        instance(n, precedingTitles=[{"precedingInstanceId": iid(n - 1), "title": f"Title {n}"}])
        for n in range(2, 13)
    ]
    await upload(client, "chain.ndjson", *chain)

    response = await bulk(client, "chain.ndjson")

    assert response.json()["errorsNumber"] == 0, await text_of(client, "chain.ndjson_errors")
    last = await stored(client, 12)
    assert titles_of(last)[0][:2] == (iid(11), iid(12))
    assert len({(await stored(client, n))["hrid"] for n in range(1, 13)}) == 12
