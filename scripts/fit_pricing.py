#!/usr/bin/env python3
"""Fit the pricing sections of the six shipped phone bundles from the public data.

    python scripts/fit_pricing.py [--usc DIR] [--devices pixel4,...] [--bundles DIR]
                                  [--results DIR] [--retrain] [--no-extrapolation]

For every USC phone it fits, from ``tflite_cnn_ops_gpu.csv`` and ``tflite_cnn_e2e.csv``:

* ``pricing.analytic``: the GPU's analytic rates (tflat.predict.rates) and the interval every
  analytic price carries, calibrated over all six phones by leaving whole kinds out
  (tflat.pricing.fitting);
* ``pricing.cpu``: the CPU rates, fitted on the one-big-core whole-model timings
  (tflat.pricing.fit_cpu), and ``pricing.edges``: the copy at a partition edge;
* ``training_range``: the trained range of each learned kind's size features, with the
  ``extrapolation`` band of a learned price outside it (tflat.pricing.fit_extrapolation;
  trains kernel models, a few minutes);
* ``provenance.pricing``: what fitted these sections, from which data.

Everything else in a bundle (trees, whole-model term) is left as it is, byte for byte, unless
``--retrain`` retrains the bundle first (``tflat train --usc``: needed when the training code
changed). Run it again on bundles that have the sections: it replaces them. The record of
every fit (rates, held-out errors) goes to ``<results>/pricing_fit.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    from tflat.datasets.usc import DEVICES, SOURCE, load_usc
    from tflat.predict.bundles import bundle_json
    from tflat.predict.usc import bundled_dir, fit_usc_device, write_bundle

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--usc", type=Path, default=None, help="USC data folder (TFLAT_USC_DIR)")
    ap.add_argument("--devices", default=",".join(DEVICES))
    ap.add_argument("--bundles", type=Path, default=None, help="bundle folder (the shipped)")
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--retrain", action="store_true", help="retrain each bundle first")
    ap.add_argument("--no-extrapolation", action="store_true")
    args = ap.parse_args()
    data = load_usc(args.usc)
    devices = args.devices.split(",")
    folder = args.bundles or bundled_dir()
    today = dt.date.today().isoformat()
    source = dict(SOURCE) | {"files": ["tflite_cnn_ops_gpu.csv", "tflite_cnn_e2e.csv"]}
    bundles: dict[str, dict[str, Any]] = {}
    for dev in devices:
        if args.retrain:
            bundles[dev] = fit_usc_device(data, dev)
            print(f"{dev}: retrained", flush=True)
        else:
            bundles[dev] = json.loads((folder / f"{dev}.json").read_text(encoding="utf-8"))
    record: dict[str, Any] = {
        "command": "python scripts/fit_pricing.py " + " ".join(sys.argv[1:]),
        "date": today,
        "devices": {},
    }
    sections = fit_sections(data, devices, bundles, record, not args.no_extrapolation, source)
    for dev in devices:
        bundle = bundles[dev]
        bundle["pricing"] = sections[dev]["pricing"]
        bundle["training_range"] = sections[dev]["training_range"]
        bundle.setdefault("provenance", {})["pricing"] = {
            "fitted_by": "scripts/fit_pricing.py",
            "date": today,
            "source": source,
        }
        path = write_bundle(dev, bundle, folder)
        print(f"{dev}: wrote {path} ({len(bundle_json(bundle)) // 1024} KB)", flush=True)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "pricing_fit.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.results / "pricing_fit.md").write_text(render_md(record))
    return 0


def fit_sections(
    data: Any,
    devices: list[str],
    bundles: dict[str, dict[str, Any]],
    record: dict[str, Any],
    extrapolation: bool,
    source: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    from tflat.predict.ranges import training_range
    from tflat.predict.rates import fit_analytic
    from tflat.predict.train import proxy_shape
    from tflat.predict.usc import GPU_CONFIG, device_meta
    from tflat.pricing.fit_cpu import CPU_CONFIG, fit_cpu, fit_edges
    from tflat.pricing.fitting import global_interval

    rates, residuals, extra = {}, {}, {}
    for dev in devices:
        _, family = device_meta(dev)
        params, res = fit_analytic(data.ops_for(dev), family, source)
        rates[dev] = params
        residuals.update({(dev, k): v for k, v in res.items()})
        if extrapolation:
            from tflat.pricing.fit_extrapolation import extrapolation_residuals

            ex = extrapolation_residuals(
                data.ops_for(dev), data.models_for(dev, GPU_CONFIG), family
            )
            extra.update({(dev, k): v for k, v in ex.items()})
            print(f"{dev}: {sum(v.size for v in ex.values())} extrapolated kernels", flush=True)
    interval, level, analytic_record = global_interval(residuals)
    record["analytic"] = {
        "log_interval": list(interval),
        "ratio": [math.exp(x) for x in interval],
        **analytic_record,
    }
    band: dict[str, Any] = {}
    if extra:
        ex_interval, ex_level, ex_record = global_interval(extra)
        record["extrapolation"] = {"log_interval": list(ex_interval), **ex_record}
        band = {
            "log_interval": list(ex_interval),
            "provenance": {
                "source": source,
                "date": record["date"],
                "level": ex_level,
                "method": "kernels at one end of a size feature, and every 3x3 (7x7) "
                "convolution priced as its 1x1 equivalent, held out in turn and priced by "
                "kernel models trained on the rest; band over every phone and experiment",
            },
        }
    out: dict[str, dict[str, Any]] = {}
    for dev in devices:
        bundle = bundles[dev]
        _, family = device_meta(dev)
        analytic = rates[dev].to_dict()
        analytic["log_interval"] = list(interval)
        analytic["provenance"] |= {
            "interval": f"every phone's held-out kinds, level {level}",
            "date": record["date"],
        }
        cpu, cpu_record = fit_cpu(
            data.ops_for(dev),
            data.models_for(dev, CPU_CONFIG),
            family,
            {"source": source, "date": record["date"]},
        )
        cpu = replace(cpu, other_log_interval=interval)
        edges = fit_edges(cpu, rates[dev].launch_ms, {"source": source, "date": record["date"]})
        pricing = {"analytic": analytic, "cpu": cpu.to_dict(), "edges": edges.to_dict()}
        kinds = list(bundle["kinds"])
        coefs = {k: np.asarray(v, dtype=float) for k, v in bundle["analytic"].items()}
        shapes = _usc_shapes(data.ops_for(dev), family)
        trange = training_range([proxy_shape(s, kinds) for s in shapes], kinds, coefs)
        if band:
            trange["extrapolation"] = band
        out[dev] = {"pricing": pricing, "training_range": trange}
        record["devices"][dev] = {
            "analytic": {k: v for k, v in analytic.items() if k != "provenance"},
            "cpu": cpu_record,
            "cpu_rates": cpu.to_dict(),
            "edges": edges.to_dict(),
        }
        print(
            f"{dev}: analytic, cpu ({cpu_record['family_held_out_mape_pct']:.1f} % "
            f"held-out MAPE), edges (convert {edges.convert_ms:.4f} ms)",
            flush=True,
        )
    return out


def _usc_shapes(op_rows: Any, family: str) -> list[Any]:
    from tflat.predict.shapes import shape_from_usc

    return [shape_from_usc(r.operation, r.feature, r.kernel_name, family) for r in op_rows]


def render_md(record: dict[str, Any]) -> str:
    a = record["analytic"]
    lines = [
        "# Pricing sections of the shipped bundles",
        "",
        f"Command: `{record['command'].strip()}` ({record['date']})",
        "",
        "## Analytic interval (kinds left out, every phone)",
        "",
        f"80 % band of log(measured / analytic price): x{a['ratio'][0]:.2f} .. "
        f"x{a['ratio'][1]:.2f} (quantile level {a['level']}, the narrowest of "
        f"{', '.join(a['levels_tried'])} whose nested coverage reached 80 %: "
        + ", ".join(f"{k}: {v:.1f} %" for k, v in a["levels_tried"].items())
        + ").",
        "",
        "| phone/kind left out | kernels | coverage % (band of the other kinds) | MAPE % | "
        "median log ratio |",
        "|---|---|---|---|---|",
    ]
    for key, v in a["held_out"].items():
        lines.append(
            f"| {key} | {v['kernels']:.0f} | {v['coverage_pct']:.1f} | "
            f"{v['mape_pct']:.1f} | {v['median_log_ratio']:+.2f} |"
        )
    if "extrapolation" in record:
        e = record["extrapolation"]
        lines += [
            "",
            "## Extrapolation interval (held out: one end of a size feature, or a square "
            "kernel size priced as its 1x1 equivalent)",
            "",
            f"80 % band: x{math.exp(e['log_interval'][0]):.2f} .. "
            f"x{math.exp(e['log_interval'][1]):.2f} (level {e['level']}; tried "
            + ", ".join(f"{k}: {v:.1f} %" for k, v in e["levels_tried"].items())
            + ")",
            "",
            "| phone/experiment | kernels | coverage % | MAPE % | median log ratio |",
            "|---|---|---|---|---|",
        ]
        for key, v in e["held_out"].items():
            lines.append(
                f"| {key} | {v['kernels']:.0f} | {v['coverage_pct']:.1f} | "
                f"{v['mape_pct']:.1f} | {v['median_log_ratio']:+.2f} |"
            )
    lines += [
        "",
        "## Per phone",
        "",
        "| phone | launch ms | ms/MB | ms/GFLOP | ms/k wave steps | CPU ms/GFLOP GEMM | "
        "CPU ms/GFLOP other | CPU ms/MB | CPU op ms | CPU held-out MAPE % | edge convert ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dev, d in record["devices"].items():
        an, c = d["analytic"], d["cpu_rates"]
        lines.append(
            f"| {dev} | {an['launch_ms']:.4f} | {an['ms_per_mb']:.4f} | {an['ms_per_gflop']:.3f}"
            f" | {an['ms_per_k_wave_steps']:.4f} | {c['ms_per_gflop_dense']:.2f} | "
            f"{c['ms_per_gflop_other']:.2f} | {c['ms_per_mb']:.3f} | {c['op_ms']:.4f} | "
            f"{d['cpu']['family_held_out_mape_pct']:.1f} | {d['edges']['convert_ms']:.4f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
