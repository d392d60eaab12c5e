"""pixel7 and galaxy-s23 from the MobileNetV4 paper's Table 6, one published timing left out.

Run: python benchmarks/table6_transfer.py [--usc DIR] [--published CSV]
Writes benchmarks/results/table6_transfer.json and .md.

For each phone and each of the seven Table 6 baselines tflat builds (scripts/build_table6.py,
:mod:`tflat.devices.keras_apps`): ``tflat device add`` (the same function, the same sources
and USC data) on the other six timings, then ``estimate`` of the left-out model with the
bundle it writes, against the paper's figure. Target (issue 19): at least 6 of 7 within
±20 % on each phone. The figures are the paper's (fp32/fp16 as the paper states, its runtime
unnamed); the sources are the USC phones (TFLite 2.10, fp32 models).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import build_table6 as t6  # noqa: E402


def run_phone(phone: str, folder: Path, published: Path, usc: Path) -> dict[str, Any]:
    import tflat

    paper_device, gpu, _, _ = t6.PHONES[phone]
    rows = t6.published_timings(published, paper_device)
    cpu_rows = t6.published_timings(published, t6.CPU_ROWS[phone][0], "CPU")
    out: dict[str, Any] = {}
    for held in rows:
        keep = {n: r for n, r in rows.items() if n != held}
        sub = folder / f"loo-{phone}"
        sub.mkdir(exist_ok=True)
        for n in rows:
            link = sub / t6.model_file(n)
            if not link.exists():
                link.symlink_to(folder / t6.model_file(n))
        csv_path = t6.write_timings(sub, phone, keep)
        # the held-out model's CPU row is left out too: nothing measured on it is seen
        cpu_keep = {n: r for n, r in cpu_rows.items() if n != held}
        cpu_path = t6.write_timings(sub, phone, cpu_keep, "cpu_timings")
        bundle = tflat.add_device(
            phone, gpu=gpu, timings=csv_path, usc=usc, cpu_timings=cpu_path
        ).bundle
        # as `tflat estimate` prices it: refused ops on the bundle's (borrowed) CPU rates
        est = tflat.estimate_with(
            tflat.read_model(folder / t6.model_file(held)), tflat.Predictor(bundle)
        )
        paper = float(rows[held]["latency_ms"])
        out[held] = {
            "paper_ms": paper,
            "estimate_ms": est.total_ms,
            "low_ms": est.total_low_ms,
            "high_ms": est.total_high_ms,
            "cpu_fallback_ms": est.cpu_ms,
            "error_pct": (est.total_ms / paper - 1) * 100,
            "loo_mape_pct_of_the_six": bundle["provenance"]["transfer"]["loo_mape_pct"],
            "paper_cpu_ms": float(cpu_rows[held]["latency_ms"]) if held in cpu_rows else None,
        }
        print(
            f"{phone:10s} {held:20s} paper {paper:6.1f} ms  estimate {est.total_ms:6.2f} ms "
            f"({out[held]['error_pct']:+6.1f} %)  80 % interval {est.total_low_ms:.1f}-"
            f"{est.total_high_ms:.1f}  on the CPU {est.cpu_ms:.1f} ms",
            flush=True,
        )
    return out


def write_md(payload: dict[str, Any], out: Path) -> None:
    lines = [
        "# pixel7 and galaxy-s23 from Table 6 of the MobileNetV4 paper, one timing left out",
        "",
        f"Command: `{payload['command'].strip()}` ({payload['seconds']:.0f} s)",
        "",
        "Each row: `tflat device add` on the other six published GPU timings of the phone "
        "(sources: the six USC phones) and the other six CPU rows (`--cpu-timings`: the S23's, "
        "the Pixel 6's for the Pixel 7), then the left-out model estimated with that bundle "
        "as `tflat estimate` does (refused ops on the CPU rates the bundle borrows).",
        "",
        "| phone | model | paper ms | estimate ms | error | 80 % interval | inside "
        "| of it on the CPU | CPU row ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for phone, res in payload["phones"].items():
        for model, r in res.items():
            inside = r["low_ms"] <= r["paper_ms"] <= r["high_ms"]
            lines.append(
                f"| {phone} | {model} | {r['paper_ms']:.1f} | {r['estimate_ms']:.2f} | "
                f"{r['error_pct']:+.1f} % | {r['low_ms']:.1f}-{r['high_ms']:.1f} | "
                f"{'yes' if inside else 'no'} | {r.get('cpu_fallback_ms', 0.0):.2f} | "
                f"{r['paper_cpu_ms'] if r.get('paper_cpu_ms') else '-'} |"
            )
    lines.append("")
    for phone, res in payload["phones"].items():
        ok = sum(abs(r["error_pct"]) <= 20 for r in res.values())
        inside = sum(r["low_ms"] <= r["paper_ms"] <= r["high_ms"] for r in res.values())
        mape = sum(abs(r["error_pct"]) for r in res.values()) / len(res)
        lines.append(
            f"- {phone}: {ok} of {len(res)} within ±20 % (target 6 of 7), MAPE {mape:.1f} %, "
            f"80 % interval holds the paper's figure for {inside} of {len(res)}"
        )
    lines += ["", *NOTES.strip("\n").splitlines()]
    (out / "table6_transfer.md").write_text("\n".join(lines) + "\n")


NOTES = """
## Notes

The target (6 of 7 within ±20 % on each phone) is not met: 5 of 7 on both.

