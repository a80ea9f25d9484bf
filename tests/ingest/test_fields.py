"""Record validation rules, unit by unit."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadbay.ingest.fields import (
    Field,
    RecordInvalid,
    iso_date,
    positive_int,
    record_validator,
    text,
)
from loadbay.outcomes import RecordError

validate = record_validator([Field("name", text(10)), Field("when", iso_date, required=False)])


def test_valid_record_is_parsed() -> None:
    assert validate({"name": "abc", "when": "2024-02-29"}) == {
        "name": "abc",
        "when": date(2024, 2, 29),
    }


def test_optional_field_may_be_absent_or_null() -> None:
    assert validate({"name": "abc"}) == {"name": "abc"}
    assert validate({"name": "abc", "when": None}) == {"name": "abc"}


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(RecordInvalid) as caught:
        validate({"when": "never", "zzz": 1})

    assert caught.value.code is RecordError.INVALID
    assert caught.value.message == (
        'missing required field "name"; field "when" must be a date as YYYY-MM-DD; '
        'unknown field "zzz"'
    )


def test_long_unknown_field_names_are_cut() -> None:
    with pytest.raises(RecordInvalid) as caught:
        validate({"name": "a", "k" * 500: 1})

    assert len(caught.value.message) < 100


@given(st.dates())
def test_any_calendar_date_round_trips(value: date) -> None:
    if value.year >= 1000:
        assert iso_date(value.isoformat()) == value


@given(st.integers())
def test_positive_int_accepts_exactly_1_to_int32_max(value: int) -> None:
    parse = positive_int()
    if 1 <= value <= 2**31 - 1:
        assert parse(value) == value
    else:
        with pytest.raises(ValueError, match="must be"):
            parse(value)


@given(st.text(max_size=20))
def test_text_rejects_blank_long_and_nul(value: str) -> None:
    parse = text(10)
    ok = value.strip() != "" and len(value) <= 10 and "\x00" not in value
    if ok:
        assert parse(value) == value
    else:
        with pytest.raises(ValueError, match="must"):
            parse(value)
