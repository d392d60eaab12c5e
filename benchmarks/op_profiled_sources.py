"""Ten op-profiled models on a new phone: can the five other phones' predictors add to them?

Run: python benchmarks/op_profiled_sources.py [--cache DIR] [--devices pixel4,...]
Writes benchmarks/results/op_profiled_sources.json and .md.

The harness of benchmarks/device_transfer.py (same ten models, same five family folds of the
69 scored models, the same per-fold source predictors trained without each fold's scored
models, ``--cache`` shared with it); the left-out phone's kernel rows and whole-model times of
the ten are all it sees of that phone. Each way below trains a kernel model on the ten's
kernel rows, takes its out-of-fold kernel times over the ten's families, fits the whole-model
term on them as ``tflat train`` does (:func:`tflat.predict.whole.fit_whole_model`), and prices
each scored model:

- ``today``: ``tflat train`` on the ten (:func:`tflat.predict.train.fit_kernels`); the same
  figures as device_transfer.py's op-profiled column;
- ``stack`` (a): the sources as the base the phone's rows correct: kernel = S x exp(b_kind +
  trees), S the geometric mean of the five sources' prices of the kernel, b_kind the mean log
  residual of the kind shrunk toward that of all kinds (``--shrink`` pseudo-kernels), trees
  on what is left;
- ``extra`` (b): today's kernel model with log2 S as one more tree feature;
- ``src_term`` (c): today's kernels; the whole-model term ``a x kernel sum + b x R + c``
  fitted on the ten's times, R the geometric mean of the sources' own whole-model price of
  what is not proportional to their kernel sum (overhead, unlisted kernels, per-kernel costs);
- ``blend``: the geometric mean of today's and the stacked kernel times;
- ``stack@today``, ``blend@today``: those kernels under today's whole-model term (fitted on
  today's out-of-fold kernels);
- ``distilled``: ``blend@today`` as a bundle could hold it (the sources are not there when a
  bundle prices): the blend's kernel prices distilled into one kernel model over the kernels
  of the fold's training models (USC structure) and the ten.

Figures: share of scored models within ±10 % and MAPE per phone.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import device_transfer as harness
from tflat.datasets.usc import DEVICES, load_usc
from tflat.devices.structure import parts_from_usc
from tflat.devices.transfer import SourceMix
from tflat.predict.features import KernelShape, feature_matrix
from tflat.predict.folds import group_folds
from tflat.predict.predictor import proxy_shape
from tflat.predict.train import (
    GBDT_PARAMS,
    ModelParts,
    _rows,
    fit_kernels,
    parts_features,
    whole_term_on,
)
from tflat.predict.trees import train_booster
from tflat.predict.usc import GPU_CONFIG, device_meta
from tflat.predict.whole import WholeModelTerm, nnls_relative

VARIANTS = (
    "today",
    "stack",
    "extra",
    "src_term",
    "blend",
    "stack@today",
    "blend@today",
    "distilled",
)
Kernels = Callable[[Sequence[KernelShape]], np.ndarray]


class Today:
    def __init__(self, mix: SourceMix, shapes: Sequence[KernelShape], y: np.ndarray) -> None:
        self.km = fit_kernels(shapes, y, dict(GBDT_PARAMS), False)

    def __call__(self, shapes: Sequence[KernelShape]) -> np.ndarray:
        return self.km.predict(shapes)


class Stack:
    """S x exp(b_kind) as the base, trees on the log residual of the phone's rows."""

    shrink = 20.0

    def __init__(self, mix: SourceMix, shapes: Sequence[KernelShape], y: np.ndarray) -> None:
        self.mix = mix
        r = np.log(y / mix.mixed_ms(shapes))
        kinds = np.array([s.kind for s in shapes])
        self.kinds = tuple(sorted(set(kinds)))
        self.all = float(np.mean(r))
        n = {k: float((kinds == k).sum()) for k in self.kinds}
        self.b = {
            k: float((r[kinds == k].sum() + self.shrink * self.all) / (n[k] + self.shrink))
            for k in self.kinds
        }
        base = self._base(shapes)
        self.booster = train_booster(self._x(shapes, base), np.log(y / base), dict(GBDT_PARAMS))

    def _base(self, shapes: Sequence[KernelShape]) -> np.ndarray:
        b = np.array([self.b.get(s.kind, self.all) for s in shapes])
        return np.asarray(self.mix.mixed_ms(shapes) * np.exp(b))

    def _x(self, shapes: Sequence[KernelShape], base: np.ndarray) -> np.ndarray:
        return feature_matrix([proxy_shape(s, self.kinds) for s in shapes], self.kinds, base)

    def __call__(self, shapes: Sequence[KernelShape]) -> np.ndarray:
        base = self._base(shapes)
        return np.asarray(base * np.exp(self.booster.predict(self._x(shapes, base))))


