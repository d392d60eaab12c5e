"""A new phone from ten models: leave each USC phone out, transfer from the other five.

Run: python benchmarks/device_transfer.py [--devices pixel4,...] [--cache DIR]
Writes benchmarks/results/device_transfer.json and .md.

The ten models (issue 19): mobilenet_w1, mobilenetv2_w1, mobilenetv3_large_w1,
mobilenetv3_small_w1, resnet18, densenet121, squeezenet_v1_1, proxylessnas_mobile, regnety004,
resnext14_32x4d. Scored: the 69 other models of the USC data, in five folds of whole
architecture families (``_group_folds``, as accuracy_usc.py). For each fold, every phone's
source predictor is trained on all models but that fold's scored ones (so a scored model's
family is never in a source's training, except the ten, which every source knows, as the
shipped ones do); the left-out phone's measurements are used for the ten models only:

- **op-profiled** (its kernel rows and whole-model times of the ten): ``tflat train`` on them
  (``fit_usc_device(..., models=TEN)``), which is also what ``tflat device add`` does;
- **whole-model timings** (its ten whole-model times only, a ``model,ms`` CSV): the transfer of
  :mod:`tflat.devices.transfer`, direct and as the distilled bundle ``device add`` writes
  (distilled on the fold's training models of the USC data plus the zoo corpus).

Structure (which kernels a scored model has on the left-out phone) comes from the kernel names
of the USC phone of the same delegate family (identical names: pixel4 = mi8se, s10 = a03s,
iphone7 = iphonexs), standing in for the partition of a .tflite; never a latency. The naive
baseline scales the source whose ten timings have the smallest log-ratio spread by the median
ratio (its predicted totals, same folds). Also shown: the five scored models of families none
of the ten belongs to (bagnet9, bninception, diracnet18v2, fbnet_cb, spnasnet).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tflat.datasets.usc import DEVICES, load_usc
from tflat.devices import transfer
from tflat.devices.add import zoo_corpus
from tflat.devices.structure import parts_from_usc
from tflat.predict.bundles import bundle_json
from tflat.predict.predictor import Predictor
from tflat.predict.train import _group_folds, model_parts
from tflat.predict.usc import device_meta, fit_usc_device

TEN = (
    "mobilenet_w1",
    "mobilenetv2_w1",
    "mobilenetv3_large_w1",
    "mobilenetv3_small_w1",
    "resnet18",
    "densenet121",
    "squeezenet_v1_1",
    "proxylessnas_mobile",
    "regnety004",
    "resnext14_32x4d",
)
NEW_FAMILIES = ("bagnet", "bninception", "diracnet", "fbnet", "spnasnet")
#: issue 19's targets: (every phone >= share, mean >= share, MAPE <= x, coverage >= c)
TARGETS = {
    "op-profiled": {"min_share": 90.0, "mean_share": 95.0, "max_mape": 4.5},
    "timings": {"min_share": 60.0, "mean_share": 75.0, "max_mape": 9.0, "min_cover": 65.0},
}
METHODS = ("naive", "op-profiled", "timings direct", "timings bundle")


def total(pred: Predictor, mp: Any) -> float:
    return pred.total_from_parts(
        pred.predict_shapes(mp.shapes),
        mp.unlisted_ops,
        mp.unlisted_mb,
        [s.kind for s in mp.shapes],
        mp.merged_pads,
        [s.weight_bytes / 1e6 for s in mp.shapes],
    )


def score(
    measured: list[float],
    pred: list[float],
    lo: list[float] | None = None,
    hi: list[float] | None = None,
) -> dict[str, float]:
    m, p = np.asarray(measured), np.asarray(pred)
    err = np.abs(p / m - 1)
    out = {
        "n": int(m.size),
        "within_10_pct": float(np.mean(err <= 0.1) * 100),
        "mape_pct": float(np.mean(err) * 100),
    }
    if lo is not None and hi is not None:
        inside = (np.asarray(lo) <= m) & (m <= np.asarray(hi))
        out["interval_coverage_pct"] = float(np.mean(inside) * 100)
    return out


class Folds:
    """The scored models' family folds and each phone's predictor trained without a fold."""

    def __init__(self, data: Any, cache: Path | None) -> None:
        self.data = data
        self.cache = cache
        models = sorted({m.model for m in data.models if m.config == "gpu|float"})
        self.all = models
        self.family = {m.model: m.family for m in data.models}
        self.scored = [m for m in models if m not in TEN]
        folds = _group_folds([self.family[m] for m in self.scored], 5)
        self.fold_of = {self.scored[j]: i for i, (_, test) in enumerate(folds) for j in test}
        self.n = len(folds)
        self._pred: dict[tuple[str, int], Predictor] = {}

    def test(self, fold: int) -> list[str]:
        return [m for m in self.scored if self.fold_of[m] == fold]

    def predictor(self, device: str, fold: int) -> Predictor:
        key = (device, fold)
        if key not in self._pred:
            path = self.cache / f"{device}_fold{fold}.json" if self.cache else None
            if path is not None and path.is_file():
                bundle = json.loads(path.read_text())
            else:
                bundle = fit_usc_device(
                    self.data, device, models=set(self.all) - set(self.test(fold))
                )
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(bundle_json(bundle))
            self._pred[key] = Predictor(bundle)
        return self._pred[key]


def run_device(t: str, folds: Folds, data: Any, zoo: dict[str, list[Any]]) -> dict[str, Any]:
    _, fam = device_meta(t)
    parts = parts_from_usc(data, fam, exclude=[t])
    measured = {m.model: m.mean_ms for m in data.models_for(t)}
    timed = [replace(parts[m], measured_ms=measured[m]) for m in TEN]
    sources = [d for d in DEVICES if d != t]
    own = {
        d: {p.model: p for p in model_parts(data.ops_for(d), data.models_for(d), device_meta(d)[1])}
        for d in sources
    }
    src_meas = {d: {m.model: m.mean_ms for m in data.models_for(d)} for d in sources}
    # naive: the source whose ten timings vary least in ratio, scaled by the median ratio
    spread = {
        d: float(np.std(np.log([measured[m] / src_meas[d][m] for m in TEN]))) for d in sources
    }
    nearest = min(spread, key=lambda d: spread[d])
    ratios = np.log([measured[m] / src_meas[nearest][m] for m in TEN])
    k = math.exp(float(np.median(ratios)))
    naive_half = transfer.conformal_half_width(ratios - np.median(ratios))
    ten = Predictor(fit_usc_device(data, t, models=set(TEN)))
    ten_lo, ten_hi = ten.whole.log_interval
    pred: dict[str, dict[str, tuple[float, float, float]]] = {m: {} for m in METHODS}
    fits = []
    for f in range(folds.n):
        mix = transfer.SourceMix([folds.predictor(d, f) for d in sources])
        tf = transfer.fit_timings(mix, timed)
        corpus = [parts[m] for m in folds.all if m not in folds.test(f)] + zoo[fam]
        bundle = transfer.distill(
            mix, tf, corpus, timed, device={"id": t}, gpu_family=fam, provenance={}
        )
        dist = Predictor(bundle)
        d_lo, d_hi = dist.whole.log_interval
        half = tf.log_half_width
        fits.append(
            {
                "fold": f,
                "alpha": tf.fit.alpha,
                "overhead_ms": tf.fit.overhead_ms,
                "class_scale": tf.fit.scale,
                "loo_mape_pct": tf.loo_mape_pct,
                "bundle_refit_mape_pct": bundle["metrics"]["timings_refit_mape_pct"],
            }
        )
        for m in folds.test(f):
            v = k * total(folds.predictor(nearest, f), own[nearest][m])
            pred["naive"][m] = (v, v * math.exp(-naive_half), v * math.exp(naive_half))
            v = total(ten, parts[m])
            pred["op-profiled"][m] = (v, v * math.exp(ten_lo), v * math.exp(ten_hi))
            v = transfer.predict_total(mix, tf, parts[m])
            pred["timings direct"][m] = (v, v * math.exp(-half), v * math.exp(half))
            v = total(dist, parts[m])
            pred["timings bundle"][m] = (v, v * math.exp(d_lo), v * math.exp(d_hi))
    out: dict[str, Any] = {
        "nearest_source": nearest,
        "fits": fits,
        "scores": {},
        "new_families": {},
        "models": {},
    }
    new = [m for m in folds.scored if folds.family[m] in NEW_FAMILIES]
    for method, by_model in pred.items():
        for subset, key in ((folds.scored, "scores"), (new, "new_families")):
            out[key][method] = score(
                [measured[m] for m in subset],
                [by_model[m][0] for m in subset],
                [by_model[m][1] for m in subset],
                [by_model[m][2] for m in subset],
            )
    out["models"] = {
        m: {"measured_ms": measured[m], **{meth: pred[meth][m][0] for meth in METHODS}}
        for m in folds.scored
    }
    return out


def write_md(payload: dict[str, Any], out: Path) -> None:
    res = payload["devices"]
    lines = [
        "# A new phone from ten models: leave one USC phone out, transfer from the other five",
        "",
        f"Command: `{payload['command'].strip()}` ({payload['seconds']:.0f} s)",
        "",
        "Scored: the 69 USC models other than the ten, five folds of whole families; sources "
        "trained without each fold (see the docstring of benchmarks/device_transfer.py). "
        "Figures: share of models within ±10 % / MAPE % / 80 % interval coverage %.",
        "",
        "| phone | naive (nearest source x median ratio) | op-profiled: tflat train on the ten "
        "| timings: transfer, direct | timings: transfer, bundle | bundle on the 5 new-family "
        "models (±10 % share) |",
        "|---|---|---|---|---|---|",
    ]
    for dev, d in res.items():
        cells = []
        for meth in METHODS:
            s = d["scores"][meth]
            cells.append(
                f"{s['within_10_pct']:.1f} / {s['mape_pct']:.2f} / "
                f"{s.get('interval_coverage_pct', float('nan')):.1f}"
            )
        nf = d["new_families"]["timings bundle"]["within_10_pct"]
        lines.append(f"| {dev} ({d['nearest_source']}) | " + " | ".join(cells) + f" | {nf:.0f} |")
    lines.append("")
    for meth in METHODS:
        shares = [d["scores"][meth]["within_10_pct"] for d in res.values()]
        mapes = [d["scores"][meth]["mape_pct"] for d in res.values()]
        covers = [d["scores"][meth].get("interval_coverage_pct", math.nan) for d in res.values()]
        lines.append(
            f"- {meth}: mean share {np.mean(shares):.1f} %, lowest {min(shares):.1f} %, "
            f"MAPE {min(mapes):.2f}-{max(mapes):.2f} %, coverage "
            f"{min(covers):.1f}-{max(covers):.1f} %"
        )
    lines += [
        "",
        "Targets (issue 19, stated on held-out families this data does not hold): "
        f"{json.dumps(TARGETS)}",
        "",
    ]
    lines += NOTES.strip("\n").splitlines()
    (out / "device_transfer.md").write_text("\n".join(lines) + "\n")


NOTES = """
## What is scored, and what the targets mean here

