"""The folder through which the workers of one server count their metrics together.

A module of its own, on the standard library only, so that the supervisor process can make
the folder without loading prometheus_client or SQLAlchemy.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from loadbay import scratch_files

# prometheus_client's multiprocess mode reads the folder from this variable.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def share_between_workers() -> str | None:
    """Make the worker processes started from here count into one folder, empty at start.

    Call before the workers start; they inherit the folder through the environment. Returns
    the folder when it was made here (the caller removes it at exit), None when the
    environment named one already.
    """
    folder = os.environ.get(MULTIPROCESS_DIR)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        return None
    scratch_files.remove_orphans("metrics")
    folder = tempfile.mkdtemp(prefix=scratch_files.prefix("metrics"))
    os.environ[MULTIPROCESS_DIR] = folder
    return folder
