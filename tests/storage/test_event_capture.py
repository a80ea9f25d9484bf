"""The capture triggers describe each collection as the engine does: names, keys, public ids."""

from __future__ import annotations

import orjson
import pytest

from loadbay.ingest.activities import ACTIVITIES
from loadbay.ingest.collection import Collection
from loadbay.ingest.instances import instances_collection
from loadbay.ingest.operator import collections_for
from loadbay.ingest.templates.model import built_in, checked
from loadbay.storage.event_capture import CAPTURED


def _engine_collections() -> list[Collection]:
    operator = collections_for(orjson.dumps(checked(built_in("igaming"))).decode())
    return [
        ACTIVITIES,
        operator.entities,
        operator.events,
        operator.states,
        instances_collection(),
    ]


@pytest.mark.parametrize("collection", _engine_collections(), ids=lambda c: c.name)
def test_each_collection_is_captured_as_the_engine_describes_it(collection: Collection) -> None:
    (captured,) = [c for c in CAPTURED if c.collection == collection.name]

    assert captured.table is collection.target.table
    assert captured.key == collection.key
    assert captured.id_prefix + "0" * (captured.id_width - 1) + "7" == collection.ids.format(7)
