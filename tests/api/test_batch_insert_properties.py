"""Property: whatever the batch, every record gets exactly the outcome a model predicts."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import ACTIVITIES, BATCHES, activity, batch

# A record: (key number, is valid); keys come from a small pool so that duplicates are common.
records = st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=1, max_size=25)
example_numbers = itertools.count()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(stored=st.sets(st.integers(0, 6), max_size=4), sent=records)
async def test_outcomes_match_the_model(
    client: httpx.AsyncClient, stored: set[int], sent: list[tuple[int, bool]]
) -> None:
    # Each example writes its own mentors, so examples sharing the database stay independent.
    prefix = f"ex{next(example_numbers)}"

    def record(key: int, valid: bool = True) -> dict[str, Any]:
        return activity(key, mentor_id=f"{prefix}-{key}", duration_minutes=30 if valid else -1)

    if stored:
        await client.post(BATCHES, json=batch(*(record(k) for k in sorted(stored))))
    response = await client.post(BATCHES, json=batch(*(record(k, v) for k, v in sent)))

    taken = set(stored)
    expected: list[str] = []
    for key, valid in sent:
        if not valid:
            expected.append("validation_error")
        elif key in taken:
            expected.append("unique_constraint_violation")
        else:
            taken.add(key)
            expected.append("success")
    results = response.json()["results"]
    assert [r.get("error", r["status"]) for r in results] == expected
    assert response.json()["inserted_count"] == expected.count("success")
    for key in taken:
        found = await client.get(ACTIVITIES, params={"mentor_id": f"{prefix}-{key}"})
        assert found.json()["pagination"]["total"] == 1
