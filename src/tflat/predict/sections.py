"""The figures of a bundle section (rates, bands), read and checked one way for every section.

A pricing section (``pricing.analytic``, ``pricing.cpu``, ``pricing.edges``) or the training
range's ``extrapolation`` is plain JSON a user may edit; a problem in it is a one-line
:class:`~tflat.errors.PredictorError` naming the section and the figure, never a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from tflat.errors import PredictorError

Band = tuple[float, float]
#: A factor of two each way: the band of a figure nothing calibrated.
DEFAULT_BAND: Band = (math.log(0.5), math.log(2.0))
#: Largest rate (ms per unit of work) and largest |log ratio| of a band a section may hold:
#: beyond them a price of a real graph could overflow to infinity (a tampered bundle).
MAX_RATE = 1e6
MAX_LOG_RATIO = 50.0


@contextmanager
def reading(what: str) -> Iterator[None]:
    """Turn a missing or mistyped figure of section ``what`` into a PredictorError."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise PredictorError(f"{what} section is malformed: {exc!r}") from exc


def band_of(
    section: Mapping[str, Any], key: str = "log_interval", default: Band | None = None
) -> Band:
    """A ``[lo, hi]`` log band of ``section`` (``default`` when absent and given)."""
    raw = section[key] if default is None else section.get(key, default)
    lo, hi = (float(x) for x in raw)
    return lo, hi


def check_rates(what: str, obj: Any, names: Sequence[str], positive: Sequence[str] = ()) -> None:
    """Every rate finite, in [0, MAX_RATE]; those of ``positive`` > 0."""
    for name in names:
        v = getattr(obj, name)
        if not (math.isfinite(v) and 0 <= v <= MAX_RATE):
            raise PredictorError(f"{what}: {name} must be finite and in [0, {MAX_RATE:g}], not {v}")
        if name in positive and v <= 0:
            raise PredictorError(f"{what}: {name} must be > 0")


def check_band(what: str, name: str, band: Band) -> None:
    """A log band finite and holding 0: a price is never shifted by its interval."""
    lo, hi = band
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= 0 <= hi):
        raise PredictorError(f"{what}: {name} must hold 0, not {lo}, {hi}")
    if max(-lo, hi) > MAX_LOG_RATIO:
        raise PredictorError(f"{what}: {name} wider than exp(±{MAX_LOG_RATIO:g})")


def borrowed_of(section: Mapping[str, Any]) -> tuple[str, ...]:
    """The phones a section's figures were borrowed from (``borrowed_from``; none: its own)."""
    raw = section.get("borrowed_from", ())
    if isinstance(raw, str) or not all(isinstance(d, str) for d in raw):
        raise TypeError(f"borrowed_from must be a list of device ids, not {raw!r}")
    return tuple(raw)


def borrowed_dict(borrowed_from: Sequence[str]) -> dict[str, Any]:
    """``borrowed_from`` as a section holds it (absent when the figures are the phone's own)."""
    return {"borrowed_from": list(borrowed_from)} if borrowed_from else {}


def borrowed_note(borrowed_from: Sequence[str], what: str) -> str:
    """What a price's note adds when its rates were borrowed from other phones."""
    if not borrowed_from:
        return ""
    return (
        f"; {what} rates borrowed from source phones ({', '.join(borrowed_from)}), "
        "not measured on this phone"
    )
