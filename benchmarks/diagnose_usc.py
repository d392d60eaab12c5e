"""Where do the phone predictors miss? A diagnosis on the USC public data, family held out.

Per device: out-of-fold op-level error (all kernels and op shapes never seen in training) by
delegate kernel (from the data's kernel names), by latency bucket and by family, on the outer
folds of benchmarks/accuracy_usc.py (its op-level figures exactly); and the whole-model error
when the *measured* op latencies are plugged into the whole-model term (fitted and applied on
measured times: the ceiling of that term), next to the figure with predicted op times. Lighter
than the benchmark: one kernel model per fold, no inner folds.

    python benchmarks/diagnose_usc.py [--devices pixel4,...] [--folds 5]

Prints tables; nothing is written. Every figure is out of fold (whole families held out), and
every run is a look at the reported test folds: say so when a choice follows from one.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict

import numpy as np

from tflat.datasets.usc import DEVICES, load_usc
from tflat.predict.features import KernelShape
from tflat.predict.train import GBDT_PARAMS, _group_folds, fit_kernels, model_parts, parts_features
from tflat.predict.usc import GPU_CONFIG, device_meta
from tflat.predict.whole import WholeModelTerm, fit_whole_model

_ALGO = re.compile(r"^([a-z_]+?)(?:_\d+|$)")


def _algo(kernel_name: str) -> str:
    m = _ALGO.match(kernel_name)
    return m.group(1) if m else kernel_name


def _shape_key(s: KernelShape) -> tuple[object, ...]:
    return (s.kind, s.h_in, s.cin, s.h_out, s.cout, s.kernel, s.stride, s.groups)


def _table(title: str, groups: dict[str, list[float]]) -> None:
    print(f"  {title}")
    for key, errs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        e = np.asarray(errs)
        print(f"    {key:34s} n={e.size:5d} MAPE {100 * np.mean(np.abs(e)):6.2f} % "
              f"bias {100 * np.median(e):+6.2f} %")  # fmt: skip


def diagnose(data: object, device: str, n_folds: int) -> None:
    _, gpu_family = device_meta(device)
    ops = data.ops_for(device)  # type: ignore[attr-defined]
    rows = data.models_for(device, GPU_CONFIG)  # type: ignore[attr-defined]
    parts = [p for p in model_parts(ops, rows, gpu_family) if p.measured_ms and p.shapes]
    by_model: dict[str, list] = defaultdict(list)
    for r in sorted(ops, key=lambda r: (r.model, r.position)):
        by_model[r.model].append(r)
    shapes = [s for p in parts for s in p.shapes]
    orow = [r for p in parts for r in by_model[p.model]]
    y = np.array([r.latency_ms for r in orow])
    fam = [p.family for p in parts for _ in p.shapes]
    # The outer folds of the reported figures (evaluate_families: whole families, balanced
    # by model count), mapped to kernel rows: the op-level figures below are theirs.
    part_fold = np.zeros(len(parts), dtype=int)
    for i, (_, te) in enumerate(_group_folds([p.family for p in parts], n_folds)):
        part_fold[te] = i
    row_fold = np.array([part_fold[j] for j, p in enumerate(parts) for _ in p.shapes])
    oof = np.zeros(len(y))
    unseen = np.zeros(len(y), dtype=bool)
    for i in range(int(part_fold.max()) + 1):
        tr, te = np.where(row_fold != i)[0], np.where(row_fold == i)[0]
        km = fit_kernels([shapes[j] for j in tr], y[tr], GBDT_PARAMS)
        oof[te] = km.predict([shapes[j] for j in te])
        seen = {_shape_key(shapes[j]) for j in tr}
        unseen[te] = [_shape_key(shapes[j]) not in seen for j in te]
    err = oof / y - 1
    print(f"{device}: op MAPE {100 * np.mean(np.abs(err)):.2f} % over {len(y)} kernels, "
          f"unseen shapes {100 * np.mean(np.abs(err[unseen])):.2f} % ({unseen.sum()})")  # fmt: skip
    by_algo: dict[str, list[float]] = defaultdict(list)
    by_size: dict[str, list[float]] = defaultdict(list)
    by_fam: dict[str, list[float]] = defaultdict(list)
    for r, e, f in zip(orow, err, fam, strict=True):
        by_algo[_algo(r.kernel_name)].append(e)
        b = 10 ** np.floor(np.log10(max(r.latency_ms, 1e-4)))
        by_size[f"{b:g} ms .. {10 * b:g} ms"].append(e)
        by_fam[f].append(e)
    _table("by kernel (data's names)", by_algo)
    _table("by measured latency", by_size)
    _table("by family", by_fam)

    pred_k: dict[str, list[float]] = defaultdict(list)
    meas_k: dict[str, list[float]] = defaultdict(list)
    for r, p in zip(orow, oof, strict=True):
        pred_k[r.model].append(float(p))
        meas_k[r.model].append(r.latency_ms)
    m_y = np.array([p.measured_ms for p in parts])
    fams = [p.family for p in parts]
    for label, kernels in (("measured op times (ceiling)", meas_k), ("predicted op times", pred_k)):
        feats = [parts_features(p, kernels[p.model]) for p in parts]
        exact = [parts_features(p, meas_k[p.model]) for p in parts]
        pred = np.zeros(len(parts))
        for tr, te in _group_folds(fams, n_folds):
            wm = fit_whole_model([feats[i] for i in tr], m_y[tr], [fams[i] for i in tr],
                                 measured_features=[exact[i] for i in tr])  # fmt: skip
            term = WholeModelTerm.from_bundle(wm)
            for i in te:
                pred[i] = term.total(feats[i])
        e = pred / m_y - 1
        print(f"  whole model, {label}: MAPE {100 * np.mean(np.abs(e)):.2f} % "
              f"±10 % {100 * np.mean(np.abs(e) <= 0.1):.1f} %")  # fmt: skip
        worst: dict[str, list[float]] = defaultdict(list)
        for p, ei in zip(parts, e, strict=True):
            worst[p.family].append(ei)
        _table(f"whole-model error by family ({label})", worst)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", default=",".join(DEVICES))
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    data = load_usc()
    for dev in args.devices.split(","):
        diagnose(data, dev, args.folds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