class Extra:
    """Today's analytic base; the trees also read log2 of the sources' price."""

    def __init__(self, mix: SourceMix, shapes: Sequence[KernelShape], y: np.ndarray) -> None:
        self.mix = mix
        self.km = fit_kernels(shapes, y, dict(GBDT_PARAMS), False)
        base = self._base(shapes)
        self.booster = train_booster(self._x(shapes, base), np.log(y / base), dict(GBDT_PARAMS))

    def _base(self, shapes: Sequence[KernelShape]) -> np.ndarray:
        from tflat.predict.features import analytic_ms

        return analytic_ms(self.km.analytic, [proxy_shape(s, self.km.kinds) for s in shapes])

    def _x(self, shapes: Sequence[KernelShape], base: np.ndarray) -> np.ndarray:
        px = [proxy_shape(s, self.km.kinds) for s in shapes]
        own = feature_matrix(px, self.km.kinds, base)
        return np.column_stack([own, np.log2(self.mix.mixed_ms(shapes))])

    def __call__(self, shapes: Sequence[KernelShape]) -> np.ndarray:
        base = self._base(shapes)
        return np.asarray(base * np.exp(self.booster.predict(self._x(shapes, base))))


class Blend:
    def __init__(self, mix: SourceMix, shapes: Sequence[KernelShape], y: np.ndarray) -> None:
        self.a, self.b = Today(mix, shapes, y), Stack(mix, shapes, y)

    def __call__(self, shapes: Sequence[KernelShape]) -> np.ndarray:
        return np.asarray(np.sqrt(self.a(shapes) * self.b(shapes)))


KERNELS: dict[str, Callable[[SourceMix, Sequence[KernelShape], np.ndarray], Kernels]] = {
    "today": Today,
    "stack": Stack,
    "extra": Extra,
    "blend": Blend,
    "src_term": Today,
}


def source_rest_ms(mix: SourceMix, mp: ModelParts) -> float:
    """Geometric mean over the sources of their whole-model price of ``mp`` less the part
    proportional to its kernel sum."""
    out = []
    for p in mix.sources:
        raw = p.predict_shapes(mp.shapes)
        rest = p.whole.total(parts_features(mp, raw)) - p.whole.coef.get(
            "listed_kernel_sum_ms", 0.0
        ) * float(raw.sum())
        out.append(max(rest, 1e-3))
    return float(np.exp(np.mean(np.log(out))))


class Fitted:
    """A kernel model and its whole-model term (today's, or ``a x sum + b x R + c``)."""

    def __init__(
        self,
        kernels: Kernels,
        term: WholeModelTerm | None,
        coef: np.ndarray | None,
        mix: SourceMix,
    ) -> None:
        self.kernels, self.term, self.coef, self.mix = kernels, term, coef, mix
        self.kernel_oof_mape_pct = float("nan")

    def total(self, mp: ModelParts) -> float:
        k = self.kernels(mp.shapes)
        if self.term is not None:
            return self.term.total(parts_features(mp, k))
        assert self.coef is not None
        return float(self.coef @ [k.sum(), source_rest_ms(self.mix, mp), 1.0])


