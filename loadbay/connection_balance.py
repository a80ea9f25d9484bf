"""The connections of one `loadbay serve` kept evenly spread over its workers.

Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel places a new
connection on one of them by a hash of its addresses. With a few long-lived connections, as
bulk loaders hold them, the split is often uneven: four keep-alive connections over two
workers went 2/2 in 4 tries of 16, 3/1 in 9 and 4/0 in 3, and then one worker serves three
clients while the other idles. So each worker publishes how many connections it holds, in a
small file the supervisor shares with them all, and the most loaded worker, when it holds
two more than the least loaded one, asks one client to reconnect (`Connection: close` on a
response): the kernel places the new connection afresh. One connection at a time, and only
from the one most loaded worker (the lowest slot among equals), so that a spread settles
instead of moving the surplus around. A worker not serving yet (starting, or started again)
counts as none of the spread.

A module on the standard library only, like metrics_sharing, for the supervisor to import.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
from typing import Any

from loadbay import scratch_files

# The shared file's path, inherited by the workers from the supervisor.
_COUNTS_FILE = "LOADBAY_SERVE_CONNECTION_COUNTS"
_SLOT = struct.Struct("=q")
# A worker this many connections above the least loaded one sends a client elsewhere: one
# more would be even already (3 and 2), so it would only move the surplus around.
_SURPLUS = 2
# A slot's value while its worker does not serve.
_NOT_SERVING = -1


def share_between_workers(workers: int) -> str:
    """Make the file the workers count their connections in, one slot each; call before the
    workers start. Returns its path: the caller removes it at exit."""
    scratch_files.remove_orphans("connections")
    handle, path = tempfile.mkstemp(prefix=scratch_files.prefix("connections"))
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
        self._slot = slot
        # Until it serves, a worker started again must not count, nor keep its predecessor's.
        self.publish(_NOT_SERVING)

    def publish(self, held: int) -> None:
        _SLOT.pack_into(self._map, self._slot * _SLOT.size, held)

    def over_share(self) -> bool:
        """Whether this worker should send a client elsewhere: it is the most loaded of the
        workers serving (the first of them, if several are), by `_SURPLUS` or more."""
        counts = [_SLOT.unpack_from(self._map, n * _SLOT.size)[0] for n in range(self._workers)]
        serving = [held for held in counts if held != _NOT_SERVING]
        mine = counts[self._slot]
        if mine == _NOT_SERVING or mine < min(serving) + _SURPLUS:
            return False
        return counts.index(max(serving)) == self._slot


class CountedConnections(set[Any]):
    """uvicorn's set of a worker's open connections (`ServerState.connections`), which
    publishes how many of them stay whenever one comes or goes."""

    def __init__(self, counts: ConnectionCounts) -> None:
        super().__init__()
        self._counts = counts
        self._serving = False
        # A connection asked to close that has not closed yet: it counts as gone, and no
        # other is asked until it has.
        self.closing = False

    def add(self, connection: Any) -> None:
        super().add(connection)
        self._publish()

    def discard(self, connection: Any) -> None:
        super().discard(connection)
        self.closing = False
        self._publish()

    def remove(self, connection: Any) -> None:
        super().remove(connection)
        self.closing = False
        self._publish()

    def start_serving(self) -> None:
        self._serving = True
        self._publish()

    def send_one_away(self) -> bool:
        """Whether a response should ask its client to reconnect; if so, that connection
        counts as gone already."""
        if self.closing or not self._serving or not self._counts.over_share():
            return False
        self.closing = True
        self._publish()
        return True

    def _publish(self) -> None:
        if self._serving:
            self._counts.publish(len(self) - self.closing)


_connections: CountedConnections | None = None


def count_connections(server_state: Any, slot: int) -> None:
    """In a worker of several, before it serves: count its connections into `slot`."""
    global _connections
    path = os.environ.get(_COUNTS_FILE)
    if path is None:
        return
    _connections = CountedConnections(ConnectionCounts(path, slot))
    server_state.connections = _connections


def serving() -> None:
    """The worker serves from now on (its app has started): it counts in the spread."""
    if _connections is not None:
        _connections.start_serving()


def spreading() -> bool:
    """Whether this worker is one of several whose connections are kept spread."""
    return _connections is not None


def should_reconnect() -> bool:
    """Whether the response being sent should ask its client to reconnect (elsewhere)."""
    return _connections is not None and _connections.send_one_away()
