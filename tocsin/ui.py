"""What users see: progress bars on long work and a summary table at the end.

Progress goes to stderr so that stdout stays clean for ``--json`` and exports.
Everything printed through :data:`out` and :data:`err` passes
:func:`~tocsin.safe_text.terminal_text`: values from the store are written by
attackers, and a control or bidi character must never reach the terminal raw.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO, cast

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from tocsin.safe_text import terminal_text


class SafeConsole(Console):
    """A Rich console that escapes control and bidi characters in all it prints.

    Strings are cleaned before Rich lays them out (so tables stay aligned);
    the last step, where segments become output, cleans again, so text that
    reached Rich another way (a ``Text`` built elsewhere, a progress label)
    cannot slip through. Rich's own styling and cursor codes are kept: they
    are styles and control segments, not text.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(terminal_text(text), **kwargs)

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(terminal_text(segment.text), segment.style)
            for segment in buffer
        )


out = SafeConsole(highlight=False, soft_wrap=True)
err = SafeConsole(stderr=True, highlight=False)


class Bar:
    """A handle on one progress task; ``advance`` and ``total`` may change as work is found."""

    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def update(self, **kwargs: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, **kwargs)


@contextmanager
def progress(description: str, total: float | None = None, *, quiet: bool = False) -> Iterator[Bar]:
    """A progress bar on stderr; a no-op when quiet or not on a terminal."""
    if quiet or not err.is_terminal:
        yield Bar(None, None)
        return
    columns = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield Bar(bar, task)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A summary table; right-aligns the columns whose values are numbers.

    Cells are plain text, never markup: a campaign named ``[link=...]`` prints as
    written. Callers pass raw values and need not escape them.
    """
    rows = [list(r) for r in rows]
    result = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        numeric = bool(rows) and all(isinstance(r[i], int | float) for r in rows)
        result.add_column(name, justify="right" if numeric else "left")
    for row in rows:
        result.add_row(*(Text(terminal_text("" if v is None else str(v))) for v in row))
    return result


class _TerminalWriter:
    """A text stream that escapes control and bidi characters on the way out."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(terminal_text(text))

    def flush(self) -> None:
        self._stream.flush()


def data_stdout() -> TextIO:
    """Where exports write: stdout as is when redirected (the data stays exact), but
    with control and bidi characters escaped when a person reads it on a terminal."""
    stream = sys.stdout
    return cast(TextIO, _TerminalWriter(stream)) if stream.isatty() else stream
