"""JetStream's answers to a batch, as the relay's connection reads them: however a read cuts
them, each message counts as stored only on its own acknowledgement, in any order, and a
refusal ends the batch where it stands."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from loadbay.domain_events.jetstream import JetStreamConnection, NatsError
from loadbay.domain_events.publishing import Acknowledgements


class Written:
    """The connection's writer: what it sends back (PONG) is kept."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return False


def connection(batch_number: int, size: int) -> JetStreamConnection:
    """A connection publishing its batch `batch_number` of `size` messages."""
    conn = JetStreamConnection(asyncio.StreamReader(), Written())  # type: ignore[arg-type]
    conn._batch_number = batch_number
    conn._batch = Acknowledgements(size)
    conn._replies = f"{conn._inbox}.{batch_number}.".encode()
    conn._batch_tag = b"%d" % batch_number
    return conn


def answer(subject: str, body: bytes, headers: bytes = b"") -> bytes:
    if headers:
        sizes = b"%d %d" % (len(headers), len(headers) + len(body))
        return b"HMSG %s 1 %s\r\n%s%s\r\n" % (subject.encode(), sizes, headers, body)
    return b"MSG %s 1 %d\r\n%s\r\n" % (subject.encode(), len(body), body)


def ack(conn: JetStreamConnection, batch: int, index: int, body: bytes | None = None) -> bytes:
    stored = b'{"stream":"LOADBAY","seq":%d}' % (index + 1)
    return answer(f"{conn._inbox}.{batch}.{index}", body or stored)


def read_in_parts(conn: JetStreamConnection, data: bytes, cuts: list[int]) -> bytes:
    """Feed `data` as reads ending at `cuts`, as `_listen` does; what is left unread."""
    unread, start = b"", 0
    for cut in [*cuts, len(data)]:
        unread = conn._take(unread + data[start:cut])
        start = cut
    return unread


def mixed_answers(conn: JetStreamConnection) -> bytes:
    """Batch 7 of 6: answers out of order, one of batch 6 (given up), a request's answer, a
    PING, a refusal, a 503 (no stream) and a duplicate among the stored ones."""
    refused = b'{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}'
    duplicate = b'{"stream":"LOADBAY","seq":1,"duplicate":true}'
    return b"".join(
        (
            ack(conn, 7, 1),
            ack(conn, 6, 0),
            ack(conn, 7, 0, duplicate),
            answer(f"{conn._inbox}.api.1", b'{"config":{}}'),
            b"PING\r\n",
            ack(conn, 7, 3, refused),
            ack(conn, 7, 2),
            answer(f"{conn._inbox}.7.4", b"", b"NATS/1.0 503\r\n\r\n"),
            ack(conn, 7, 5),
        )
    )


async def test_each_message_counts_only_on_its_own_answer_however_reads_cut_them() -> None:
    whole = connection(7, 6)
    request: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    whole._requests[f"{whole._inbox}.api.1"] = request
    data = mixed_answers(whole)

    assert whole._take(data) == b""

    batch = whole._batch
    assert batch is not None
    assert batch._stored == [True, True, True, False, False, True]
    assert batch.in_order() == 3
    assert isinstance(batch.refused, NatsError)
    assert "maximum messages exceeded" in str(batch.refused)
    assert batch.complete.done()
    assert request.result() == (None, b'{"config":{}}')
    assert whole._writer.sent == [b"PONG\r\n"]  # type: ignore[attr-defined]
    for cut in range(1, len(data)):
        parted = connection(7, 6)
        parted._inbox, parted._stored_answer = whole._inbox, whole._stored_answer
        parted._replies = whole._replies
        assert read_in_parts(parted, data, [cut]) == b"", cut
        assert parted._batch is not None
        assert parted._batch._stored == batch._stored, cut


async def test_a_batch_completes_when_its_last_answer_comes() -> None:
    conn = connection(11, 3)
    # Batch 1's answers share a prefix with batch 11's subjects: not counted for it.
    data = ack(conn, 1, 0) + ack(conn, 11, 2) + ack(conn, 11, 0) + ack(conn, 1, 1)

    assert read_in_parts(conn, data, [len(data) // 2]) == b""
    assert conn._batch is not None
    assert not conn._batch.complete.done()

    conn._take(ack(conn, 11, 1))

    assert conn._batch.complete.done()
    assert conn._batch.in_order() == 3
    assert conn._batch.refused is None


async def test_an_error_from_the_server_stops_the_read() -> None:
    conn = connection(1, 3)

    with pytest.raises(NatsError, match="Slow Consumer"):
        conn._take(ack(conn, 1, 0) + b"-ERR 'Slow Consumer'\r\n" + ack(conn, 1, 1))

    assert conn._batch is not None
    assert conn._batch._stored == [True, None, None]


async def test_an_answer_with_an_error_is_a_refusal_even_when_it_names_the_stream() -> None:
    conn = connection(2, 2)
    refused = b'{"stream":"LOADBAY","error":{"code":400,"description":"wrong last sequence"}}'

    conn._take(ack(conn, 2, 0) + ack(conn, 2, 1, refused))

    assert conn._batch is not None
    assert conn._batch._stored == [True, False]
    assert "wrong last sequence" in str(conn._batch.refused)
