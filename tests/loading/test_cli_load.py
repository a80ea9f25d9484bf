"""`loadbay load` and the blocking client against a served process, as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from loadbay.client import Loadbay, LoadbayError
from loadbay.loading.state import state_path
from tests.factories import activity
from tests.prometheus_samples import parse, value
from tests.servers import LOADBAY, Server, loadbay_env, start_server

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    running = start_server(loadbay_env(tmp_path, database_url), tmp_path / "server.log")
    yield running
    running.stop()


def load_env(server: Server) -> dict[str, str]:
    env = {**loadbay_env(Path("/nonexistent")), "LOADBAY_URL": server.url}
    env["LOADBAY_API_KEY"] = server.admin_key()
    return env


def run_load(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOADBAY, "load", *args],
        env=load_env(server),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_load_command_reports_and_exits_by_outcome(server: Server, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.ndjson"
    mixed.write_bytes(
        b"\n".join([orjson.dumps(activity(1)), b"{oops", orjson.dumps(activity(2))]) + b"\n"
    )
    clean = tmp_path / "clean.json"
    clean.write_bytes(orjson.dumps([activity(n) for n in range(10, 15)]))

    failing = run_load(server, str(mixed), "--into", "activities", "--json")
    passing = run_load(server, str(clean), "--into", "activities", "--json")

    assert failing.returncode == 1, failing.stderr
    summary = json.loads(failing.stdout)
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (3, 2, 1)
    assert summary["errorsFile"] == f"{mixed}.errors.ndjson"
    (failure,) = [json.loads(line) for line in Path(summary["errorsFile"]).read_text().splitlines()]
    assert (failure["line"], failure["code"]) == (2, "INVALID_JSON")
    assert passing.returncode == 0, passing.stderr
    assert json.loads(passing.stdout)["succeeded"] == 5
    assert (tmp_path / "clean.json.loadbay-state.json").exists()


def test_a_load_cut_by_ctrl_c_resumes_and_no_record_goes_in_twice(
    tmp_path: Path, database_url: str
) -> None:
    # A server that takes 10 batches a second: the load is surely cut part-way, and it
    # meets 429s and Retry-After on the way.
    env = loadbay_env(tmp_path, database_url)
    env["LOADBAY_RATE_LIMITS"] = "ingest:batch=10/second,read=1000/minute"
    records = 3_000
    path = tmp_path / "big.ndjson"
    path.write_bytes(b"".join(orjson.dumps(activity(n)) + b"\n" for n in range(records)))
    args = [LOADBAY, "load", str(path), "--into", "activities", "--batch-size", "100", "--json"]
    state = state_path(path)
    server = start_server(env, tmp_path / "server.log")
    cut = None
    try:
        cut = subprocess.Popen(
            args,
            env=load_env(server),
            stdout=subprocess.PIPE,
            text=True,
            # A suite started in the background inherits SIGINT ignored; a terminal's
            # loader does not.
            preexec_fn=_sigint_as_on_a_terminal,
        )
        deadline = time.monotonic() + 60
        while not (state.exists() and len(orjson.loads(state.read_bytes())["done"]) >= 5):
            assert time.monotonic() < deadline, "the load acknowledged no batch within 60 s"
            time.sleep(0.02)
        cut.send_signal(signal.SIGINT)  # what Ctrl-C sends
        cut.communicate(timeout=60)
        done_before_resume = len(orjson.loads(state.read_bytes())["done"])
        resumed = run_load(server, *args[2:], "--resume")
        metrics = httpx.get(f"{server.url}/metrics").text
    finally:
        if cut is not None and cut.poll() is None:
            cut.kill()
            cut.wait()
        server.stop()

    assert cut.returncode == 130
    assert done_before_resume < records // 100, "the load finished before it was cut"
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert (summary["records"], summary["failed"]) == (records, 0)
    assert summary["doneBefore"] == done_before_resume * 100
    samples = parse(metrics)
    labels = {"collection": "activities", "tenant": "default"}
    counted = {
        outcome: value(samples, "loadbay_records_total", **labels, outcome=outcome)
        for outcome in ("created", "updated", "failed")
    }
    assert counted == {"created": records, "updated": 0, "failed": 0}


def _sigint_as_on_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_load_the_server_refuses_exits_2(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_bytes(orjson.dumps(activity(1)))
    env = {**loadbay_env(tmp_path), "LOADBAY_URL": server.url, "LOADBAY_API_KEY": "lb_live_no"}

    result = subprocess.run(
        [LOADBAY, "load", str(path), "--into", "activities"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "HTTP 401" in result.stderr


def test_the_blocking_client(server: Server, tmp_path: Path) -> None:
    local = tmp_path / "notes.txt"
    local.write_bytes(b"x" * 3_000_000)
    with Loadbay(server.url, server.admin_key()) as lb:
        lb.set_template("igaming")
        result = lb.batch(
            "entities",
            [
                {"entityType": "player", "externalId": "p1", "data": {"email": "a@x.io"}},
                {"entityType": "nobody", "externalId": "p2", "data": {}},
            ],
        )
        stored = lb.put_file("docs/notes.txt", local)
        listed = lb.list_files("docs/")
        content = lb.get_file("docs/notes.txt")
        with pytest.raises(LoadbayError) as missing:
            lb.get_file("docs/none.txt")

    assert (result.records, result.succeeded) == (2, 1)
    assert [(f.index, f.code) for f in result.failures] == [(1, "UNKNOWN_ENTITY_TYPE")]
    assert result.job_id.startswith("job_")
    assert stored["size"] == 3_000_000
    assert [f["name"] for f in listed] == ["docs/notes.txt"]
    assert content == local.read_bytes()
    assert missing.value.status == 404
