"""``tflat calibrate DEVICE``: a device's predictor in one command, within a time budget."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import click

import tflat
from tflat.cli.common import db_option, path_option
from tflat.errors import TflatError


class _ProgressLine:
    """One line to stderr per step, at most every ``every_s`` seconds (and on every message)."""

    def __init__(self, every_s: float = 2.0, quiet: bool = False) -> None:
        self.every_s = every_s
        self.quiet = quiet
        self._last = -math.inf

    def __call__(self, p: Any) -> None:
        now = time.monotonic()
        if self.quiet or (not p.message and now - self._last < self.every_s):
            return
        self._last = now
        cv = f"{100 * p.cv_mape:.1f} %" if p.cv_mape is not None else "-"
        wcv = f"{100 * p.cv_wape:.1f} %" if p.cv_wape is not None else "-"
        left = max(p.budget_s - p.elapsed_s, 0.0)
        msg = f"  {p.message}" if p.message else ""
        click.echo(
            f"[{p.elapsed_s / 60:5.1f}/{p.budget_s / 60:g} min] {p.phase:<12} "
            f"measured {p.models_measured} (in db {p.models_in_db}, failed {p.failed})  "
            f"CV error {cv} (latency-weighted {wcv})  {left:.0f} s left{msg}",
            err=True,
        )


class _ProgressBar:
    """The calibration's time budget as a bar (ETA: the budget left), with the phase, the
    models measured and the cross-validated error as its description."""

    def __init__(self, device: str) -> None:
        from tflat.cli.progress import new_bar

        self.device = device
        self.bar = new_bar()
        self.task = self.bar.add_task(f"calibrate {device}", total=None)
        self.bar.start()

    def __call__(self, p: Any) -> None:
        cv = f", CV error {100 * p.cv_mape:.1f} %" if p.cv_mape is not None else ""
        text = f"calibrate {self.device}: {p.phase}, {p.models_measured} measured{cv}"
        self.bar.update(self.task, completed=min(p.elapsed_s, p.budget_s), total=p.budget_s,
                        description=text)  # fmt: skip
        if p.message:  # what a phase did: a line above the bar, kept in the scrollback
            self.bar.console.print(f"{p.phase}: {p.message}")

    def close(self) -> None:
        self.bar.stop()


@click.command("calibrate")
@click.argument("device")
@click.option(
    "--minutes",
    type=float,
    default=20.0,
    show_default=True,
    help="Time budget for the whole run (measuring, training, saving).",
)
@db_option()
@click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="host-cpu threads; N > 1 calibrates the device variant host-cpu-tN.",
)
@click.option(
    "--delegate",
    type=click.Choice(["xnnpack", "cpu", "gpu"]),
    default=None,
    help="Delegate to calibrate (default: xnnpack on host-cpu, gpu on a phone).",
)
@path_option(
    "--work-dir", kind="folder", help="Where generated models go (default: the user cache folder)."
)
@path_option(
    "--prior-models", kind="folder", exists=True, multiple=True, default=(),
    help="A folder of real .tflite models whose layer shapes to sample.",
)  # fmt: skip
@path_option(
    "--benchmark-binary", kind="file",
    help="android: the benchmark_model binary to push to the phone.",
)  # fmt: skip
@click.option("--max-models", type=int, default=None, help="Stop after measuring this many.")
@click.option("--no-adaptive", is_flag=True, help="Skip the adaptive rounds.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or lines.")
def calibrate_cmd(
    device: str,
    minutes: float,
    db_url: str | None,
    threads: int,
    delegate: str | None,
    work_dir: Path | None,
    prior_models: tuple[Path, ...],
    benchmark_binary: Path | None,
    max_models: int | None,
    no_adaptive: bool,
    fmt: str,
    quiet: bool,
) -> None:
    """Calibrate DEVICE (host-cpu or android:<serial>): sample, benchmark, train, save.

    Stops on the time budget with the best predictor so far; run it again to resume where it
    stopped. `tflat estimate MODEL --device DEVICE --db URL` then uses the predictor.
    """

    if threads < 1:
        raise TflatError(f"--threads must be at least 1, got {threads}")
    from tflat.cli.progress import enabled

    options: dict[str, Any] = {}
    if benchmark_binary is not None:
        options["benchmark_binary"] = benchmark_binary
    bar = _ProgressBar(device) if enabled() and not quiet else None
    try:
        result = tflat.calibrate_device(
            device,
            minutes=minutes,
            db_url=db_url,
            threads=threads,
            delegate=delegate,
            work_dir=work_dir,
            prior_models=prior_models,
            adaptive=not no_adaptive,
            max_models=max_models,
            runner_options=options,
            progress=bar if bar is not None else _ProgressLine(quiet=quiet),
        )
    finally:
        if bar is not None:
            bar.close()
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    cv = result.cv
    lines = [
        f"device        {result.device_id} ({result.rules} rules, {result.settings['delegate']}, "
        f"{result.settings['threads']} thread(s))",
        f"measured      {result.models_measured} models this run, "
        f"{result.models_in_db} in the database ({result.failed} failed)",
        f"statistic     minimum of {result.settings['repeats']} timed runs; invoke overhead "
        f"{result.overhead_ms * 1000:.1f} µs subtracted per single-op model",
        f"speed         {result.speed_reference}"
        + (
            f" (fast-regime reference {result.reference_fast_ms * 1000:.1f} µs)"
            if result.reference_fast_ms
            else ""
        ),
        f"CV error      {100 * cv.mape:.1f} % per op ({100 * cv.mape_above_floor:.1f} % for ops "
        f"over 10 µs), {100 * cv.wape:.1f} % latency-weighted ({cv.folds}-fold, {cv.rows} ops)",
        f"phases run    {', '.join(result.phases_done) or '-'}"
        + (
            "  (stopped by the time budget: run again to resume)"
            if result.stopped_by_budget
            else ""
        ),
        f"saved         predictor for {result.device_id} in {result.db_url}",
        f"next          tflat estimate MODEL --device {result.device_id}"
        + (f" --db {db_url}" if db_url else ""),
    ]
    click.echo("\n".join(lines))
