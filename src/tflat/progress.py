"""Progress of long library calls (training, cross-validation): reported, never drawn here.

A long call takes an optional ``progress`` callback and calls it with a :class:`Step` as work
gets done; only the CLI turns steps into a bar (``tflat.cli.progress``). Campaigns and
calibration report richer records of their own (``tflat.bench.campaign.Progress``,
``tflat.calibrate.CalibrationProgress``); this is the plain count the rest shares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """``done`` of ``total`` units of work (fractions allowed: a fold half trained is 0.5),
    and what is being done now."""

    done: float
    total: float
    label: str = ""


ProgressCallback = Callable[[Step], None]


def report(progress: ProgressCallback | None, done: float, total: float, label: str = "") -> None:
    """Call ``progress`` if there is one."""
    if progress is not None:
        progress(Step(done, total, label))


def nested(
    progress: ProgressCallback | None, start: float, total: float, label: str = ""
) -> ProgressCallback | None:
    """A callback for a sub-task that fills one unit, ``start`` to ``start + 1``, of a parent
    task of ``total`` units (e.g. the training inside one cross-validation fold)."""
    if progress is None:
        return None
    parent = progress

    def inner(step: Step) -> None:
        share = step.done / step.total if step.total > 0 else 0.0
        parent(Step(start + min(max(share, 0.0), 1.0), total, label or step.label))

    return inner


class Ticker:
    """Counts units of work as they are done and reports each: ``ticker()`` after one unit,
    ``finish()`` at the end (the count stops one short of ``total`` until then, so a bar never
    shows 100 % while the last step still runs)."""

    def __init__(self, progress: ProgressCallback | None, total: int, label: str = "") -> None:
        self.progress, self.total, self.label, self.done = progress, total, label, 0
        report(progress, 0, total, label)

    def __call__(self) -> None:
        self.done = min(self.done + 1, self.total - 1)
        report(self.progress, self.done, self.total, self.label)

    def finish(self) -> None:
        report(self.progress, self.total, self.total, self.label)
