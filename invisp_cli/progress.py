"""Where invisp prints: results on stdout (``out``), progress bars and messages on stderr (``console``).

On a terminal rich fits everything to its width. Written to a file or a pipe (``invisp bench DIR > log.txt``, CI
logs) a console is as wide as its longest line: tables print in full and a one-line result never breaks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console, ConsoleDimensions
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

UNBOUNDED = 100_000  # columns of a console that is not a terminal: no line of invisp's is longer


class _Console(Console):
    """A rich Console whose width is ``UNBOUNDED`` whenever its file is not a terminal (checked at each print, so
    redirected streams, e.g. Click's test runner, count)."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if self.is_terminal else ConsoleDimensions(UNBOUNDED, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


out = _Console()
console = _Console(stderr=True)


@contextlib.contextmanager
def progress_bar(description: str, total: float, enabled: bool = True) -> Iterator[Callable[[float], None]]:
    """Yield ``advance(n)``; shows a bar with elapsed time and ETA when enabled and stderr is a terminal."""
    if not enabled or not console.is_terminal:
        yield lambda n: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n: prog.advance(task, n)
