"""The connections of one `loadbay serve` kept evenly spread over its workers.

Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel places a new
connection on one of them by a hash of its addresses. With a few long-lived connections, as
bulk loaders hold them, the split is often uneven: four keep-alive connections over two
workers went 2/2 in 4 tries of 16, 3/1 in 9 and 4/0 in 3, and then one worker serves three
clients while the other idles. So each worker publishes how many connections it holds, in a
small file the supervisor shares with them all, and a worker that holds two more than the
least loaded one asks the client of the response it is sending to reconnect
(`Connection: close`). The kernel places the new connection afresh, until the split is
even: a reconnect costs a TCP handshake, a batch of a thousand records far more.

A module on the standard library only, like metrics_sharing, for the supervisor to import.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
from typing import Any

# The shared file's path, inherited by the workers from the supervisor.
_COUNTS_FILE = "LOADBAY_SERVE_CONNECTION_COUNTS"
_SLOT = struct.Struct("=q")
# A worker this many connections above the least loaded one sends a client elsewhere: one
# more would be even already (3 and 2), so it would only move the surplus around.
_SURPLUS = 2


def share_between_workers(workers: int) -> str:
    """Make the file the workers count their connections in, one slot each; call before the
    workers start. Returns its path: the caller removes it at exit."""
    handle, path = tempfile.mkstemp(prefix="loadbay-connections-")
    with os.fdopen(handle, "wb") as file:
        file.write(bytes(_SLOT.size * workers))
    os.environ[_COUNTS_FILE] = path
    return path


class ConnectionCounts:
    """The shared file, seen from the worker that owns slot `slot`."""

    def __init__(self, path: str, slot: int) -> None:
        with open(path, "r+b") as file:
            self._map = mmap.mmap(file.fileno(), 0)
        self._workers = len(self._map) // _SLOT.size
        self._offset = slot * _SLOT.size
        self.publish(0)  # a worker started again must not inherit its predecessor's count

    def publish(self, held: int) -> None:
        _SLOT.pack_into(self._map, self._offset, held)

    def over_share(self) -> bool:
        """Whether this worker holds `_SURPLUS` connections more than the least loaded one."""
        counts = [_SLOT.unpack_from(self._map, n * _SLOT.size)[0] for n in range(self._workers)]
        mine = counts[self._offset // _SLOT.size]
        return mine >= min(counts) + _SURPLUS


class CountedConnections(set[Any]):
    """uvicorn's set of a worker's open connections (`ServerState.connections`), which
    publishes its size whenever a connection comes or goes."""

    def __init__(self, counts: ConnectionCounts) -> None:
        super().__init__()
        self._counts = counts

    def add(self, connection: Any) -> None:
        super().add(connection)
        self._counts.publish(len(self))

    def discard(self, connection: Any) -> None:
        super().discard(connection)
        self._counts.publish(len(self))

    def remove(self, connection: Any) -> None:
        super().remove(connection)
        self._counts.publish(len(self))


_counts: ConnectionCounts | None = None


def count_connections(server_state: Any, slot: int) -> None:
    """In a worker of several, before it serves: count its connections into `slot`."""
    global _counts
    path = os.environ.get(_COUNTS_FILE)
    if path is None:
        return
    _counts = ConnectionCounts(path, slot)
    server_state.connections = CountedConnections(_counts)


def should_reconnect() -> bool:
    """Whether this worker holds more than its share of the server's connections."""
    return _counts is not None and _counts.over_share()
