"""One rich Console on stderr for humans; stdout stays free for `--json` and tables scripts read."""

from __future__ import annotations

import dataclasses
import json
import re
from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console
from rich.errors import MarkupError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_STRAY_TAG = re.compile(r"at position (\d+)")
_MAX_STRAY_TAGS = 64


class _Console(Console):
    """A Console on which user text cannot break the markup.

    Paths, ids, names and sidecar fields are printed inside markup (`[red]error:[/] {path}`);
    one holding `[/]` or `[/bold]` would make rich raise mid-print. Every string a Console
    renders (print, table cells, titles) passes through `render_str`, the one place where a
    closing tag that closes nothing is escaped and shown as the text it is.
    """

    def render_str(self, text: str, **kwargs):  # noqa: D102 - rich's signature
        for _ in range(_MAX_STRAY_TAGS):
            try:
                return super().render_str(text, **kwargs)
            except MarkupError as exc:
                stray = _STRAY_TAG.search(str(exc))
                if stray is None:
                    break
                position = int(stray.group(1))
                text = text[:position] + "\\" + text[position:]
        return super().render_str(text, **{**kwargs, "markup": False})


console = _Console(stderr=True, highlight=False)
stdout = _Console(highlight=False, soft_wrap=True)


def emit(result: Any, as_json: bool, indent: int | None = 2) -> None:
    """Print `result` as JSON on stdout when `--json` asked for it: every command's one way out.

    Results with `to_dict()` and dataclasses are converted; paths and dates become strings.
    """
    if not as_json:
        return
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    elif dataclasses.is_dataclass(result):
        result = dataclasses.asdict(result)
    print(json.dumps(result, indent=indent, default=str, ensure_ascii=False))


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
