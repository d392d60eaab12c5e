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
        bundle = tflat.add_device(phone, gpu=gpu, timings=csv_path, usc=usc).bundle
        gp = tflat.Predictor(bundle).predict_graph(tflat.read_model(folder / t6.model_file(held)))
        paper = float(rows[held]["latency_ms"])
        out[held] = {
            "paper_ms": paper,
            "estimate_ms": gp.total_ms,
            "low_ms": gp.total_low_ms,
            "high_ms": gp.total_high_ms,
            "error_pct": (gp.total_ms / paper - 1) * 100,
            "loo_mape_pct_of_the_six": bundle["provenance"]["transfer"]["loo_mape_pct"],
        }
        print(
            f"{phone:10s} {held:20s} paper {paper:6.1f} ms  estimate {gp.total_ms:6.2f} ms "
            f"({out[held]['error_pct']:+6.1f} %)  80 % interval {gp.total_low_ms:.1f}-"
            f"{gp.total_high_ms:.1f}",
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
        "(sources: the six USC phones), then the left-out model estimated with that bundle.",
        "",
        "| phone | model | paper ms | estimate ms | error | 80 % interval | inside |",
        "|---|---|---|---|---|---|---|",
    ]
    for phone, res in payload["phones"].items():
        for model, r in res.items():
            inside = r["low_ms"] <= r["paper_ms"] <= r["high_ms"]
            lines.append(
                f"| {phone} | {model} | {r['paper_ms']:.1f} | {r['estimate_ms']:.2f} | "
                f"{r['error_pct']:+.1f} % | {r['low_ms']:.1f}-{r['high_ms']:.1f} | "
                f"{'yes' if inside else 'no'} |"
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

The target (6 of 7 within ±20 % on each phone) is not met: 5 of 7 on both. The misses:

- MobileNet-V2-0.5x on pixel7: the other six timings put a floor of about 7.5 ms under every
  model (MobileNet-V1 13.0, V2 13.6, V2-1.5x 16.4, V2-2.0x 19.1 ms grow by 2.7 ms per width
  step); the 0.5x runs at 8.3 ms, well under that line. Nothing in the other six says so.
- ConvNeXt-S on both phones, in opposite directions (pixel7 over, galaxy-s23 under): it is
  the only network of the seven with Dense layers on images (73 FULLY_CONNECTED kernels over
  56x56 to 7x7 grids), layer norms (83 channel MEANs, 206 element-wise kernels) and GELU
  (refused by the TFLite 2.10 rules tflat partitions with); from six MobileNets its cost
  relative to them is an extrapolation the sources answer differently on the two phones.
- MobileNet-V1 on galaxy-s23: the paper has it faster than MobileNet-V2 (2.1 vs 2.5 ms) with
  twice the FLOPs in 1x1 convolutions; the USC phones have the two within 2 % of each other,
  and the six other timings do not separate the 1x1 and depthwise classes enough.

Tried on these 14 figures and not kept (5 of 7 both, or worse): a cost per unlisted kernel and
per MB instead of the copy-kernel class; a robust (soft L1) loss; a per-kernel launch class.
Distilling without Dense-on-image kernels in the corpus made ConvNeXt-S on pixel7 land at
-18 % (6 of 7) only because the bundle then under-priced those kernels on its own; kept the
faithful distillation (see device_transfer.md). The shipped pixel7 and galaxy-s23 bundles use
all seven timings (leave-one-timing-out MAPE 13.7 % and 12.6 %; their 80 % intervals are about
±30 %).
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
