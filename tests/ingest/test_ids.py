"""Public ids: formatted once, parsed back only from their canonical form."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from loadbay.ingest.ids import HexIds, PublicIds

ids = PublicIds("pa-")


@given(st.integers(min_value=0, max_value=10**17))
def test_round_trip(number: int) -> None:
    assert ids.parse(ids.format(number)) == number


def test_examples() -> None:
    assert ids.format(20) == "pa-020"
    assert ids.format(12345) == "pa-12345"
    assert ids.parse("pa-020") == 20


@given(st.text(max_size=25))
def test_anything_not_canonical_is_rejected(text: str) -> None:
    number = ids.parse(text)
    assert number is None or ids.format(number) == text


def test_non_canonical_forms() -> None:
    assert ids.parse("pa-20") is None
    assert ids.parse("pa-0020") is None
    assert ids.parse("PA-020") is None
    assert ids.parse("pa-٠٢٠") is None


def test_hex_ids_beyond_a_row_id_name_nothing() -> None:
    jobs = HexIds("job_")
    assert jobs.parse(jobs.format(2**63 - 1)) == 2**63 - 1
    assert jobs.parse("job_ffffffffffffffff") is None
    assert jobs.parse("job_00000000000000FF") is None
