"""The process `loadbay serve` becomes once the schema is ready: it runs the workers.

`loadbay serve` migrates first, then replaces itself with this module (same process id, so
signals and service managers see no difference). The parent that only watches the workers
thus starts afresh, without the CLI's, SQLAlchemy's and Alembic's modules, nor uvicorn's:
86 -> 10 MB resident, for a process that does nothing else.

Each worker (`loadbay.serving_worker`) listens on a socket of its own (SO_REUSEPORT), so
that the kernel spreads connections over them, and they keep the spread even
(`loadbay.connection_balance`). With a broker configured, the event relay runs
beside them in a process of its own (`loadbay.relay_process`). A process that dies is started
again; SIGTERM or SIGINT stops them all gracefully (SIGKILL for those still running after a
grace period).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import NoReturn

from loadbay import connection_balance
from loadbay.metrics_sharing import share_between_workers
from loadbay.serve_roles import relay_beside_the_workers

log = logging.getLogger("loadbay.supervisor")

# A worker's graceful stop: uvicorn's own, then the app's lifespan (a file job hands its
# chunks in flight back within 20 s).
STOP_GRACE_SECONDS = 40.0
# A worker that dies this soon after its start is started again only after a pause.
_QUICK_DEATH_SECONDS = 5.0
_RELAY, _NO_RELAY = "relay", "no-relay"


def become_supervisor(
    host: str, port: int, workers: int, log_format: str, *, relay: bool
) -> NoReturn:
    """Replace this process with one that runs the server (see the module's docstring);
    `relay`: the server runs the event relay."""
    sys.stdout.flush()
    sys.stderr.flush()
    arguments = [host, str(port), str(workers), log_format, _RELAY if relay else _NO_RELAY]
    os.execv(sys.executable, _python(__name__, arguments))


def _python(module: str, arguments: list[str]) -> list[str]:
    # The interpreter's own options (-O, -X …, -W …) carry over, as multiprocessing does it.
    # -P: `-m` would put the current folder first on the path, where a `loadbay` folder (or a
    # `uvicorn.py`) would shadow the installed package, and PYTHONPATH with it.
    flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    safe_path = [] if "-P" in flags else ["-P"]
    return [sys.executable, *flags, *safe_path, "-m", module, *arguments]


def serve(host: str, port: int, workers: int, log_format: str, relay: bool) -> NoReturn:
    # Workers find the schema ready; they check it instead of racing to migrate it.
    os.environ["LOADBAY_MIGRATE_ON_START"] = "false"
    if workers == 1:
        # Imported here: uvicorn and the app stay out of a supervisor of several workers. The
        # one worker runs the relay too, if there is one.
        from loadbay import serving_worker

        serving_worker.run(host, port, log_format)
        serving_worker.exit_now()
    _configure_logging(log_format)
    _check_port_free(host, port)
    metrics_folder = share_between_workers()
    counts_file = Path(connection_balance.share_between_workers(workers))
    # Each worker counts its connections in a slot of its own, kept when it is restarted.
    processes = [
        ("worker", _python("loadbay.serving_worker", [host, str(port), log_format, str(slot)]))
        for slot in range(workers)
    ]
    if relay:
        relay_beside_the_workers()
        processes.append(("relay", _python("loadbay.relay_process", [log_format])))
    try:
        code = Supervisor(processes).run()
    finally:
        if metrics_folder:
            shutil.rmtree(metrics_folder, ignore_errors=True)
        counts_file.unlink(missing_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _configure_logging(log_format: str) -> None:
    """The supervisor's few lines, in the workers' format (see serving_worker.log_config)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from loadbay.logs import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _check_port_free(host: str, port: int) -> None:
    """Fail at once, with a message, when another program holds the port: the workers would
    only die one after another. Probed without SO_REUSEPORT: a second Loadbay started on the
    port of a running one must fail, not quietly take half of its connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            log.error("cannot listen on %s:%d: %s", host, port, error)
            sys.exit(1)


class Supervisor:
    """Keeps one copy of each (name, command) running until told to stop."""

    def __init__(self, processes: list[tuple[str, list[str]]]) -> None:
        self._processes = processes
        self._stopping = False

    def run(self) -> int:
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, self._stop)
        log.info("Started parent process [%d]", os.getpid())
        running = {_Child(command): (name, command) for name, command in self._processes}
        while not self._stopping:
            time.sleep(0.2)
            for child, (name, command) in list(running.items()):
                if child.poll() is None or self._stopping:
                    continue
                del running[child]
                log.warning(
                    "%s process [%d] exited (%s): starting another",
                    name,
                    child.pid,
                    child.returncode,
                )
                if time.monotonic() - child.started < _QUICK_DEATH_SECONDS:
                    time.sleep(1.0)
                running[_Child(command)] = (name, command)
        return self._stop_all(list(running))

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _stop_all(self, workers: list[_Child]) -> int:
        log.info("Stopping parent process [%d]", os.getpid())
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in workers:
            try:
                worker.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("process [%d] still running: killing it", worker.pid)
                worker.kill()
                worker.wait()
        return 0


class _Child(subprocess.Popen[bytes]):
    """A process started here, and when."""

    def __init__(self, command: list[str]) -> None:
        super().__init__(command)
        self.started = time.monotonic()


if __name__ == "__main__":
    host, port, workers, log_format, relay = sys.argv[1:]
    serve(host, int(port), int(workers), log_format, relay == _RELAY)
