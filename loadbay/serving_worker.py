"""One server process: uvicorn serving the app on a listening socket of its own.

Under several workers each binds its socket with SO_REUSEPORT, and the kernel spreads new
connections over them. With one socket shared by every worker (uvicorn's own multiprocess
mode), the worker that woke first accepted all the connections pending: the four
connections of a 4-client load went to one of two workers in every run measured, and the
other worker stayed idle.
"""

from __future__ import annotations

import copy
import ctypes
import os
import signal
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from loadbay.connection_balance import count_connections
from loadbay.serve_roles import yield_to_the_relay

_BACKLOG = 2048
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def run(host: str, port: int, log_format: str, *, slot: int | None = None) -> None:
    """Serve until SIGTERM or SIGINT (uvicorn's graceful shutdown), then return. A worker of
    several has a `slot`: it shares the port (SO_REUSEPORT) and counts its connections there
    (connection_balance)."""
    config = uvicorn.Config(
        "loadbay.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_level="info",
        log_config=log_config(log_format),
        access_log=False,  # Loadbay writes its own, with the caller and the record count
        backlog=_BACKLOG,
    )
    server = uvicorn.Server(config)
    if slot is not None:
        count_connections(server.server_state, slot)
    server.run(sockets=[listening_socket(host, port, reuse_port=slot is not None)])


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(_BACKLOG)
    return sock


def log_config(log_format: str) -> dict[str, Any]:
    """uvicorn's logging, with Loadbay's own loggers printed the same way (in every worker):
    text with the request id, or one JSON object per line for every logger."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"request_id": {"()": "loadbay.api.request_ids.RequestIdFilter"}}
    config["formatters"]["loadbay"] = {
        "()": "uvicorn.logging.DefaultFormatter",
        "fmt": "%(levelprefix)s [%(request_id)s] %(name)s: %(message)s",
    }
    config["handlers"]["loadbay"] = {
        "formatter": "loadbay",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "filters": ["request_id"],
    }
    config["loggers"]["loadbay"] = {"handlers": ["loadbay"], "level": "INFO", "propagate": False}
    if log_format == "json":
        config["formatters"] = {"json": {"()": "loadbay.logs.JsonFormatter"}}
        for handler in config["handlers"].values():
            handler["formatter"] = "json"
            handler["filters"] = ["request_id"]
    return config


def exit_now() -> None:
    """Leave without finalizing: obstore's tokio threads can race the interpreter's
    finalization and abort it, and everything is closed already."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def stop_with_parent() -> None:
    """SIGTERM this process when its supervisor dies, even by SIGKILL (Linux): a worker left
    behind would keep serving on the port, and the next `loadbay serve` could not start."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request was in place
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    host, port, log_format, slot = sys.argv[1:]
    stop_with_parent()
    yield_to_the_relay()
    run(host, int(port), log_format, slot=int(slot))
    exit_now()