The issue's targets are stated on CNN families this data does not hold (held out on purpose).
Here the scored set is the 69 models of the USC data other than the ten, in five folds of
whole families: the sources never saw a scored model's family (except the ten models
themselves, which every source knows, as the shipped ones do), but the left-out phone's ten
models include relatives of many scored ones (mobilenet_w1 for the other MobileNets, resnet18
for 27 ResNets). The last column is the strict subset: the five scored models of families
none of the ten belongs to (each is 20 %). On this set even the left-out phone's own full
predictor (accuracy_usc.py's pipeline on all its other families, same folds) puts 92.8 / 85.5
/ 97.1 / 89.9 / 92.8 / 91.3 % within ±10 % (mean 91.6 %), below the ten-model one: the
op-profiled targets (every phone >= 90 %, mean >= 95 %, MAPE <= 4.5 %) are not met here
(lowest s10 88.4 %, mean 93.5 %, MAPE up to 5.04 %); the timings targets (mean >= 75 %, every
phone >= 60 %, MAPE <= 9 %, coverage >= 65 %) are.

## The method (tflat.devices.transfer), and what was tried

Whole-model timings only (figures: ±10 % share per phone, pixel4 / s10 / mi8se / a03s /
iphone7 / iphonexs, this scoring, direct method unless said; each was measured once on these
folds, so the choices below were made looking at them):

1. Mixing whole-model times fails, as the issue says. The naive answer above; the same with
   the nearest source's *measured* totals (not available for a new model): 68 / 64 / 67 / 74
   / 57 / 65. Non-negative mix of the five sources' measured totals plus an offset, fitted on
   the ten: 70 / 91 / 57 / 52 / 99 / 78. Each source's predictor with a whole-model term
   (kernel-sum scale, count, overhead) refitted on the ten: 30-91 % by source; the best source
   by leave-one-out on the ten 46 / 81 / 77 / 84 / 59 / 81; the geometric mean of the five
   64 / 84 / 70 / 80 / 75 / 78; stacking them (NNLS on leave-one-out totals) 55 / 81 / 81 /
   87 / 81 / 86. Errors are shared by all sources (pixel4: every source under-prices ResNets
   by 10-30 % and over-prices ResNeXt by 20 %): the new phone differs by kernel kind.
2. Kept: the geometric mean of the five source predictors per kernel of the new phone's own
   partition, one scale per kernel class (1x1, spatial and Winograd conv, grouped, depthwise,
   fully connected, pool/mean, concat) plus an overhead, least squares on log totals, class
   scales ridge-pulled to their mean (strength by leave-one-timing-out error): 83 / 84 / 77 /
   83 / 77 / 78 (mean 80.2). Source structure instead of the new phone's (each source prices
   its own partition): 74.4 mean. Weighting same-vendor sources x2 / x4 / only: mean 80.4 /
   80.0 / 76.3 (the spec sheet's vendor is no better prior than uniform; the figures in
   data/gpus.toml are kept for provenance only). A free cost per unlisted kernel: mean 80.7
   but pixel4 68. Kept instead: unlisted kernels priced as the sources' 1x1 copy kernel of the
   same bytes, a class of its own (75 / 84 / 75 / 84 / 81 / 80 direct; it is what lets the
   element-wise-heavy ConvNeXt-S of Table 6 be priced at all).
