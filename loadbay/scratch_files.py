"""A supervisor's scratch files in the temporary folder, named after its process id.

A supervisor removes its own at exit, but one killed (SIGKILL, the OOM killer) cannot: the
next one to start removes those of every supervisor no longer running. On the standard
library only, for the supervisor to import.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def prefix(kind: str) -> str:
    """The start of the name of this process's scratch file or folder of `kind`."""
    return f"loadbay-{kind}-{os.getpid()}-"


def remove_orphans(kind: str) -> None:
    """Remove the scratch files and folders of `kind` whose supervisor is gone."""
    for path in Path(tempfile.gettempdir()).glob(f"loadbay-{kind}-*-*"):
        owner = path.name.removeprefix(f"loadbay-{kind}-").split("-", 1)[0]
        if owner.isdigit() and not _running(int(owner)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
