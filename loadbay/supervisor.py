"""The process `loadbay serve` becomes once the schema is ready: uvicorn and its workers.

`loadbay serve` migrates first, then replaces itself with this module (same process id, so
signals and service managers see no difference). The parent that only watches the workers
thus starts afresh, without the CLI's, SQLAlchemy's and Alembic's modules: 86 -> 27 MB
resident, for a process that does nothing else.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from typing import Any, NoReturn

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from loadbay.metrics_sharing import share_between_workers


def become_supervisor(host: str, port: int, workers: int, log_format: str) -> NoReturn:
    """Replace this process with one that runs the server (see the module's docstring)."""
    sys.stdout.flush()
    sys.stderr.flush()
    arguments = [host, str(port), str(workers), log_format]
    # The interpreter's own options (-O, -X …, -W …) carry over, as multiprocessing does it.
    # -P: `-m` would put the current folder first on the path, where a `loadbay` folder (or a
    # `uvicorn.py`) would shadow the installed package, and PYTHONPATH with it.
    flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    os.execv(sys.executable, [sys.executable, *flags, "-P", "-m", __name__, *arguments])


def serve(host: str, port: int, workers: int, log_format: str) -> NoReturn:
    # Workers find the schema ready; they check it instead of racing to migrate it.
    os.environ["LOADBAY_MIGRATE_ON_START"] = "false"
    metrics_folder = share_between_workers() if workers > 1 else None
    try:
        uvicorn.run(
            "loadbay.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            log_config=log_config(log_format),
            access_log=False,  # Loadbay writes its own, with the caller and the record count
        )
    finally:
        if metrics_folder:
            shutil.rmtree(metrics_folder, ignore_errors=True)
    # The server has shut down cleanly. obstore's tokio threads can race the interpreter's
    # finalization and abort it, so exit without finalizing (everything is closed already).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


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


if __name__ == "__main__":
    host, port, workers, log_format = sys.argv[1:]
    serve(host, int(port), int(workers), log_format)
