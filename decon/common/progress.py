"""Progress bars (rich) on stderr when it is a terminal; silent otherwise or with DECON_QUIET set."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


def quiet_mode() -> bool:
    return bool(os.environ.get("DECON_QUIET") or os.environ.get("DECON_TEST"))


class _Bar:
    def __init__(self, progress, task) -> None:  # noqa: ANN001
        self._progress = progress
        self._task = task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def set_total(self, total: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, total=total)


@contextlib.contextmanager
def progress_bar(total: int | None, description: str, *, enabled: bool = True,
                 unit: str = "files") -> Iterator[_Bar]:
    """A progress bar for ``total`` steps; ``advance()`` it. No output when disabled or not a TTY."""
    if not enabled or quiet_mode() or not sys.stderr.isatty():
        yield _Bar(None, None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
        TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=False,
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield _Bar(progress, task)
