"""``tflat bench``: measure generated single-op models, or a whole model, into the database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

import tflat
from tflat.cli.common import db_option, max_specs_option, path_option, seconds_option

if TYPE_CHECKING:
    from tflat import CampaignResult, WideSpread
    from tflat import Progress as CampaignProgress


@click.command("bench")
@click.argument("target", metavar="PLAN_OR_DIR_OR_MODEL")
@click.option("--device", required=True, help="host-cpu, host-cpu-tN or android:<serial>.")
@db_option()
@click.option(
    "--repeats", type=click.IntRange(1), default=30, show_default=True, help="Timed runs per model."
)
@click.option(
    "--warmup", type=click.IntRange(0), default=5, show_default=True, help="Untimed runs first."
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="CPU threads [default: N of host-cpu-tN, else 1].",
)
@click.option(
    "--delegate",
    type=click.Choice(["xnnpack", "cpu", "gpu"]),
    help="Default: xnnpack on host-cpu, gpu on a phone.",
)
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True)
@seconds_option(
    "--timeout", minimum=0.1, default=120.0, help="Seconds per model before it counts as hung."
)
@click.option(
    "--sample", type=click.IntRange(1), help="Measure a seeded random sample of N models."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --sample.")
@path_option(
    "--benchmark-binary", kind="file", exists=True, help="benchmark_model for android:<serial>."
)
@click.option(
    "--retry-failed", is_flag=True, help="Measure again what failed before (else skipped)."
)
@click.option(
    "--force", is_flag=True, help="Whole model: measure again even if measured with these settings."
)
@click.option("--no-profile", is_flag=True, help="Whole model: skip the per-op profile.")
@click.option(
    "--spread-limit",
    type=click.FloatRange(min=0),
    default=None,
    help=f"Warn above this (median-min)/min of the runs [default: {tflat.SPREAD_LIMIT}].",
)
@seconds_option(
    "--lease",
    minimum=0.5,
    default=60.0,
    help="Seconds a claim on a model outlives a campaign that died (campaigns sharing a "
    "database divide the models; a dead one's are taken over after this).",
)
@max_specs_option
def bench_cmd(
    target: str,
    device: str,
    db_url: str | None,
    repeats: int,
    warmup: int,
    threads: int | None,
    delegate: str | None,
    precision: str,
    timeout_s: float,
    sample: int | None,
    seed: int,
    benchmark_binary: Path | None,
    retry_failed: bool,
    force: bool,
    no_profile: bool,
    spread_limit: float | None,
    lease_s: float,
    max_specs: int | None,
) -> None:
    """Measure models on DEVICE and store every run; resumable.

    PLAN_OR_DIR_OR_MODEL is a folder of generated models with manifest.jsonl (or that file),
    a sampling plan (a shipped plan's name or a plan file; its models are generated once into
    the user cache folder), or one .tflite model (stored as a whole-model measurement with a per-op
    profile where the device gives one). What is measured already on DEVICE with the same
    settings is skipped, so an interrupted campaign continues where it stopped.
    """
    from tflat.cli.progress import enabled

    limit = tflat.SPREAD_LIMIT if spread_limit is None else spread_limit
    bar = _Bar(device)
    try:
        result = tflat.measure(
            target, device, db_url=db_url, repeats=repeats, warmup=warmup, threads=threads,
            delegate=delegate, precision=precision, timeout_s=timeout_s, sample=sample,
            seed=seed, benchmark_binary=benchmark_binary, retry_failed=retry_failed,
            force=force, profile=not no_profile, spread_limit=limit, lease_s=lease_s,
            max_specs=max_specs,
            progress=bar if enabled() else None,  # no terminal and not asked: summary only
        )  # fmt: skip
    finally:
        bar.stop()
    if result.model is not None:
        _model_summary(Path(target), result.model, result.store_url, limit)
    elif result.campaign is not None:
        _summary(result.campaign, result.store_url, limit)


def _model_summary(path: Path, r: Any, url: str, limit: float) -> None:
    if not r.measured:
        click.echo(
            f"{path.name} on {r.device_id}: measured already with these settings (--force to redo)"
        )
        return
    m = r.measurement
    if not m.ok:
        click.echo(f"{path.name} on {r.device_id}: {m.status}: {m.error}")
        return
    # the normalised figure: the minimum divided by how much slower than its fast regime the
    # machine was (tflat.bench.speed), the statistic calibration trains on and checks with
    note = (
        f" (normalised to the fast regime {r.normalised_ms:.4g} ms: reference "
        f"{m.reference_ms:.4g} ms, fast {r.fast_reference_ms:.4g} ms)"
        if r.normalised_ms is not None
        else ""
    )
    click.echo(
        f"{path.name} on {r.device_id}: min {m.min_ms:.4g} ms{note}, "
        f"median {m.median_ms:.4g} ms over {m.count} runs; "
        f"{r.profile_rows} per-op profile rows stored in {url}"
    )
    if r.wide_spread is not None:
        _warn_spread([r.wide_spread], 1, limit)


class _Bar:
    """The campaign's progress bar on stderr; it starts with the first result, so a device
    that fails on its first use (no phone, no adb) leaves just the one error line."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, p: CampaignProgress) -> None:
        if self.bar is None:
            from rich.progress import MofNCompleteColumn, TextColumn

            from tflat.cli.progress import new_bar

            self.bar = new_bar(MofNCompleteColumn(), TextColumn("{task.fields[last]}"))
            self.bar.start()
            self.task = self.bar.add_task(self.device, total=p.total, last="")
        last = ""
        if p.item is not None and p.measurement is not None:
            m = p.measurement
            norm = f" (norm {p.normalised_ms:.3g})" if p.normalised_ms is not None else ""
            last = (
                f"{p.item.spec.kind} {m.min_ms:.3g} ms{norm}"
                if m.ok and m.min_ms is not None
                else f"{p.item.spec.kind} {m.status}"
            )
        self.bar.update(self.task, completed=p.done, last=last)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _summary(r: CampaignResult, url: str, limit: float) -> None:
    shared = f"{r.by_others} by other campaigns, " if r.by_others else ""
    click.echo(
        f"{r.device_id}: {r.measured} measured ({r.failed} failed), {r.skipped} measured before, "
        f"{shared}{r.total} in all; stored in {url}"
    )
    if r.taken_over:
        click.echo(f"{r.taken_over} claims taken over from campaigns that stopped", err=True)
    if r.wide_spread:
        _warn_spread(list(r.wide_spread), r.measured - r.failed, limit)


def _warn_spread(wide: list[WideSpread], of: int, limit: float) -> None:
    worst = sorted(wide, key=lambda w: -w.spread)[:3]
    examples = ", ".join(f"{w.label} {100 * w.spread:.0f} %" for w in worst)
    click.echo(
        f"warning: {len(wide)} of {of} measurements spread over {100 * limit:.0f} % "
        f"by {tflat.SPREAD_STATISTIC}; "
        f"too noisy to trust (worst: {examples})",
        err=True,
    )
