"""How plans choose op specs: grids, seeded random ranges, jitter around known specs.

All sampling takes a numpy ``Generator`` so a plan with a seed always yields the same specs.
Invalid draws (a kernel larger than its input, groups that do not divide channels) are
redrawn, so a random section yields the count it asks for or says why it cannot.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tflat.errors import SpecError
from tflat.model.spec import OpSpec

log = logging.getLogger(__name__)

_LIST_PARAMS = {"cins", "shape"}
#: Parameters that jitter scales; the rest (kernel, stride, groups, flags) stay as they were.
_SIZES = ("input_h", "input_w", "output_h", "output_w", "batch")
_CHANNELS = ("cin", "cout")


def grid(kind: str, axes: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The cartesian product of the list-valued entries; scalars are fixed.

    A list parameter (``cins``, ``shape``) is a set of choices only when written as a list
    of lists.
    """
    keys = list(axes)
    choices = [_choices(key, value) for key, value in axes.items()]
    for combo in itertools.product(*choices):
        yield dict(zip(keys, combo, strict=True))


def grid_size(axes: Mapping[str, Any]) -> int:
    """How many parameter sets :func:`grid` yields, without making any."""
    return math.prod(len(_choices(key, value)) for key, value in axes.items())


def _choices(key: str, value: Any) -> list[Any]:
    is_choice = isinstance(value, list) and (
        key not in _LIST_PARAMS or (bool(value) and isinstance(value[0], list))
    )
    return value if is_choice else [value]


#: The largest bound of a ``{min, max}`` range (no op has a dimension near it).
_MAX_BOUND = 2**31


def check_axes(axes: Mapping[str, Any]) -> None:
    """Refuse, with SpecError, axes a random section cannot draw from: an empty list of
    choices, a range without whole-number bounds in ``0..2^31`` or with unknown keys, a
    ``same_as`` with anything beside it."""
    for key, value in axes.items():
        if isinstance(value, Mapping):
            if "same_as" in value:
                if set(value) != {"same_as"} or not isinstance(value["same_as"], str):
                    raise SpecError(f'{key}: {{same_as = "name"}} takes a name and nothing else')
                continue
            unknown = sorted(str(k) for k in set(value) - {"min", "max", "log", "step"})
            if unknown:
                raise SpecError(f"range of {key}: unknown key(s) {', '.join(unknown)}")
            for bound, default in (("min", None), ("max", None), ("step", 1)):
                v = value.get(bound, default)
                if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _MAX_BOUND:
                    raise SpecError(
                        f"range of {key}: {bound} must be a whole number in 0..{_MAX_BOUND}, "
                        f"not {v!r}"
                    )
            if value.get("step", 1) < 1 or not isinstance(value.get("log", False), bool):
                raise SpecError(f"range of {key}: step must be >= 1 and log true or false")
        elif isinstance(value, list) and not _choices(key, value):
            raise SpecError(f"{key}: an empty list of choices")


def _range_value(key: str, spec: Mapping[str, Any], u: float) -> int:
    lo, hi = int(spec["min"]), int(spec["max"])
    if lo > hi or lo < 0 or (spec.get("log") and lo < 1):
        raise SpecError(f"range of {key}: min {lo} / max {hi} invalid")
    if spec.get("log"):
        value = math.exp(math.log(lo) + u * (math.log(hi + 1) - math.log(lo)))
    else:
        value = lo + u * (hi + 1 - lo)
    step = int(spec.get("step", 1))
    out = int(math.floor(value / step) * step)
    return min(max(out, max(lo, step) if step > 1 else lo), hi)


