"""A speed reference timed around every host-cpu measurement, and what it is used for.

Why: this machine (a KVM guest) switches every few seconds between a fast and a slow regime in
which every model runs x1.25-1.6 slower. A minimum of 30 runs of a 10 µs op spans well under a
millisecond, so it is taken entirely inside whichever regime it fell in. The host-cpu worker
therefore keeps a small fixed model loaded (:data:`REFERENCE_SPEC`) and times it (minimum of
:data:`REFERENCE_RUNS` invokes) right before and right after each model's timed runs; the lower
of the two is the measurement's ``reference_ms``.

What benchmarks/speed_regimes.py measured (results/speed_regimes.md): compute-bound ops
(conv, 1x1 conv, depthwise, pooling, small fully connected) slow down like the reference
(slow/fast ratio 0.93-0.98 of the reference's); tiny ops dominated by the invoke overhead
slow down more (x1.3 of it), memory-bound ones (a big ADD, a 16 MB fully connected) not alike
at all. Normalising alone is therefore not enough, so the protocol combines two things:

1. *Gate*: before a model's timed runs the worker waits (bounded) until the reference says the
   machine is in the fast regime, and retries a model whose bracketing reference says the
   regime flipped during its runs, or whose runs got less than :data:`MIN_CPU_SHARE` of the
   CPU (another process on the core, which a 50 µs reference slips past; bounded attempts).
   Most measurements are then fast-regime measurements, for every kind of op.
2. *Normalise*: what remains (a measurement taken slow after all, and the slow drift within
   the fast regime) is divided out: ``normalised = min_ms / (reference_ms / fast_ms)``, with
   ``fast_ms`` the reference's fast-regime time (:func:`fast_reference`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

#: The reference model: a compute-bound 3x3 convolution, 14x14x32 -> 32 (3.6 MFLOPs, about
#: 50 µs on one thread here). Compute-bound because most of a model's time is convolutions,
#: which slow down like it; this small because it is timed twice per measurement (5 invokes
#: each, ~0.5 ms in all), and a 4x bigger one (28x28x32) tracked the regime no better.
REFERENCE_SPEC: tuple[str, dict[str, Any]] = (
    "CONV_2D",
    {"input_h": 14, "input_w": 14, "cin": 32, "cout": 32, "kernel_h": 3, "kernel_w": 3},
)
#: Invokes per reference reading (its minimum is the reading).
REFERENCE_RUNS = 5
#: A reading above this multiple of the fast-regime reference means the slow regime (the two
#: regimes are x1.25-1.6 apart; the fast regime's own readings stay within a few %).
FAST_CUT = 1.15
#: How long the worker waits for the fast regime before measuring anyway (seconds).
WAIT_FAST_S = 1.5
#: The same for calibration, which needs thousands of labels more than each one exact: a
#: 1-minute calibration under load measured 197 models with 1.5 s waits against 753 without
#: the reference (the seed phase: 108 against 430 models in its first 15 s); its labels are
#: normalised and the slowest re-measured instead. With this wait the same run measured 571
#: (networks and re-measured specs still wait the full WAIT_FAST_S).
CALIBRATE_WAIT_FAST_S = 0.2
#: Attempts at a model whose bracketing reference says the machine was slow.
MAX_ATTEMPTS = 2
#: After a model that found no fast regime in all its attempts, this many models are
#: measured without waiting (a long slow stretch; they are normalised and re-measured later);
#: the pause doubles after each failed wait, up to BACKOFF_MAX_MODELS, and is reset by a wait
#: that succeeds. Why: with a fixed 10-model pause a fresh 1-minute calibration under load
#: (average 4.6-5.1) measured 278 models against 620 without the reference, the waits
#: (2 x 1.5 s per pause) eating half the time. When the machine is fast the reference adds
#: ~1 ms a model (40 single-op models: 0.07 s without, 0.12 s with).
BACKOFF_MODELS = 30
BACKOFF_MAX_MODELS = 480
#: A model's timed runs during which the worker had the CPU less than this share of the
#: wall time were disturbed by another process on the core (tried again, like a slow one).
MIN_CPU_SHARE = 0.9
#: A correction is never larger than this (a reading this slow is something else: a stall).
MAX_FACTOR = 2.0
#: The low quantile of many readings taken as the fast-regime reference (robust to a freak
#: low reading, unlike the minimum).
FAST_QUANTILE = 0.05


def reference_spec() -> Any:
    """The reference as an :class:`~tflat.model.spec.OpSpec`."""
    from tflat.model.spec import OpSpec

    return OpSpec(*REFERENCE_SPEC)


def reference_model(folder: Path | None = None) -> Path:
    """The reference .tflite file, written once (into ``folder`` or the user's cache)."""
    from tflat.model.writer import build_spec

    spec = reference_spec()
    if folder is None:
        from platformdirs import user_cache_dir

        folder = Path(user_cache_dir("tflat", appauthor=False)) / "reference"
    path = Path(folder) / f"speed-reference-{spec.spec_hash}.tflite"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
        tmp.write_bytes(build_spec(spec))
        tmp.replace(path)
    return path


def fast_reference(readings: Iterable[float | None]) -> float | None:
    """The fast-regime reference time (ms) from many readings: their 5th percentile."""
    values = sorted(float(v) for v in readings if v is not None and v > 0 and math.isfinite(v))
    if not values:
        return None
    pos = FAST_QUANTILE * (len(values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def slowdown(reference_ms: float | None, fast_ms: float | None) -> float:
    """How much slower than its fast regime the machine was: reference / fast, in [1, 2].

    Never below 1: a reading under the fast reference is that reference's own noise, and a
    correction upwards would turn a lucky minimum into a too-high label. 1 without a reading.
    """
    if reference_ms is None or fast_ms is None or not fast_ms > 0 or not reference_ms > 0:
        return 1.0
    return float(min(max(reference_ms / fast_ms, 1.0), MAX_FACTOR))


def normalised_ms(min_ms: float, reference_ms: float | None, fast_ms: float | None) -> float:
    """``min_ms`` as it would have been in the fast regime: divided by :func:`slowdown`."""
    return float(min_ms) / slowdown(reference_ms, fast_ms)


def is_fast(reference_ms: float | None, fast_ms: float | None) -> bool:
    """Whether a reading says the machine was in the fast regime (True without a reading)."""
    return slowdown(reference_ms, fast_ms) <= FAST_CUT


def spread_pct(values: Sequence[float]) -> float:
    """(max - min) / min in % (0 for fewer than two values)."""
    if len(values) < 2 or min(values) <= 0:
        return 0.0
    return 100.0 * (max(values) - min(values)) / min(values)
