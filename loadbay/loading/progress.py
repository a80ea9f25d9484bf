"""The loader's progress on a terminal: records sent, records/s, time left, failures."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class LoadProgress:
    """A rich progress bar when `shown`, silent otherwise (not a terminal, or --json)."""

    def __init__(self, label: str, total: int | None, *, shown: bool, console: Console) -> None:
        self._bar = (
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>9} rec/s"),
                TextColumn("[red]{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
            )
            if shown
            else None
        )
        self._task = (
            self._bar.add_task(label, total=total, rate="-", failed=0) if self._bar else None
        )

    def update(self, done: int, failed: int, total: int | None = None) -> None:
        if self._bar is None or self._task is None:
            return
        self._bar.update(self._task, completed=done, failed=failed)
        if total is not None:
            self._bar.update(self._task, total=total)
        speed = self._bar.tasks[0].speed
        self._bar.update(self._task, rate=f"{speed:,.0f}" if speed else "-")

    def __enter__(self) -> LoadProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
