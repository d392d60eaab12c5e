"""The resumable benchmark loop: runner -> store, one committed row per measured model.

Why resumable: a campaign over hundreds of models on a phone takes hours, and phones hang,
adb drops and people press Ctrl-C. Each measurement is committed in its own transaction as
soon as it is taken, and a restarted campaign skips every spec already measured on the same
device with the same runtime settings, so nothing measured is ever lost or measured twice.

Items come from a folder of generated single-op models with ``manifest.jsonl`` (one JSON
object per line: ``file``, ``kind``, ``spec_hash``, ``params``), a lazy stream of models
generated as they are needed (``tflat calibrate``), or a single whole .tflite model. This is
the one measuring loop of tflat: ``tflat bench`` and ``tflat calibrate`` both go through it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tflat.errors import TflatError, read_text
from tflat.store.claims import DEFAULT_LEASE_S, SpecClaims
from tflat.store.records import ModelRecord, RuntimeKey, SpecRecord

if TYPE_CHECKING:
    from tflat.bench.base import Runner
    from tflat.store.db import Store
    from tflat.store.measurement import Measurement, RunSettings

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"

#: A measurement whose relative spread (median - min) / min exceeds this is flagged as too
#: noisy to trust: the runs disagree by more than this fraction of the fastest run.
SPREAD_LIMIT = 0.3
SPREAD_STATISTIC = "(median - min) / min of the timed runs"


@dataclass(frozen=True)
class BenchItem:
    """One single-op model file to measure and the spec it was generated from."""

    path: Path
    spec: SpecRecord


@dataclass(frozen=True)
class Progress:
    """Sent after every item: ``done`` of ``total`` items handled (measured or skipped)."""

    done: int
    total: int
    item: BenchItem | None
    measurement: Measurement | None
    skipped: bool
    #: the minimum normalised to the runner's fast regime, where it times a speed reference
    normalised_ms: float | None = None


@dataclass(frozen=True)
class WideSpread:
    """A measurement whose runs disagree too much to trust (see :data:`SPREAD_STATISTIC`)."""

    label: str
    spread: float
    min_ms: float
    median_ms: float


@dataclass(frozen=True)
class CampaignResult:
    device_id: str
    runtime: RuntimeKey
    total: int
    measured: int
    skipped: int
    failed: int
    wide_spread: tuple[WideSpread, ...]
    #: measurements stored (all of them, or those ``keep`` chose when measuring again)
    stored: int = 0
    #: True when ``stop`` ended the campaign before every item was handled
    stopped: bool = False
    #: measured meanwhile by other campaigns sharing the database (see tflat.store.claims)
    by_others: int = 0
    #: claims taken over from a campaign that stopped without measuring them
    taken_over: int = 0


@dataclass(frozen=True)
class ModelBenchResult:
    device_id: str
    model_key: str
    measured: bool  # False: this model was measured with these settings already (skipped)
    measurement: Measurement | None
    profile_rows: int
    wide_spread: WideSpread | None
    #: the measurement went into the store (always, unless ``keep`` turned it down)
    stored: bool = False
    #: the minimum normalised to the fast regime, and that regime's reference time (ms),
    #: where the runner times a speed reference (:mod:`tflat.bench.speed`)
    normalised_ms: float | None = None
    fast_reference_ms: float | None = None


def relative_spread(samples_ms: Sequence[float]) -> float | None:
    """(median - min) / min of the samples, None when it cannot be computed."""
    if len(samples_ms) < 2:
        return None
    low = min(samples_ms)
    if low <= 0:
        return None
    return (statistics.median(samples_ms) - low) / low


def read_manifest(folder: Path) -> list[BenchItem]:
    """The items of a folder of generated models (or of a manifest.jsonl file itself)."""
    path = folder / MANIFEST if folder.is_dir() else folder
    base = path.parent
    lines = read_text(path, "a manifest").splitlines()
    items: list[BenchItem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            spec = SpecRecord(str(row["spec_hash"]), str(row["kind"]), dict(row["params"]))
            file = base / str(row["file"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TflatError(f"{path}:{number}: not a manifest row ({exc})") from exc
        items.append(BenchItem(file, spec))
    if not items:
        raise TflatError(f"{path}: no models listed")
    return items


def sample_items(items: Sequence[BenchItem], n: int | None, seed: int = 0) -> list[BenchItem]:
    """``n`` items drawn without replacement with ``seed`` (all of them when n is None)."""
    unique = list({it.spec.spec_hash: it for it in items}.values())
    if n is None or n >= len(unique):
        return unique
    if n < 1:
        raise TflatError(f"--sample must be at least 1, got {n}")
    picked = sorted(random.Random(seed).sample(range(len(unique)), n))
    return [unique[i] for i in picked]


def runtime_key(runner: Runner, settings: RunSettings) -> RuntimeKey:
    info = runner.runtime_info()
    return RuntimeKey(
        runtime=info.runtime,
        version=info.version,
        delegate=settings.delegate,
        precision=settings.precision,
        threads=settings.threads,
    )


def run_campaign(
    store: Store,
    runner: Runner,
    items: Iterable[BenchItem],
    settings: RunSettings,
    *,
    progress: Callable[[Progress], None] | None = None,
    retry_failed: bool = False,
    spread_limit: float = SPREAD_LIMIT,
    device_id: str | None = None,
    stop: Callable[[], bool] | None = None,
    keep: Callable[[BenchItem, Measurement], bool] | None = None,
    lease_s: float = DEFAULT_LEASE_S,
) -> CampaignResult:
    """Measure every item not measured yet on this device with these settings.

    Each measurement is committed on its own as soon as it is taken. Failed, crashed or hung
    models are stored as failures (and skipped on resume unless ``retry_failed``). A
    :class:`~tflat.errors.DeviceError` from the runner stops the campaign; what was measured
    before it stays stored.

    ``items`` may be a list (counted and its specs stored up front, so progress knows the
    total) or a lazy iterable, read one item at a time (models generated as they are needed).
    ``stop()`` is asked before each measurement; True ends the campaign there. ``device_id``
    stores under another id than the runner's (a calibrated variant such as host-cpu-t4).
    With ``keep``, every item is measured again, measured or not, and the new measurement
    replaces the stored one where ``keep(item, measurement)`` says so (a re-check that keeps
    the lower of two readings).

    Campaigns sharing the database claim each item before measuring it (not with ``keep``),
    so none is measured twice; ``lease_s`` is how long a claim outlives a campaign that died.
    Without ``stop`` the campaign waits at the end for the items others hold, so on return
    every item is measured; with it, it leaves them to their holders.
    """
    started = datetime.now(UTC)
    device_id = device_id or runner.device_id
    store.add_device(dataclasses.replace(runner.device_info(), device_id=device_id))
    key = runtime_key(runner, settings)
    done_hashes: set[str] = set()
    if keep is None:
        done_hashes = store.measured_spec_hashes(device_id, key, include_failed=not retry_failed)
    todo: Iterable[BenchItem] = _unique(items)
    total = skipped = 0
    if isinstance(items, Sequence):
        todo = list(todo)
        total = len(todo)
        skipped = sum(1 for it in todo if it.spec.spec_hash in done_hashes)
        store.add_specs(it.spec for it in todo)
        log.info("%s: %d items, %d measured already", device_id, total, skipped)
        if progress is not None and skipped:
            progress(Progress(skipped, total, None, None, True))
    counted = isinstance(items, Sequence)
    measured = failed = stored = 0
    wide: list[WideSpread] = []
    done = skipped
    stopped = False

    def by_other(item: BenchItem) -> None:  # measured meanwhile by another campaign
        nonlocal done, total
        done += 1
        total += 0 if counted else 1
        if progress is not None:
            progress(Progress(done, total, item, None, True))

    def to_claim(item: BenchItem) -> bool:
        return keep is None and item.spec.spec_hash not in done_hashes

    failed_before = started if retry_failed else None
    claims = SpecClaims(store, device_id, key, lease_s=lease_s, failed_before=failed_before)
    with claims:
        for item in claims.take(todo, _spec_hash, on_done=by_other, claim=to_claim,
                                wait=stop is None):  # fmt: skip
            if not counted:
                total += 1
            if item.spec.spec_hash in done_hashes:
                if not counted:
                    skipped += 1
                    done += 1
                continue
            if stop is not None and stop():
                stopped = True
                break
            m = runner.measure(item.path, settings)
            if keep is None or keep(item, m):
                store.add_measurement(device_id, key, item.spec, m, model_file=str(item.path),
                                      replace=retry_failed or keep is not None)  # fmt: skip
                stored += 1
            measured += 1
            if m.status != "ok":
                failed += 1  # the result counts them and the caller reports them once
                log.info("%s %s: %s: %s", device_id, item.spec.spec_hash, m.status, m.error)
            else:
                flag = _check_spread(f"{item.spec.kind}[{item.spec.spec_hash}]", m, spread_limit)
                if flag is not None:
                    wide.append(flag)
            done += 1
            if progress is not None:
                progress(Progress(done, total, item, m, False, normalised(runner, m)[0]))
    if wide:
        # info, not warning: the result carries them and the caller reports them once
        log.info(
            "%s: %d of %d measurements spread over %.0f %% by %s: too noisy to trust",
            device_id,
            len(wide),
            measured - failed,
            100 * spread_limit,
            SPREAD_STATISTIC,
        )
    return CampaignResult(device_id, key, total, measured, skipped, failed, tuple(wide),
                          stored, stopped, claims.by_others, claims.taken_over)  # fmt: skip


def _spec_hash(item: BenchItem) -> str:
    return item.spec.spec_hash


def _unique(items: Iterable[BenchItem]) -> Iterator[BenchItem]:
    """Each spec once, first occurrence kept, read lazily."""
    seen: set[str] = set()
    for it in items:
        if it.spec.spec_hash not in seen:
            seen.add(it.spec.spec_hash)
            yield it


def bench_model(
    store: Store,
    runner: Runner,
    path: Path,
    settings: RunSettings,
    *,
    profile: bool = True,
    replace: bool = False,
    spread_limit: float = SPREAD_LIMIT,
    record: ModelRecord | None = None,
    source: str = "bench",
    device_id: str | None = None,
    keep: Callable[[Measurement], bool] | None = None,
) -> ModelBenchResult:
    """Measure a whole .tflite model (with a per-op profile where the runner gives one).

    ``record`` names the model (default: read from the file, keyed by its SHA-256). With
    ``keep``, the model is measured even when measured before, and the measurement replaces
    the stored one only where ``keep(measurement)`` says so (a calibration's best-of-rounds
    networks, its speed references).
    """
    model = record if record is not None else model_record(path)
    device_id = device_id or runner.device_id
    store.add_device(dataclasses.replace(runner.device_info(), device_id=device_id))
    key = runtime_key(runner, settings)
    again = replace or keep is not None
    if not again and store.has_model_measurement(model.key, device_id, key):
        log.info("%s on %s: measured already with these settings", path, device_id)
        return ModelBenchResult(device_id, model.key, False, None, 0, None)
    m = runner.measure(path, settings, profile=profile)
    stored = keep is None or keep(m)
    if stored:
        store.add_model_measurement(model, device_id, key, m, source=source, replace=again)
    if m.status != "ok":
        log.warning("%s on %s: %s: %s", path, device_id, m.status, m.error)
    flag = _check_spread(model.name, m, spread_limit) if m.ok else None
    if flag is not None:
        log.info(  # the result carries it; the caller reports it
            "%s on %s: runs spread %.0f %% by %s: too noisy to trust",
            path,
            device_id,
            100 * flag.spread,
            SPREAD_STATISTIC,
        )
    norm, fast = normalised(runner, m)
    return ModelBenchResult(device_id, model.key, True, m, len(m.op_profile), flag, stored,
                            norm, fast)  # fmt: skip


def normalised(runner: Runner, m: Measurement) -> tuple[float | None, float | None]:
    """(minimum normalised to the fast regime, the fast regime's reference ms) where the
    runner times a speed reference, else (None, None). The normalised figure is the minimum
    divided by how much slower than its fast regime the machine was, the statistic
    calibration trains on and checks with."""
    from tflat.bench.speed import normalised_ms

    fast = getattr(runner, "fast_reference_ms", None)
    if m.reference_ms is None or m.min_ms is None or not isinstance(fast, float):
        return None, None
    return normalised_ms(m.min_ms, m.reference_ms, fast), fast


def model_record(path: Path, **fields: Any) -> ModelRecord:
    """A whole model as the store keeps it: keyed by its file's SHA-256 unless ``fields``
    say otherwise (``key``, ``name``, ``family``, ``source``)."""
    from tflat.model import read_model

    graph = read_model(path)
    data = path.read_bytes()
    base = ModelRecord(
        key=hashlib.sha256(data).hexdigest(),
        name=graph.name,
        source="bench",
        path=str(path.resolve()),
        flops=sum(op.flops for op in graph.all_ops),
        size_bytes=len(data),
        n_ops=len(graph.all_ops),
    )
    return dataclasses.replace(base, **fields)


def _check_spread(label: str, m: Measurement, limit: float) -> WideSpread | None:
    spread = relative_spread(m.samples_ms)
    if spread is None or spread <= limit:
        return None
    low, mid = min(m.samples_ms), statistics.median(m.samples_ms)
    log.info(
        "%s: runs spread %.0f %% ((median %.4g ms - min %.4g ms) / min), over %.0f %%: "
        "too noisy to trust",
        label,
        100 * spread,
        mid,
        low,
        100 * limit,
    )
    return WideSpread(label, spread, low, mid)
