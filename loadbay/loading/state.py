"""What a load has done so far, kept beside its input so that `--resume` continues it."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson


def load_identity(path: Path, surface: str, batch_size: int) -> str:
    """Names this load: the same file (path, size, modification time), into the same
    surface, in the same batches. Idempotency keys derive from it."""
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{surface}|{batch_size}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def state_path(path: Path) -> Path:
    return path.with_name(path.name + ".loadbay-state.json")


@dataclass
class LoadState:
    identity: str
    done: set[int] = field(default_factory=set)  # batch numbers acknowledged by the server
    records: int = 0  # records of those batches
    failed: int = 0  # of which failed (sent and refused, or unreadable)
    job: str | None = None  # an instance file's bulk-upsert job, once the server started it

    @classmethod
    def read(cls, file: Path) -> LoadState | None:
        if not file.exists():
            return None
        saved = orjson.loads(file.read_bytes())
        return cls(
            saved["identity"],
            set(saved["done"]),
            saved["records"],
            saved["failed"],
            saved.get("job"),
        )

    def save(self, file: Path) -> None:
        """Atomically: a crash leaves the old state or the new one, never half of one."""
        body = {
            "identity": self.identity,
            "done": sorted(self.done),
            "records": self.records,
            "failed": self.failed,
            "job": self.job,
        }
        partial = file.with_name(file.name + ".tmp")
        partial.write_bytes(orjson.dumps(body))
        os.replace(partial, file)
