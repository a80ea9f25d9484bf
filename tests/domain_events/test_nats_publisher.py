"""The pipelined JetStream publisher against a real NATS server: acknowledgements counted
per message, and a refusal reported with how many went in before it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import nats
import pytest

from loadbay.domain_events import jetstream
from loadbay.domain_events.jetstream import NatsPublisher
from loadbay.domain_events.publishing import Message, PartialPublish
from tests.domain_events.broker_readers import (
    NATS_URL,
    nats_reader,
    reachable,
    start_nats,
    unique_names,
    wait_for_port,
)
from tests.servers import free_port

pytestmark = pytest.mark.skipif(not reachable(NATS_URL), reason=f"NATS not reachable at {NATS_URL}")


async def stream_info(name: str) -> Any:
    nc = await nats.connect(NATS_URL)
    try:
        return await nc.jetstream().stream_info(name)
    finally:
        await nc.close()


async def delete_stream(name: str) -> None:
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(name)
    finally:
        await nc.close()


def messages(names: dict[str, str], count: int) -> list[Message]:
    subject = f"{names['events_env']}.t.entities"
    return [Message(subject, f"k{n}", b'{"n": %d}' % n, f"event-{n}") for n in range(count)]


async def test_a_batch_is_stored_in_order_and_a_repeat_is_dropped_by_msg_id() -> None:
    names = unique_names()
    publisher = NatsPublisher(NATS_URL, names["events_nats_stream"], [f"{names['events_env']}.>"])
    await publisher.connect()
    try:
        batch = messages(names, 300)
        await publisher.publish_all(batch)
        await publisher.publish_all(batch[:10])  # a redelivery: JetStream drops it
        async with nats_reader(NATS_URL, names) as read:
            received = await read(300)
            stream = await stream_info(names["events_nats_stream"])
    finally:
        await publisher.close()

    assert [value for _, value in received] == [{"n": n} for n in range(300)]
    assert stream.state.messages == 300


async def test_a_subject_no_stream_takes_fails_the_batch_from_its_first_message() -> None:
    names = unique_names()
    publisher = NatsPublisher(NATS_URL, names["events_nats_stream"], [f"{names['events_env']}.>"])
    await publisher.connect()
    try:
        await delete_stream(names["events_nats_stream"])
        with pytest.raises(PartialPublish) as refused:
            await publisher.publish_all(messages(names, 5))
    finally:
        await publisher.close()

    assert refused.value.acknowledged == 0
    assert "no responders" in str(refused.value.cause)


async def test_a_message_over_max_payload_fails_the_batch_after_those_before_it() -> None:
    names = unique_names()
    publisher = NatsPublisher(NATS_URL, names["events_nats_stream"], [f"{names['events_env']}.>"])
    batch = messages(names, 4)
    batch[2] = Message(batch[2].subject, "k2", b'"' + b"x" * (1 << 20) + b'"', "event-2")
    await publisher.connect()
    try:
        with pytest.raises(PartialPublish) as refused:
            await publisher.publish_all(batch)
        async with nats_reader(NATS_URL, names) as read:
            received = await read(2)
    finally:
        await publisher.close()

    assert refused.value.acknowledged == 2
    assert "max_payload" in str(refused.value.cause)
    assert [key for key, _ in received] == ["k0", "k1"]


async def test_keys_arrive_as_utf8_and_a_line_break_cannot_end_the_header() -> None:
    names = unique_names()
    subject = f"{names['events_env']}.t.entities"
    publisher = NatsPublisher(NATS_URL, names["events_nats_stream"], [f"{names['events_env']}.>"])
    await publisher.connect()
    try:
        await publisher.publish_all(
            [
                Message(subject, "clé:1", b"{}", "event-1"),
                Message(subject, "a\r\nNats-Msg-Id: event-1", b"{}", "event-2"),
            ]
        )
        async with nats_reader(NATS_URL, names) as read:
            received = await read(2)
    finally:
        await publisher.close()

    assert [key for key, _ in received] == ["clé:1", "a  Nats-Msg-Id: event-1"]


@pytest.mark.parametrize(
    ("options", "url", "refused"),
    [
        (["--user", "relay", "--pass", "s3cret"], "nats://relay:s3cret@127.0.0.1:{port}", None),
        (["--user", "relay", "--pass", "s3cret"], "nats://relay:wrong@127.0.0.1:{port}", True),
        (["--auth", "t0ken"], "nats://t0ken@127.0.0.1:{port}", None),
        (["--auth", "t0ken"], "nats://127.0.0.1:{port}", True),
    ],
)
async def test_credentials_in_the_url_are_presented_and_a_refusal_is_said(
    tmp_path: Path, options: list[str], url: str, refused: bool | None
) -> None:
    port = free_port()
    server = start_nats(port, tmp_path / "js", *options)
    try:
        await wait_for_port(port)
        names = unique_names()
        publisher = NatsPublisher(url.format(port=port), names["events_nats_stream"], ["x.>"])
        try:
            if refused:
                with pytest.raises(Exception, match="Authorization Violation"):
                    await publisher.connect()
            else:
                await publisher.connect()
                await publisher.publish_all([Message("x.t.e", "k", b"{}", "e1")])
        finally:
            await publisher.close()
    finally:
        server.kill()
        server.wait()


async def test_a_server_that_goes_away_fails_the_batch_and_a_reconnect_recovers(
    tmp_path: Path,
) -> None:
    port = free_port()
    server = start_nats(port, tmp_path / "js")
    await wait_for_port(port)
    publisher = NatsPublisher(f"nats://127.0.0.1:{port}", "S", ["x.>"])
    try:
        await publisher.connect()
        server.kill()
        server.wait()
        with pytest.raises(PartialPublish) as failed:
            await publisher.publish_all([Message("x.t.e", "k", b"{}", "e1")])
        server = start_nats(port, tmp_path / "js")
        await wait_for_port(port)
        await publisher.connect()
        await publisher.publish_all([Message("x.t.e", "k", b"{}", "e1")])
    finally:
        await publisher.close()
        server.kill()
        server.wait()

    assert failed.value.acknowledged == 0


async def test_the_servers_pings_are_answered_so_an_idle_connection_stays(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "nats.conf"
    config.write_text('ping_interval: "100ms"\nping_max: 2\n')
    server = start_nats(port, tmp_path / "js", "-c", str(config))
    publisher = NatsPublisher(f"nats://127.0.0.1:{port}", "S", ["x.>"])
    try:
        await wait_for_port(port)
        await publisher.connect()
        await asyncio.sleep(1.0)  # ten pings: unanswered, the server drops us after two
        await publisher.publish_all([Message("x.t.e", "k", b"{}", "e1")])
    finally:
        await publisher.close()
        server.kill()
        server.wait()


async def test_a_server_that_stops_reading_fails_the_batch_and_closing_does_not_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jetstream, "TIMEOUT_SECONDS", 0.5)
    held: list[asyncio.StreamWriter] = []

    async def answers_the_handshake_then_reads_nothing(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        held.append(writer)
        writer.write(b'INFO {"max_payload":1048576}\r\n')
        while line := await reader.readline():
            if line.startswith(b"PING"):
                writer.write(b"PONG\r\n")
            elif line.startswith(b"PUB $JS.API.STREAM.INFO"):
                await reader.readline()  # its empty payload
                answer = b'{"config":{}}'
                writer.write(b"MSG %s 1 %d\r\n%s\r\n" % (line.split()[2], len(answer), answer))
                return  # and never reads again

    server = await asyncio.start_server(answers_the_handshake_then_reads_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    publisher = NatsPublisher(f"nats://127.0.0.1:{port}", "S", ["x.>"])
    try:
        await publisher.connect()
        # Far more than the sockets' buffers hold: the sending side blocks.
        batch = [Message("x.t.e", f"k{n}", b"x" * 50_000, f"e{n}") for n in range(2000)]
        with pytest.raises(PartialPublish) as late:
            await publisher.publish_all(batch)
        started = time.monotonic()
        await asyncio.wait_for(publisher.close(), 10)
        closed_in = time.monotonic() - started
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()

    assert late.value.acknowledged == 0
    assert closed_in < 2


@pytest.mark.parametrize("subject", ["env.t 1.entities", "env..entities", "env.*.entities", ""])
async def test_a_subject_nats_cannot_take_fails_the_batch_from_its_message(subject: str) -> None:
    names = unique_names()
    publisher = NatsPublisher(NATS_URL, names["events_nats_stream"], [f"{names['events_env']}.>"])
    batch = messages(names, 3)
    batch[1] = Message(subject, "k1", b"{}", "event-1")
    await publisher.connect()
    try:
        with pytest.raises(PartialPublish) as refused:
            await publisher.publish_all(batch)
        await publisher.publish_all(messages(names, 1))  # the connection is still good
    finally:
        await publisher.close()
        await delete_stream(names["events_nats_stream"])

    assert refused.value.acknowledged == 1
    assert "not a NATS subject" in str(refused.value.cause)