def _draw(axes: Mapping[str, Any], us: Mapping[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ties: dict[str, str] = {}
    for key, value in axes.items():
        if isinstance(value, Mapping) and "same_as" in value:
            ties[key] = str(value["same_as"])
        elif isinstance(value, Mapping):
            out[key] = _range_value(key, value, us[key])
        else:
            choices = _choices(key, value)
            out[key] = choices[min(int(us[key] * len(choices)), len(choices) - 1)]
    for key, other in ties.items():
        if other not in out:
            raise SpecError(f"{key} = {{same_as = {other!r}}}: no such parameter")
        out[key] = out[other]
    return out


def random_specs(
    kind: str, axes: Mapping[str, Any], count: int, rng: np.random.Generator, method: str = "lhs"
) -> list[OpSpec]:
    """``count`` valid specs of ``kind`` with parameters drawn from ``axes``.

    ``axes`` values: a scalar (fixed), a list (a choice), ``{min, max, log, step}`` (an
    integer range; ``log = true`` samples log-uniformly) or ``{same_as = "other"}``.
    ``method = "lhs"`` stratifies every drawn parameter (Latin hypercube); ``"uniform"``
    draws independently. Invalid draws are redrawn independently.
    """
    if method not in ("lhs", "uniform"):
        raise SpecError(f"random method {method!r}: expected lhs or uniform")
    check_axes(axes)
    drawn = [k for k, v in axes.items() if not (isinstance(v, Mapping) and "same_as" in v)]
    if method == "lhs" and count > 0:
        strata = {k: (rng.permutation(count) + rng.random(count)) / count for k in drawn}
    else:
        strata = {k: rng.random(count) for k in drawn}
    specs: dict[str, OpSpec] = {}
    last_error = ""
    for i in range(count):
        try:
            spec = OpSpec(kind, _draw(axes, {k: float(v[i]) for k, v in strata.items()}))
            specs.setdefault(spec.spec_hash, spec)
        except SpecError as exc:
            last_error = str(exc)
    attempts = 0
    while len(specs) < count and attempts < 50 * max(count, 1):
        attempts += 1
        try:
            spec = OpSpec(kind, _draw(axes, {k: float(rng.random()) for k in drawn}))
            specs.setdefault(spec.spec_hash, spec)
        except SpecError as exc:
            last_error = str(exc)
    if len(specs) < count:
        raise SpecError(
            f"random {kind}: only {len(specs)} of {count} distinct valid specs "
            f"(last error: {last_error or 'ranges too small'})"
        )
    return list(specs.values())


def _scale(value: int, factor: float, multiple: int = 1) -> int:
    return max(multiple, round(value * factor / multiple) * multiple)


def jitter(spec: OpSpec, rng: np.random.Generator, amount: float = 0.25) -> OpSpec:
    """A neighbour of ``spec``: sizes and channels scaled by factors drawn log-uniformly in
    ``[1/(1+amount), 1+amount]``; kernel, stride, groups and flags kept. Square inputs stay
    square. Raises :class:`SpecError` if the neighbour is invalid.
    """
    p = dict(spec.params)
    span = math.log1p(amount)

    def factor() -> float:
        return math.exp(rng.uniform(-span, span))

    f_h = factor()
    f_w = f_h if p.get("input_h") == p.get("input_w") else factor()
    for key, f in (("input_h", f_h), ("input_w", f_w), ("output_h", f_h), ("output_w", f_w)):
        if key in p:
            p[key] = _scale(p[key], f)
    if "batch" in p and p["batch"] > 1:
        p["batch"] = _scale(p["batch"], factor())
    groups = int(p.get("groups", 1))
    for key in _CHANNELS:
        if key in p:
            p[key] = _scale(p[key], factor(), groups)
    if "cins" in p:
        p["cins"] = [_scale(c, factor()) for c in p["cins"]]
    if spec.kind == "RESHAPE":
        p["shape"] = [1, p["input_h"] * p["input_w"] * p["cin"]]
    return OpSpec(spec.kind, p)


def neighbours(
    spec: OpSpec, count: int, rng: np.random.Generator, amount: float = 0.25
) -> list[OpSpec]:
    """Up to ``count`` distinct valid jittered neighbours of ``spec`` (never ``spec``)."""
    out: dict[str, OpSpec] = {}
    for _ in range(20 * max(count, 1)):
        if len(out) >= count:
            break
        try:
            n = jitter(spec, rng, amount)
        except SpecError:
            continue
        if n.spec_hash != spec.spec_hash:
            out.setdefault(n.spec_hash, n)
    return list(out.values())


def adaptive_specs(
    errors: Sequence[tuple[OpSpec, float]],
    count: int,
    *,
    worst: int | None = None,
    amount: float = 0.25,
    seed: int = 0,
) -> list[OpSpec]:
    """Sample ``count`` new specs around the specs a predictor got most wrong (nn-Meter's
    error-driven sampling).

    ``errors`` pairs each measured spec with its prediction error (any unit; the absolute
    value ranks). The ``worst`` specs (default: the worst tenth, at least one) get neighbours
    in proportion to their error. Specs already in ``errors`` are never returned.
    """
    if count <= 0 or not errors:
        return []
    rng = np.random.default_rng(seed)
    ranked = sorted(errors, key=lambda pair: -abs(pair[1]))
    k = worst if worst is not None else max(1, len(ranked) // 10)
    top = ranked[: max(1, k)]
    weights = np.array([abs(e) for _, e in top], dtype=float)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(top), 1 / len(top))
    quota = np.floor(weights * count).astype(int)
    for i in np.argsort(-weights)[: count - int(quota.sum())]:
        quota[i] += 1
    known = {s.spec_hash for s, _ in errors}
    out: dict[str, OpSpec] = {}
    for (spec, _), n in zip(top, quota, strict=True):
        for cand in neighbours(spec, int(n), rng, amount):
            if cand.spec_hash not in known:
                out.setdefault(cand.spec_hash, cand)
    return list(out.values())
