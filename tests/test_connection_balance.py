"""A `loadbay serve` of several workers keeps a few long-lived connections evenly spread."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from loadbay.connection_balance import ConnectionCounts, share_between_workers
from tests.servers import (
    child_processes,
    established_connections,
    loadbay_env,
    start_server,
)


def counts_of(workers: int, monkeypatch: pytest.MonkeyPatch) -> list[ConnectionCounts]:
    monkeypatch.delenv("LOADBAY_SERVE_CONNECTION_COUNTS", raising=False)
    path = share_between_workers(workers)
    monkeypatch.setenv("LOADBAY_SERVE_CONNECTION_COUNTS", path)  # restored after the test
    return [ConnectionCounts(path, slot) for slot in range(workers)]


@pytest.mark.parametrize(
    ("held", "over"),
    [
        ((3, 1), (True, False)),
        ((4, 0), (True, False)),
        ((2, 2), (False, False)),
        ((3, 2), (False, False)),  # as even as five can be
        ((0, 0, 2), (False, False, True)),
        ((0, 0, 0), (False, False, False)),
    ],
)
def test_a_worker_two_connections_above_the_least_loaded_one_is_over_its_share(
    held: tuple[int, ...], over: tuple[bool, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    workers = counts_of(len(held), monkeypatch)
    for counts, n in zip(workers, held, strict=True):
        counts.publish(n)

    assert tuple(counts.over_share() for counts in workers) == over


def test_a_worker_started_again_counts_from_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    first, other = counts_of(2, monkeypatch)
    first.publish(5)
    restarted = ConnectionCounts(os.environ["LOADBAY_SERVE_CONNECTION_COUNTS"], 0)

    assert not restarted.over_share()
    assert not other.over_share()


@pytest.mark.slow
def test_four_keep_alive_clients_end_up_two_on_each_of_two_workers(
    tmp_path: Path, database_url: str
) -> None:
    """The kernel alone leaves 3/1 or 4/0 about two times in three, for the whole session."""
    server = start_server(loadbay_env(tmp_path, database_url), tmp_path / "s.log", workers=2)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        workers = child_processes(server.process.pid)
        splits = [asyncio.run(_spread_of_a_session(server.url, port, workers)) for _ in range(4)]
    finally:
        server.stop()

    assert splits == [[2, 2]] * 4


async def _spread_of_a_session(url: str, port: int, workers: list[int]) -> list[int]:
    """Four connections kept busy until they sit two on each worker (or 40 rounds pass)."""
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:
        for _ in range(40):
            answers = await asyncio.gather(*(client.get("/livez") for _ in range(4)))
            assert [a.status_code for a in answers] == [200] * 4
            held = sorted(established_connections(pid, port) for pid in workers)
            if held == [2, 2]:
                break
    return held