3. The distilled bundle (what `device add` ships) is 0-4 points below the direct method
   (distillation error); the interval of a total is the conformal band of the
   leave-one-timing-out residuals (covers 71-88 %).
4. Kernel-level limits: fitting a per-kind log-linear map from the five sources' *measured*
   kernel times to the left-out phone's, on the ten models' kernel rows, gives 10-16 % kernel
   MAPE on the other models against 6-10 % for trees trained on the ten's rows alone, and only
   72 / 90 / 94 / 88 / 83 / 90 at model level even with the phone's true whole-model term.

Ten op-profiled models: `tflat train` on them (the op-profiled column) beat every use of the
sources tried, so `device add` without --timings trains on the phone's own rows:
per-class source mixing fitted on the ten's kernel rows and totals (mean 55-65 %); the other
training models' kernel rows pseudo-labelled from the sources added to training (81 / 88 / 93
/ 87 / 93 / 96); the whole-model design chosen by simulating ten models on each source (94 /
87 / 96 / 90 / 97 / 91); the whole-model term fitted on the ten plus transfer-predicted totals
(worse with any weight); the sources' predicted non-kernel time as a feature (no change); a
geometric blend with the transfer at weight 0.1 (93 / 90 / 97 / 94 / 97 / 91, +0.2 points,
not one bundle). What limits it is the whole-model term: fitted on all 79 models with the
*measured* kernel times, in sample, it puts s10 at 91.3 % (the others 97-100 %). A second
round (op_profiled_sources.md: the sources as the base the ten's rows correct, their price as
a tree feature, their non-kernel time in the whole-model term, blends) kept nothing either.
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", default=",".join(DEVICES))
    ap.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="keep the per-fold source predictors here (re-runs skip training)",
    )
    add_output_args(ap)
    args = ap.parse_args()
    if args.md_only:
        return rewrite_md(args.out, "device_transfer", write_md)
    t0 = time.perf_counter()
    data = load_usc()
    folds = Folds(data, args.cache)
    zoo: dict[str, list[Any]] = {}
    results = {}
    for t in args.devices.split(","):
        fam = device_meta(t)[1]
        zoo.setdefault(fam, zoo_corpus(fam))
        r = run_device(t, folds, data, zoo)
        results[t] = r
        line = " | ".join(
            f"{meth} {s['within_10_pct']:5.1f} % {s['mape_pct']:5.2f} % "
            f"cov {s.get('interval_coverage_pct', float('nan')):5.1f}"
            for meth, s in r["scores"].items()
        )
        print(f"{t:9s} {line}", flush=True)
    payload = {
        "command": "python benchmarks/device_transfer.py " + " ".join(sys.argv[1:]),
        "seconds": time.perf_counter() - t0,
        "ten": list(TEN),
        "targets": TARGETS,
        "devices": results,
    }
    return write_results(args.out, "device_transfer", payload, write_md)


def add_output_args(ap: argparse.ArgumentParser) -> None:
    """--out (the results folder) and --md-only."""
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--md-only", action="store_true", help="rewrite the .md from the .json")


def rewrite_md(out: Path, stem: str, md: Callable[[dict[str, Any], Path], None]) -> int:
    md(json.loads((out / f"{stem}.json").read_text()), out)
    return 0


def write_results(
    out: Path, stem: str, payload: dict[str, Any], md: Callable[[dict[str, Any], Path], None]
) -> int:
    """``<stem>.json`` and, by ``md``, the .md in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=1) + "\n")
    md(payload, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
