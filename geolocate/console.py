"""One rich Console on stderr for humans; stdout stays free for `--json` and tables scripts read.

Everything printed from data is inert. A file name, a sidecar's class name, an EXIF field or a
server's answer is untrusted text: `inert` strips its control characters (an `ESC]0;…` would
set the terminal's title, `ESC[2J` clear it) and escapes its Rich markup (`[link=…]` would
become a hyperlink, `[bold]x.jpg` would show as `x.jpg`). Both consoles also drop control
characters from everything they render, as a second line of defence for a call site that
forgot. `csv_cell` is the same idea for spreadsheets: a cell starting with `=`, `+`, `-` or `@`
is a formula to Excel or LibreOffice.
"""

from __future__ import annotations

import dataclasses
import json
import re
from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
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
# C0 controls but tab and newline, DEL, and C1 controls (0x9b is a one-byte CSI on some terminals).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_C1 = re.compile(r"[\x7f-\x9f]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def strip_controls(text: object) -> str:
    """`text` as a string without control characters (newline and tab kept)."""
    return _CONTROL.sub("", str(text))


def inert(text: object) -> str:
    """Untrusted `text` made safe to print inside markup: no control characters, markup escaped."""
    return escape(strip_controls(text))


def csv_cell(value: object) -> object:
    """A text cell a spreadsheet will not run as a formula (prefixed with `'`); other values unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_safe(frame):
    """A polars DataFrame whose text cells went through `csv_cell`: what every CSV writer writes."""
    import polars as pl

    text = [c for c, dtype in frame.schema.items() if dtype == pl.Utf8]
    return frame.with_columns(pl.col(c).map_elements(csv_cell, return_dtype=pl.Utf8) for c in text)


class _Console(Console):
    """A Console on which user text cannot break the markup.

    Paths, ids, names and sidecar fields are printed inside markup (`[red]error:[/] {path}`);
    one holding `[/]` or `[/bold]` would make rich raise mid-print. Every string a Console
    renders (print, table cells, titles) passes through `render_str`, the one place where a
    closing tag that closes nothing is escaped and shown as the text it is.
    """

    def render_str(self, text: str, **kwargs):  # noqa: D102 - rich's signature
        text = strip_controls(text)
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
    text = json.dumps(result, indent=indent, default=str, ensure_ascii=False)  # C0 controls come out as \u escapes
    print(_C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text))  # and so do C1's (a raw 0x9b is a CSI)


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