def fit(name: str, mix: SourceMix, rows: Any, corpus: Sequence[ModelParts] = ()) -> Fitted:
    if name == "distilled":
        # what a bundle could ship: the blend's kernel prices (it needs the sources at run
        # time) distilled into one kernel model over the kernels of the fold's training
        # models and the ten, under today's whole-model term
        blend, today = fit("blend", mix, rows), fit("today", mix, rows)
        shapes = list(dict.fromkeys([*rows.shapes, *(s for p in corpus for s in p.shapes)]))
        km = fit_kernels(shapes, np.maximum(blend.kernels(shapes), 1e-5), dict(GBDT_PARAMS))
        out = Fitted(km.predict, today.term, None, mix)
        out.kernel_oof_mape_pct = blend.kernel_oof_mape_pct
        return out
    if "@" in name:
        kernels, term = name.split("@")
        out = fit(kernels, mix, rows)
        out.term = fit(term, mix, rows).term
        return out
    build = KERNELS[name]
    y, shapes = rows.y, rows.shapes
    oof = np.full(len(y), np.nan)
    for tr, te in group_folds(rows.family, 4, [s.kind for s in shapes]):
        oof[te] = build(mix, [shapes[i] for i in tr], y[tr])([shapes[i] for i in te])
    final = build(mix, shapes, y)
    oof = np.where(np.isnan(oof), final(shapes), oof)
    if name == "src_term":
        timed = [mp for mp in rows.parts if mp.measured_ms and mp.shapes]
        row_model = np.array(rows.model)
        a = np.array(
            [[oof[row_model == mp.model].sum(), source_rest_ms(mix, mp), 1.0] for mp in timed]
        )
        times = np.array([float(mp.measured_ms or 0.0) for mp in timed])
        out = Fitted(final, None, nnls_relative(a, times), mix)
    else:
        out = Fitted(final, WholeModelTerm.from_bundle(whole_term_on(rows, oof)), None, mix)
    out.kernel_oof_mape_pct = float(np.mean(np.abs(oof / y - 1)) * 100)
    return out


def run_device(t: str, folds: Any, data: Any, variants: Sequence[str]) -> dict[str, Any]:
    _, family = device_meta(t)
    parts = parts_from_usc(data, family, exclude=[t])
    measured = {m.model: m.mean_ms for m in data.models_for(t)}
    ops = [r for r in data.ops_for(t) if r.model in harness.TEN]
    models = [r for r in data.models_for(t, GPU_CONFIG) if r.model in harness.TEN]
    rows = _rows(ops, models, family, "tflite_gpu")
    sources = [d for d in DEVICES if d != t]
    pred: dict[str, dict[str, float]] = {v: {} for v in variants}
    kernel_mape: dict[str, list[float]] = {v: [] for v in variants}
    for f in range(folds.n):
        mix = SourceMix([folds.predictor(d, f) for d in sources])
        for v in variants:
            corpus = [parts[m] for m in folds.all if m not in folds.test(f)]
            fitted = fit(v, mix, rows, corpus)
            kernel_mape[v].append(fitted.kernel_oof_mape_pct)
            for m in folds.test(f):
                pred[v][m] = fitted.total(parts[m])
    scored = folds.scored
    return {
        v: harness.score([measured[m] for m in scored], [pred[v][m] for m in scored])
        | {"kernel_oof_mape_pct": float(np.mean(kernel_mape[v]))}
        for v in variants
    }


def write_md(payload: dict[str, Any], out: Path) -> None:
    res, variants = payload["devices"], payload["variants"]
    lines = [
        "# Ten op-profiled models: do the sources add? (issue 19)",
        "",
        f"Command: `{payload['command'].strip()}` ({payload['seconds']:.0f} s)"
        + (
            f"; the ``distilled`` column: `{payload['distilled_command']}` "
            f"({payload['seconds_distilled_run']:.0f} s, the same ``today`` figures)"
            if "distilled_command" in payload
            else ""
        ),
        "",
        "Harness of device_transfer.py (69 scored models, five family folds, sources trained "
        "without each fold); ways described in the docstring of "
        "benchmarks/op_profiled_sources.py. Cells: share within ±10 % / MAPE % (kernel "
        "out-of-fold MAPE % on the ten's rows).",
        "",
        "| phone | " + " | ".join(variants) + " |",
        "|---|" + "---|" * len(variants),
    ]
    for dev, d in res.items():
        cells = [
            f"{d[v]['within_10_pct']:.1f} / {d[v]['mape_pct']:.2f} "
            f"({d[v]['kernel_oof_mape_pct']:.1f})"
            for v in variants
        ]
        lines.append(f"| {dev} | " + " | ".join(cells) + " |")
    lines.append("")
    base = (
        {dev: d["today"]["within_10_pct"] for dev, d in res.items()} if "today" in variants else {}
    )
    for v in variants:
        shares = [d[v]["within_10_pct"] for d in res.values()]
        mapes = [d[v]["mape_pct"] for d in res.values()]
        lower = [dev for dev, d in res.items() if base and d[v]["within_10_pct"] < base[dev]]
        lines.append(
            f"- {v}: mean share {np.mean(shares):.1f} %, lowest {min(shares):.1f} %, MAPE "
            f"{min(mapes):.2f}-{max(mapes):.2f} % (mean {np.mean(mapes):.2f} %)"
            + (f"; below today on {', '.join(lower)}" if lower else "")
        )
    lines += ["", *NOTES.strip("\n").splitlines()]
    (out / "op_profiled_sources.md").write_text("\n".join(lines) + "\n")


