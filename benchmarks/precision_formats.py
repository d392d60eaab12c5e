"""One network in every weight format users ship, estimated on the six phones; and the CPU's
(de)quantize rate the GPU delegate pays for int8 graph inputs and outputs.

Why: an fp16-weight or int8 file runs the same GPU program as the fp32 file, give or take the
work at its edges (tflat.gpu.precision); the estimate must say so. Issue 18's targets, per
phone: fp16-weight / fp32 within +-2 %, full-int8 / fp32 between 0.98 and 1.3, and
``--precision fp32`` at least the default (fp16) total.

    python benchmarks/precision_formats.py [--rounds 30]

Networks: the zoo's MobileNetV2 and MobileNet v1 (its FULLY_CONNECTED head shows what becomes
of a hybrid op above the delegate's version limit), written in each of tflat.WEIGHT_FORMATS
with one seed. The rate: LiteRT's builtin QUANTIZE + DEQUANTIZE kernels (optimized_ops, no
XNNPACK: host-cpu's ``cpu`` delegate setting, one thread) over a 1x224x224x3 tensor minus a
1x1x1x3 one; the minimum over rounds of 100 invokes each (this shared machine is noisy:
repeated runs gave 0.17 ns when quiet, up to 0.25 ns under other work). Writes
benchmarks/results/precision_formats.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import tflat
from tflat import WEIGHT_FORMATS as FORMATS

RESULTS = Path(__file__).resolve().parent / "results"
NETWORKS = ("mobilenetv2", "mobilenet")


def ratios(folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arch in NETWORKS:
        paths = {}
        for fmt in FORMATS:
            paths[fmt] = folder / f"{arch}_{fmt}.tflite"
            paths[fmt].write_bytes(tflat.build_in_format(arch, fmt))
        per_device = {}
        for dev in tflat.USC_DEVICES:
            ms = {f: tflat.estimate(p, device=dev).total_ms for f, p in paths.items()}
            fp32_math = tflat.estimate(paths["fp32"], device=dev, precision="fp32")
            per_device[dev] = {
                "total_ms": ms,
                "ratio_to_fp32_file": {f: ms[f] / ms["fp32"] for f in FORMATS},
                "fp32_math_ms": fp32_math.total_ms,
                "fp32_math_ratio": fp32_math.total_ms / ms["fp32"],
                "fp32_math_interval_ms": [fp32_math.total_low_ms, fp32_math.total_high_ms],
            }
        out[arch] = per_device
    return out


def _qdq_model(shape: tuple[int, ...], path: Path) -> None:
    b = tflat.GraphBuilder()
    x = b.input(shape)
    b.output(b.dequantize(b.quantize(x)))
    path.write_bytes(b.to_bytes())


def _min_invoke_us(runner: Any, path: Path, rounds: int) -> float:
    """The minimum over ``rounds`` of 100 invokes each (after 20 untimed)."""
    settings = tflat.RunSettings(delegate="cpu", threads=1, warmup=20, repeats=100)
    mins = []
    for _ in range(rounds):
        m = runner.measure(path, settings)
        if not m.ok:
            raise SystemExit(f"{path.name}: {m.status}: {m.error}")
        mins.append(m.min_ms * 1e3)
    return min(mins)


def cpu_rate(folder: Path, rounds: int) -> dict[str, float]:
    big, small = (1, 224, 224, 3), (1, 1, 1, 3)
    _qdq_model(big, folder / "qdq_big.tflite")
    _qdq_model(small, folder / "qdq_small.tflite")
    with tflat.get_runner("host-cpu") as runner:
        t_big = _min_invoke_us(runner, folder / "qdq_big.tflite", rounds)
        t_small = _min_invoke_us(runner, folder / "qdq_small.tflite", rounds)
    elements = int(np.prod(big)) - int(np.prod(small))
    # two conversions per element: QUANTIZE (float -> int8) and DEQUANTIZE (int8 -> float)
    return {
        "big_us": t_big,
        "small_us": t_small,
        "ns_per_element": (t_big - t_small) * 1e3 / (2 * elements),
        "rounds": rounds,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Weight formats and GPU math precision on the six phones",
        "",
        "Command: `python benchmarks/precision_formats.py` (estimates are deterministic; the CPU",
        "rate is the minimum over rounds of 100 invokes each).",
        "",
        "Ratios of each file's estimated total to the fp32 file's, at each device's measured",
        "precision (fp16 math); `fp32 math` is `--precision fp32` on the fp32 file over the",
        "default. Targets (issue 18): fp16 within 0.98-1.02, int8 0.98-1.3, fp32 math >= 1.",
        "",
    ]
    for arch, per_device in result["ratios"].items():
        lines += [f"## {arch}", ""]
        head = "| device | fp32 ms | " + " | ".join(FORMATS[1:]) + " | fp32 math | interval |"
        lines += [head, "|---" * (len(FORMATS) + 3) + "|"]
        for dev, r in per_device.items():
            cells = [f"{r['ratio_to_fp32_file'][f]:.4f}" for f in FORMATS[1:]]
            lo, hi = r["fp32_math_interval_ms"]
            lines.append(
                f"| {dev} | {r['total_ms']['fp32']:.3f} | " + " | ".join(cells)
                + f" | {r['fp32_math_ratio']:.3f} | {lo:.2f}-{hi:.2f} ms |"
            )  # fmt: skip
        lines.append("")
    lines += [
        "Reading: fp16 weights fold at load (same kernels, same features: 1.0000); int8 runs",
        "in float, plus its QUANTIZE/DEQUANTIZE kernels (float I/O) or the CPU conversion of",
        "its int8 input and output (int8_io); int8_weights pays a weights converter per",
        "convolution and loses Winograd. dynamic: MobileNetV2's hybrid ops all run on the GPU;",
        "MobileNet v1's per-channel hybrid FULLY_CONNECTED (version 12) runs on the CPU, priced",
        "by the bundles' term for kernels outside the op-level data, which makes it cheaper",
        "than on the GPU: CPU fallback has no CPU model yet (issue 17).",
        "",
    ]
    rate = result["cpu_rate"]
    lines += [
        "## CPU (de)quantize rate (this machine, a stand-in for a phone's big core)",
        "",
        f"Minimum over {rate['rounds']} rounds of 100 invokes each.",
        "",
        f"QUANTIZE + DEQUANTIZE of 1x224x224x3: {rate['big_us']:.1f} us; of 1x1x1x3: "
        f"{rate['small_us']:.1f} us; **{rate['ns_per_element']:.2f} ns per element** per "
        "conversion (`cpu_ns_per_element` in gpu/rules/tflite_gpu_precision.toml).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    # every fp32-math estimate warns that it is extrapolated: the table below says it once
    logging.getLogger("tflat").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result = {"ratios": ratios(folder), "cpu_rate": cpu_rate(folder, args.rounds)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "precision_formats.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (RESULTS / "precision_formats.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
