"""``tflat bench``: measure generated single-op models, or a whole model, into the database."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tflat.errors import TflatError

if TYPE_CHECKING:
    from rich.progress import TaskID

    from tflat.bench import Measurement
    from tflat.bench.campaign import BenchItem, CampaignResult, WideSpread
    from tflat.bench.campaign import Progress as CampaignProgress


@click.command("bench")
@click.argument("target", metavar="PLAN_OR_DIR_OR_MODEL")
@click.option("--device", required=True, help="host-cpu, host-cpu-tN or android:<serial>.")
@click.option(
    "--db",
    "db_url",
    metavar="URL",
    help="Database URL or SQLite file (default: TFLAT_DB or the user data dir).",
)
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
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.1),
    default=120.0,
    show_default=True,
    help="Seconds per model before it counts as hung.",
)
@click.option(
    "--sample", type=click.IntRange(1), help="Measure a seeded random sample of N models."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --sample.")
@click.option(
    "--benchmark-binary",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="benchmark_model for android:<serial>.",
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
    help="Warn above this (median-min)/min of the runs [default: 0.3].",
)
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
) -> None:
    """Measure models on DEVICE and store every run; resumable.

    PLAN_OR_DIR_OR_MODEL is a folder of generated models with manifest.jsonl (or that file),
    a sampling plan (a shipped plan's name or a plan file; its models are generated once into
    the user cache folder), or one .tflite model (stored as a whole-model measurement with a per-op
    profile where the device gives one). What is measured already on DEVICE with the same
    settings is skipped, so an interrupted campaign continues where it stopped.
    """
    from tflat.bench import RunSettings, get_runner
    from tflat.bench.campaign import SPREAD_LIMIT, bench_model
    from tflat.store import open_store

    limit = SPREAD_LIMIT if spread_limit is None else spread_limit
    path = Path(target)
    # Any file that is neither a plan (.toml) nor a manifest is taken for a model, so a text
    # file gets "not a .tflite model" rather than a TOML parse error.
    is_model = path.is_file() and path.suffix.lower() not in (".toml", ".jsonl")
    if is_model:
        from tflat.model import read_model

        read_model(path)  # bad input fails before any device or database is touched
    options: dict[str, Any] = {}
    on_phone = device.startswith("android:")
    if on_phone:
        if benchmark_binary is None:
            raise TflatError(
                "android devices need --benchmark-binary PATH (TFLite's benchmark_model)"
            )
        options["benchmark_binary"] = benchmark_binary
    else:
        # host-cpu-tN means N threads unless --threads says otherwise (get_runner checks)
        variant = re.fullmatch(r"host-cpu-t(\d+)", device)
        if threads is None:
            threads = int(variant.group(1)) if variant else 1
        options["threads"] = threads
        if device.startswith("host-cpu") and (delegate == "gpu" or precision != "fp32"):
            raise TflatError(
                f"{device} measures fp32 with xnnpack or cpu only "
                f"(asked --delegate {delegate or 'xnnpack'} --precision {precision})"
            )
    settings = RunSettings(
        delegate=delegate or ("gpu" if on_phone else "xnnpack"),  # type: ignore[arg-type]
        threads=threads or 1,
        precision=precision,  # type: ignore[arg-type]
        warmup=warmup,
        repeats=repeats,
        timeout_s=timeout_s,
    )
    # Bad options and unknown devices fail before a plan's models are generated. A runner
    # holds nothing until it first measures, so one not entered below needs no closing.
    runner = get_runner(device, **options)
    items = None if is_model else _items(target, sample, seed)
    store = open_store(db_url)
    try:
        _seed_reference(runner, store)
        with runner:
            if is_model:
                r = bench_model(
                    store,
                    runner,
                    path,
                    settings,
                    profile=not no_profile,
                    replace=force,
                    spread_limit=limit,
                )
                if not r.measured:
                    click.echo(
                        f"{path.name} on {r.device_id}: measured already with these settings "
                        "(--force to redo)"
                    )
                    return
                m = r.measurement
                assert m is not None
                if not m.ok:
                    click.echo(f"{path.name} on {r.device_id}: {m.status}: {m.error}")
                    return
                click.echo(
                    f"{path.name} on {r.device_id}: min {m.min_ms:.4g} ms"
                    f"{_normalised_note(runner, m)}, "
                    f"median {m.median_ms:.4g} ms over {m.count} runs; "
                    f"{r.profile_rows} per-op profile rows stored in {store.url}"
                )
                if r.wide_spread is not None:
                    _warn_spread([r.wide_spread], 1, limit)
                return
            assert items is not None
            result = _run_with_progress(store, runner, items, settings, retry_failed, limit)
    finally:
        store.close()
    _summary(result, store.url, limit)


def _seed_reference(runner: Any, store: Any) -> None:
    """Give a runner with a speed reference the readings stored for its device, so its
    fast-regime reference is known from the first model."""
    add = getattr(runner, "add_reference_readings", None)
    if add is not None:
        add(store.reference_readings(runner.device_id))


def _normalised_note(runner: Any, m: Measurement) -> str:
    """`` (normalised X ms: reference R ms, fast-regime F ms)`` where the runner has a reference.

    The normalised figure is the minimum divided by how much slower than its fast regime the
    machine was (tflat.bench.speed), the statistic calibration trains on and checks with.
    """
    from tflat.bench.speed import normalised_ms

    fast = getattr(runner, "fast_reference_ms", None)
    if m.reference_ms is None or m.min_ms is None or not isinstance(fast, float):
        return ""
    norm = normalised_ms(m.min_ms, m.reference_ms, fast)
    return (
        f" (normalised to the fast regime {norm:.4g} ms: reference {m.reference_ms:.4g} ms, "
        f"fast {fast:.4g} ms)"
    )


def _items(target: str, sample: int | None, seed: int) -> list[BenchItem]:
    from tflat.bench.campaign import MANIFEST, read_manifest, sample_items

    path = Path(target)
    if path.is_dir() or path.name == MANIFEST:
        if path.is_dir() and not (path / MANIFEST).is_file():
            raise TflatError(f"{path}: no {MANIFEST} (generate models with 'tflat generate')")
        return sample_items(read_manifest(path), sample, seed)
    return _items_from_plan(target, sample, seed)


def _items_from_plan(plan: str, sample: int | None, seed: int) -> list[BenchItem]:
    """Generate a plan's models into the user cache folder (once) and list them."""
    from platformdirs import user_cache_dir

    from tflat.bench.campaign import BenchItem
    from tflat.plans import generate, load_plan, model_path, shipped_plans
    from tflat.store import SpecRecord

    if not Path(plan).exists() and plan not in shipped_plans():
        raise TflatError(
            f"{plan}: no such file or folder, nor a shipped plan ({', '.join(shipped_plans())})"
        )
    loaded = load_plan(plan)
    expanded = loaded.expand(seed=seed, sample=sample)
    folder = Path(user_cache_dir("tflat", appauthor=False)) / "generated" / loaded.name
    report = generate(expanded.specs, folder)
    failed = {label for label, _ in report.failed}
    if failed or expanded.invalid:
        click.echo(
            f"warning: plan {loaded.name}: {len(expanded.invalid)} invalid specs, "
            f"{len(failed)} models could not be built; measuring the rest",
            err=True,
        )
    return [
        BenchItem(folder / model_path(s), SpecRecord(s.spec_hash, s.kind, dict(s.params)))
        for s in expanded.specs
        if s.label not in failed
    ]


