"""A collection's description is checked where a mistake would cost locks, not results."""

from __future__ import annotations

import dataclasses

import pytest

from loadbay.ingest.instances import instances_collection


def test_a_collection_reading_stored_versions_must_sort_by_its_conflict_key() -> None:
    """Its stored rows are locked in the order of its sorted keys: another order than the
    conflict key's could let two writers lock the same rows in opposite orders."""
    instances = instances_collection()

    with pytest.raises(ValueError, match="prepare needs `key` to be the conflict key"):
        dataclasses.replace(instances, key=("hrid",))
    assert dataclasses.replace(instances, name="copy").key == ("instance_id",)
