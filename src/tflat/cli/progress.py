"""Progress bars on stderr for the commands that take more than a few seconds.

Bars are drawn only when stderr is a terminal, or when asked with ``tflat --progress``
(``--no-progress`` turns them off); a pipe or a log file gets no bar codes. Library code only
reports (``tflat.progress``, the campaign and calibration records); this module draws, with
rich.progress: what is being done, a bar, the percentage, time elapsed and the ETA.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import click

#: Where ``tflat --progress/--no-progress`` is kept for the command that runs.
META_KEY = "tflat.progress"


def enabled() -> bool:
    """--progress / --no-progress when given, else whether stderr is a terminal."""
    ctx = click.get_current_context(silent=True)
    asked = ctx.meta.get(META_KEY) if ctx is not None else None
    return bool(asked) if asked is not None else sys.stderr.isatty()


def new_bar(*extra_columns: Any) -> Any:
    """A rich Progress on stderr: description, bar, percent, elapsed, ETA (and any extra)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        *extra_columns,
        console=Console(stderr=True, force_terminal=True if not sys.stderr.isatty() else None),
        transient=False,
    )


@contextlib.contextmanager
def step_bar(description: str) -> Iterator[Any]:
    """A :data:`tflat.progress.ProgressCallback` that moves a bar, or None when bars are off."""
    if not enabled():
        yield None
        return
    from tflat import Step

    bar = new_bar()
    task = bar.add_task(description, total=None)

    def on_step(step: Step) -> None:
        label = f"{description}: {step.label}" if step.label else description
        bar.update(task, completed=step.done, total=step.total, description=label)

    with bar:
        yield on_step
