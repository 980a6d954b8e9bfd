"""One rich Console on stderr for humans; stdout stays free for `--json` and tables scripts read."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, highlight=False)
stdout = Console(highlight=False, soft_wrap=True)


def progress(*extra_columns) -> Progress:
    """A progress bar on stderr with the columns every long step shows (count, elapsed, ETA)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra_columns,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal and not _force_progress(),
    )


def _force_progress() -> bool:
    import os

    return os.environ.get("GEOLOCATE_PROGRESS", "") == "1"


@contextmanager
def step(message: str) -> Iterator[None]:
    """Print `message` and a tick when the block finishes."""
    console.print(f"[cyan]→[/] {message}")
    yield
    console.print(f"[green]✓[/] {message}")
