"""What the commands print: tables and progress bars, through rich.

On a terminal a bar redraws in place; in a log (not a terminal) rich prints the finished
bar once, and the command's own summary line follows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

ProgressHook = Callable[[str, int, int], None]  # (phase, done, total)


@contextlib.contextmanager
def progress_bars() -> Iterator[ProgressHook]:
    """Yield ``update(phase, done, total)``; each phase gets its own bar, with its count and time left."""
    bars = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True))
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bars.add_task(phase, total=total)
        bars.update(tasks[phase], completed=done, total=total)

    with bars:
        yield update


def print_table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], caption: str | None = None) -> None:
    """A table with headers; ``columns`` are (header, justify) pairs."""
    table = Table(caption=caption, caption_justify="left", header_style="bold", box=None, pad_edge=False)
    for header, justify in columns:
        table.add_column(header, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:  # piped: never squeeze the table to rich's 80-column default
        console = Console(width=200)
    console.print(table)
