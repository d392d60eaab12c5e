"""``tflat bench`` as a function: a plan, a folder of generated models or one .tflite model,
measured on a device into the database.

:func:`measure` checks the options against the device, turns the target into items (a
folder's manifest, or a plan's models generated once into the user cache folder), gives a
runner with a speed reference the readings stored for its device, and hands the items to the
campaign (:func:`~tflat.bench.campaign.run_campaign`) or a whole model to
:func:`~tflat.bench.campaign.bench_model`. The CLI only parses, calls and prints.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tflat.bench.campaign import (
    MANIFEST,
    SPREAD_LIMIT,
    BenchItem,
    CampaignResult,
    ModelBenchResult,
    Progress,
    bench_model,
    read_manifest,
    run_campaign,
    sample_items,
)
from tflat.errors import TflatError
from tflat.store.claims import DEFAULT_LEASE_S

if TYPE_CHECKING:
    from tflat.bench.base import Runner
    from tflat.store.db import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeasureResult:
    """What :func:`measure` did: a campaign over single-op models, or one whole model."""

    store_url: str
    campaign: CampaignResult | None = None
    model: ModelBenchResult | None = None


def measure(
    target: str,
    device: str,
    *,
    db_url: str | None = None,
    repeats: int = 30,
    warmup: int = 5,
    threads: int | None = None,
    delegate: str | None = None,
    precision: str = "fp32",
    timeout_s: float = 120.0,
    sample: int | None = None,
    seed: int = 0,
    benchmark_binary: Path | None = None,
    retry_failed: bool = False,
    force: bool = False,
    profile: bool = True,
    spread_limit: float = SPREAD_LIMIT,
    progress: Callable[[Progress], None] | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    max_specs: int | None = None,
) -> MeasureResult:
    """Measure ``target`` on ``device`` and store every run; resumable.

    ``target`` is a folder of generated models with ``manifest.jsonl`` (or that file), a
    sampling plan (a shipped plan's name or a plan file), or one ``.tflite`` model (stored as
    a whole-model measurement, with a per-op profile where the device gives one and
    ``profile``). What is measured already on ``device`` with the same settings is skipped
    (a whole model again only with ``force``). Campaigns sharing the database divide the
    models (``lease_s``: see :func:`~tflat.bench.campaign.run_campaign`). A plan of more
    than ``max_specs`` specs (default 10^7) is refused at once. Bad options raise
    :class:`~tflat.errors.TflatError` before anything is generated or measured.
    """
    from tflat.bench import get_runner
    from tflat.store import open_store
    from tflat.store.measurement import RunSettings

    path = Path(target)
    # Any file that is neither a plan (.toml) nor a manifest is taken for a model, so a text
    # file gets "not a .tflite model" rather than a TOML parse error.
    is_model = path.is_file() and path.suffix.lower() not in (".toml", ".jsonl")
    if is_model:
        from tflat.model import read_model

        read_model(path)  # bad input fails before any device or database is touched
    options, threads = _runner_options(device, threads, delegate, precision, benchmark_binary)
    settings = RunSettings(
        delegate=delegate or ("gpu" if device.startswith("android:") else "xnnpack"),  # type: ignore[arg-type]
        threads=threads,
        precision=precision,  # type: ignore[arg-type]
        warmup=warmup,
        repeats=repeats,
        timeout_s=timeout_s,
    )
    # Unknown devices fail before a plan's models are generated. A runner holds nothing until
    # it first measures, so one not entered below needs no closing.
    runner = get_runner(device, **options)
    items = None if is_model else bench_items(target, sample, seed, max_specs)
    store = open_store(db_url)
    try:
        seed_reference(runner, store)
        with runner:
            if is_model:
                model = bench_model(store, runner, path, settings, profile=profile,
                                    replace=force, spread_limit=spread_limit)  # fmt: skip
                return MeasureResult(store.url, model=model)
            assert items is not None
            campaign = run_campaign(
                store, runner, items, settings, progress=progress,
                retry_failed=retry_failed, spread_limit=spread_limit, lease_s=lease_s,
            )  # fmt: skip
            return MeasureResult(store.url, campaign=campaign)
    finally:
        store.close()


def _runner_options(
    device: str,
    threads: int | None,
    delegate: str | None,
    precision: str,
    benchmark_binary: Path | None,
) -> tuple[dict[str, Any], int]:
    """The runner's options and the thread count, or a one-line error for what the device
    cannot do."""
    options: dict[str, Any] = {}
    if device.startswith("android:"):
        if benchmark_binary is None:
            raise TflatError(
                "android devices need --benchmark-binary PATH (TFLite's benchmark_model)"
            )
        options["benchmark_binary"] = benchmark_binary
        return options, threads or 1
    # host-cpu-tN means N threads unless threads says otherwise (get_runner checks)
    variant = re.fullmatch(r"host-cpu-t(\d+)", device)
    if threads is None:
        threads = int(variant.group(1)) if variant else 1
    options["threads"] = threads
    if device.startswith("host-cpu") and (delegate == "gpu" or precision != "fp32"):
        raise TflatError(
            f"{device} measures fp32 with xnnpack or cpu only "
            f"(asked --delegate {delegate or 'xnnpack'} --precision {precision})"
        )
    return options, threads


def seed_reference(runner: Runner, store: Store, device_id: str | None = None) -> None:
    """Give a runner with a speed reference the readings stored for its device, so its
    fast-regime reference is known from the first model (once per runner)."""
    add = getattr(runner, "add_reference_readings", None)
    if add is not None:
        add(store.reference_readings(device_id or runner.device_id))


def bench_items(
    target: str, sample: int | None = None, seed: int = 0, max_specs: int | None = None
) -> list[BenchItem]:
    """The items of a folder of generated models (or its manifest), else of a plan whose
    models are generated once into the user cache folder; ``sample`` of them when given. A
    plan of more than ``max_specs`` specs is refused before any is made."""
    path = Path(target)
    if path.is_dir() or path.name == MANIFEST:
        if path.is_dir() and not (path / MANIFEST).is_file():
            raise TflatError(f"{path}: no {MANIFEST} (generate models with 'tflat generate')")
        return sample_items(read_manifest(path), sample, seed)
    return _items_from_plan(target, sample, seed, max_specs)


def _items_from_plan(
    plan: str, sample: int | None, seed: int, max_specs: int | None
) -> list[BenchItem]:
    from platformdirs import user_cache_dir

    from tflat.plans import generate, load_plan, model_path, shipped_plans
    from tflat.store import SpecRecord

    if not Path(plan).exists() and plan not in shipped_plans():
        raise TflatError(
            f"{plan}: no such file or folder, nor a shipped plan ({', '.join(shipped_plans())})"
        )
    loaded = load_plan(plan)
    expanded = loaded.expand(seed=seed, sample=sample, max_specs=max_specs)
    folder = Path(user_cache_dir("tflat", appauthor=False)) / "generated" / loaded.name
    report = generate(expanded.specs, folder)
    failed = {label for label, _ in report.failed}
    if failed or expanded.invalid:
        log.warning(
            "plan %s: %d invalid specs, %d models could not be built; measuring the rest",
            loaded.name,
            len(expanded.invalid),
            len(failed),
        )
    return [
        BenchItem(folder / model_path(s), SpecRecord(s.spec_hash, s.kind, dict(s.params)))
        for s in expanded.specs
        if s.label not in failed
    ]