def _run_with_progress(
    store: Any, runner: Any, items: list[BenchItem], settings: Any, retry_failed: bool, limit: float
) -> CampaignResult:
    from rich.progress import MofNCompleteColumn, TextColumn

    from tflat.bench.campaign import run_campaign
    from tflat.cli.progress import enabled, new_bar

    if not enabled():  # no terminal and not asked: the summary line alone
        return run_campaign(store, runner, items, settings, retry_failed=retry_failed,
                            spread_limit=limit)  # fmt: skip
    bar = new_bar(MofNCompleteColumn(), TextColumn("{task.fields[last]}"))
    task: TaskID | None = None

    def on_progress(p: CampaignProgress) -> None:
        # The bar starts with the first result, so a device that fails on its first use
        # (no phone, no adb) leaves just the one error line.
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(runner.device_id, total=len(items), last="")
        last = ""
        if p.item is not None and p.measurement is not None:
            m = p.measurement
            last = (
                f"{p.item.spec.kind} {m.min_ms:.3g} ms{_short_norm(runner, m)}"
                if m.ok and m.min_ms is not None
                else f"{p.item.spec.kind} {m.status}"
            )
        bar.update(task, completed=p.done, last=last)

    try:
        return run_campaign(
            store,
            runner,
            items,
            settings,
            progress=on_progress,
            retry_failed=retry_failed,
            spread_limit=limit,
        )
    finally:
        if task is not None:
            bar.stop()


def _short_norm(runner: Any, m: Measurement) -> str:
    from tflat.bench.speed import normalised_ms

    fast = getattr(runner, "fast_reference_ms", None)
    if m.reference_ms is None or m.min_ms is None or not isinstance(fast, float):
        return ""
    return f" (norm {normalised_ms(m.min_ms, m.reference_ms, fast):.3g})"


def _summary(r: CampaignResult, url: str, limit: float) -> None:
    click.echo(
        f"{r.device_id}: {r.measured} measured ({r.failed} failed), {r.skipped} measured before, "
        f"{r.total} in all; stored in {url}"
    )
    if r.wide_spread:
        _warn_spread(list(r.wide_spread), r.measured - r.failed, limit)


def _warn_spread(wide: list[WideSpread], of: int, limit: float) -> None:
    from tflat.bench.campaign import SPREAD_STATISTIC

    worst = sorted(wide, key=lambda w: -w.spread)[:3]
    examples = ", ".join(f"{w.label} {100 * w.spread:.0f} %" for w in worst)
    click.echo(
        f"warning: {len(wide)} of {of} measurements spread over {100 * limit:.0f} % "
        f"by {SPREAD_STATISTIC}; "
        f"too noisy to trust (worst: {examples})",
        err=True,
    )
