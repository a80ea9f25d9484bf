"""Reading records files: NDJSON, JSON arrays and CSV, gzipped or not, with positions."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from loadbay.loading.readers import Unreadable, count_records, file_format, read_records


def test_ndjson_records_come_with_their_line_and_bad_lines_fail_alone(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_bytes(b'{"n": 1}\n\n{broken\n{"n": 2}\n')

    records = list(read_records(path, "ndjson"))

    assert records[0] == (1, {"n": 1})
    assert records[1][0] == 3
    assert isinstance(records[1][1], Unreadable)
    assert records[1][1].code == "INVALID_JSON"
    assert records[1][1].text == "{broken"
    assert records[2] == (4, {"n": 2})
    assert count_records(path, "ndjson") == 3


def test_gzip_is_recognised_by_its_content(tmp_path: Path) -> None:
    path = tmp_path / "a.json.gz"
    path.write_bytes(gzip.compress(b'[{"n": 1}, {"n": 2}]'))

    assert file_format(path) == "json"
    assert list(read_records(path, "json")) == [(1, {"n": 1}), (2, {"n": 2})]


def test_a_json_file_must_hold_an_array(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b'{"n": 1}')

    with pytest.raises(ValueError, match="one JSON array"):
        list(read_records(path, "json"))


def test_csv_columns_nest_on_dots_and_convert_on_their_type(tmp_path: Path) -> None:
    path = tmp_path / "players.csv"
    path.write_text(
        "externalId,data.email,data.age:int,data.vip:bool,data.tags:json,data.zip\n"
        'p1,a@x.io,42,true,"[1,""a""]",01234\n'
        "p2,,7,false,,\n"
        "p3,c@x.io,forty,true,,\n"
    )

    records = list(read_records(path, "csv"))

    assert records[0] == (
        2,
        {
            "externalId": "p1",
            "data": {"email": "a@x.io", "age": 42, "vip": True, "tags": [1, "a"], "zip": "01234"},
        },
    )
    assert records[1] == (3, {"externalId": "p2", "data": {"age": 7, "vip": False}})
    line, bad = records[2]
    assert line == 4
    assert isinstance(bad, Unreadable)
    assert bad.code == "INVALID_CELL"
    assert "'forty' is not a int" in bad.message


def test_a_csv_column_of_an_unknown_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("n:integer\n1\n")

    with pytest.raises(ValueError, match="must be one of"):
        list(read_records(path, "csv"))