On main's partition (only the largest partition is delegated, per-backend support checks:
gpu/support.py) Keras's ConvNeXt-S runs 584 of its 599 ops on the CPU under the TFLite 2.10
GPU delegate rules tflat partitions with: 36 GELU (no GPU kernel in 2.10), 36 grouped
convolutions with one channel per group, 40 matrix-vector MULs of the layer norms, and the
partitions these split off. The transfer prices GPU kernels only, so `device add` now leaves a
timed model the delegate splits out of the fit (named on a line of its own and kept in the
bundle's provenance as `transfer.not_fitted`). Measured on these rows:

- before main's pricing (first round): pixel7 5 of 7 (MBv2-0.5x +27 %, ConvNeXt-S +47 %),
  galaxy-s23 5 of 7 (MBv1 +30 %, ConvNeXt-S -37 %);
- main's pricing, ConvNeXt-S fitted: pixel7 4 of 7 (MBv2-0.5x +36 %, ConvNeXt-S -55 %),
  galaxy-s23 4 of 7 (MBv1 +29 %, MBv2-2.0x -24 %, ConvNeXt-S -78 %);
- main's pricing, ConvNeXt-S not fitted (the table above): pixel7 5 of 7 (MBv2-0.5x +23 %,
  ConvNeXt-S -55 %), galaxy-s23 5 of 7 (MBv1 +29 %, ConvNeXt-S -78 %);
- the shipped bundles (all seven given), leave-one-timing-out MAPE: pixel7 13.7 % (first
  round), 18.9 % (ConvNeXt-S fitted), 11.0 % (not fitted); galaxy-s23 12.6 / 26.7 / 10.5 %.

- ConvNeXt-S: the paper's own rows say its GPU run took (nearly) the whole graph: on the same
  Samsung S23, GPU 18.5 ms against CPU 243.9 ms (Pixel 7 GPU 45.2 ms, Pixel 6 CPU 314.9 ms).
  Under the 2.10 rules tflat estimates it as a CPU run. Until the bundles had CPU rates, the
  refused kernels were priced by the learned GPU pricer (basis `cpu`): 20.6 / 4.1 ms, far
  from any reading. Now `device add` gives a transferred phone CPU rates borrowed from its
  sources (tflat.devices.borrowed), and the table's CPU rows (`--cpu-timings`: the S23's own,
  the Pixel 6's for the Pixel 7) set their level; with the held-out model's CPU row left out
  too (the table above) ConvNeXt-S costs 113.6 / 84.4 ms, 105.6 / 82.7 of it on the CPU:
  between the paper's GPU and CPU runs, and 2.9x under the CPU row, outside the 80 %
  interval. The borrowed per-op shape (GEMM vs streaming rates) prices ConvNeXt's ops low
  against the MobileNets' CPU rows, and one level fitted on MobileNets cannot see it. The
  shipped bundles fit all seven CPU rows (leave-one-CPU-row-out MAPE 27.2 / 28.3 %, the
  ConvNeXt-S row +1.08 / +1.07 in log); their CPU band is about x0.6..x3.0 (matrix
  products) and x0.6..x5.1 (other ops). The MobileNet rows move by 0.01-0.06 ms (their few
  unmeasured GPU kernels now priced by the borrowed analytic rates); the MAPE lines above
  rise with the ConvNeXt-S row alone. The paper does not name its GPU
  runtime or its version, nor how its classifiers were exported (for detection it names
  TensorFlow Model Garden implementations), so no fact says which delegate rule set to give
  these two bundles; they keep the 2.10 rules. A later gpu_compatibility.cc lists GELU among
  the one-input element-wise ops it takes and has no group check for CONV_2D, but keeps the
  MUL check the layer norm's matrix-vector MUL fails ((1, 56, 56, 1) x (1, 1, 1, 96), both
  at run time), so even that delegate would split Keras's graph.
- MobileNet-V2-0.5x on pixel7: the other timings put a floor of about 7.5 ms under every
  model (MobileNet-V1 13.0, V2 13.6, V2-1.5x 16.4, V2-2.0x 19.1 ms grow by 2.7 ms per width
  step); the 0.5x runs at 8.3 ms, under that line.
- MobileNet-V1 on galaxy-s23: the paper has it faster than MobileNet-V2 (2.1 vs 2.5 ms) with
  twice the FLOPs in 1x1 convolutions; the USC phones have the two within 2 % of each other,
  and the other timings do not separate the 1x1 and depthwise classes enough.

Tried in the first round and not kept (5 of 7 both, or worse): a cost per unlisted kernel and
per MB instead of the copy-kernel class; a robust (soft L1) loss; a per-kernel launch class.
The shipped pixel7 and galaxy-s23 bundles (python scripts/build_table6.py) fit the six
MobileNets (ConvNeXt-S's timing kept in provenance); their 80 % intervals are about ±22 %.
"""


def main() -> int:
    from tflat.datasets.usc import default_folder

    usc = default_folder()
    ap = argparse.ArgumentParser()
    ap.add_argument("--usc", type=Path, default=usc)
    ap.add_argument(
        "--published", type=Path, default=usc.parent / "published" / "published_tables.csv"
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--md-only", action="store_true", help="rewrite the .md from the .json")
    args = ap.parse_args()
    if args.md_only:
        write_md(json.loads((args.out / "table6_transfer.json").read_text()), args.out)
        return 0
    t0 = time.perf_counter()
    phones = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t6.build_models(folder)
        for phone in t6.PHONES:
            phones[phone] = run_phone(phone, folder, args.published, args.usc)
    payload = {
        "command": "python benchmarks/table6_transfer.py " + " ".join(sys.argv[1:]),
        "seconds": time.perf_counter() - t0,
        "phones": phones,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table6_transfer.json").write_text(json.dumps(payload, indent=1) + "\n")
    write_md(payload, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