NOTES = """
## What this says (one measurement of each way, on these folds)

The rule set before measuring: keep a way only if it beats ``today`` on the mean share and
lowers no phone's share. Kernel-level, the sources help: the blended kernel model has a lower
out-of-fold kernel MAPE on the ten's rows on all six phones, the stacked one on five (s10
15.6 -> 13.5 %, a03s 10.4 -> 8.1-8.8 %, iphonexs 9.1 -> 7.1 %). Model-level they mostly do
not:

- ``stack`` (a) loses 8.7 points on pixel4: it under-prices the narrow models (the ``wd4`` /
  ``wd2`` MobileNets and ResNet-18s, by 5-12 points more than today's), whose small kernels the
  ten (width-1 models) barely show; the per-kind offsets and trees learn the phone's ratio to
  the sources on large kernels. A per-kind slope on the sources' log price instead of an
  offset (log y = b + beta log S, ridge toward the pooled fit; a scratch run, not in this
  script) was worse on pixel4 (78.3 %) and no better on a03s (92.8 %), the two phones it was
  run on before it was stopped.
- ``extra`` (b): the trees barely use the sources' price (kernel MAPE unchanged); s10 -1.4.
- ``src_term`` (c): the sources' non-kernel time as the whole-model term's second column is
  worse on four phones: their overhead and unlisted-kernel prices do not carry over (a03s
  MAPE 7.7 %).
- ``blend@today`` is the only way that meets the rule: 93.7 % mean (+0.2: one model more
  on s10), no phone lower, but MAPE higher on pixel4 (4.71 %) and iphone7 (2.71 %), mean MAPE
  3.63 against 3.60 %. A bundle cannot hold it as it is (it asks the sources for every
  kernel); ``distilled`` is what one could ship, and it loses a model on a03s (92.8 %): not
  kept.

So ``device add`` without ``--timings`` still trains on the phone's own rows alone. The
op-profiled targets (every phone >= 90 %, mean >= 95 %, MAPE <= 4.5 %) stay not met on this
scoring set: mean 93.5 %, s10 88.4 %, MAPE up to 5.04 % (s10) and 4.53 % (pixel4); the
phone's own predictor trained on all its data reaches 91.6 % mean here
(device_transfer.md), so the ten-model one is already above it.
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", default=",".join(DEVICES))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--cache", type=Path, default=None, help="device_transfer.py's --cache")
    harness.add_output_args(ap)
    args = ap.parse_args()
    if args.md_only:
        return harness.rewrite_md(args.out, "op_profiled_sources", write_md)
    t0 = time.perf_counter()
    data = load_usc()
    folds = harness.Folds(data, args.cache)
    variants = args.variants.split(",")
    results = {}
    for t in args.devices.split(","):
        results[t] = run_device(t, folds, data, variants)
        print(
            f"{t:9s} "
            + " | ".join(
                f"{v} {s['within_10_pct']:5.1f} % {s['mape_pct']:5.2f} %"
                for v, s in results[t].items()
            ),
            flush=True,
        )
    payload = {
        "command": "python benchmarks/op_profiled_sources.py"
        + (" --cache DIR" if args.cache else "")
        + (f" --devices {args.devices}" if args.devices != ",".join(DEVICES) else "")
        + (f" --variants {args.variants}" if args.variants != ",".join(VARIANTS) else ""),
        "seconds": time.perf_counter() - t0,
        "variants": variants,
        "devices": results,
    }
    return harness.write_results(args.out, "op_profiled_sources", payload, write_md)


if __name__ == "__main__":
    raise SystemExit(main())
