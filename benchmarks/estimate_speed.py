"""How fast is ``tflat estimate``? Targets: a ~300-op model in under 1 s as a fresh CLI process,
and under 50 ms in process once the predictor is loaded (its load is timed on its own).

The model is built here with tflat's own writer (fp16 weights behind DEQUANTIZE, as converted
models have), so the benchmark needs no download: ~43 blocks of conv + relu + depthwise + add.

    python benchmarks/estimate_speed.py [--device pixel4] [--ops 300] [--runs 5]

Prints a summary and writes benchmarks/results/estimate_speed.{json,md}. This machine is shared
and noisy: the minimum over runs is the figure to compare, the median is shown beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def build_model(target_ops: int) -> bytes:
    """A MobileNet-like chain with at least ``target_ops`` ops."""
    import tflat

    b = tflat.GraphBuilder(seed=7, weights="float16", description="tflat speed benchmark model")
    x = b.input((1, 56, 56, 32))
    x = b.conv2d(x, 32, 3, activation="relu")  # 3 ops with its two DEQUANTIZE
    n_ops = 3
    while n_ops < target_ops:
        y = b.conv2d(x, 32, 1)  # 3 ops
        y = b.unary("RELU", y)  # 1
        y = b.depthwise_conv2d(y, 3)  # 3
        x = b.add(x, y)  # 1
        n_ops += 8
    b.output(x)
    return b.to_bytes()


def stats(samples: list[float]) -> dict[str, float]:
    return {
        "min_ms": min(samples) * 1e3,
        "median_ms": statistics.median(samples) * 1e3,
        "max_ms": max(samples) * 1e3,
        "runs": len(samples),
    }


def time_cli(model: Path, device: str, runs: int, fmt: str) -> dict[str, float]:
    exe = shutil.which("tflat")
    cmd = [exe] if exe else [sys.executable, "-c", "from tflat.cli import main; main()"]
    samples, cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"out.{fmt}"
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(
                [*cmd, "estimate", str(model), "--device", device, "--format", fmt, "-o", str(out)],
                check=True,
                timeout=120,
                capture_output=True,
            )
            samples.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    # CPU time (user + system) of the child depends far less on the other jobs of a shared
    # machine than its wall time does.
    return stats(samples) | {
        "cpu_min_ms": min(cpu) * 1e3,
        "cpu_median_ms": statistics.median(cpu) * 1e3,
    }


def time_in_process(model: Path, device: str, runs: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    import tflat

    # the public names load their modules on first use: that is the import being timed
    read_model, estimate_with = tflat.read_model, tflat.estimate_with
    load_predictor = tflat.load_predictor
    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    predictor = load_predictor(device)
    load_s = time.perf_counter() - t0
    read_samples, est_samples = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        graph = read_model(model)
        read_samples.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        estimate = estimate_with(graph, predictor)
        est_samples.append(time.perf_counter() - t0)
    from tflat.report import estimate_text, html, overlay

    render: dict[str, dict[str, float]] = {}
    renderers = {
        "json": lambda: estimate_text.to_json([estimate]),
        "csv": lambda: estimate_text.to_csv([estimate]),
        "html": lambda: html.to_html([estimate]),
        "overlay": lambda: overlay.to_json(estimate),
    }
    for name, fn in renderers.items():
        samples = []
        for _ in range(max(3, runs // 4)):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        render[name] = stats(samples)
    return {
        "ops": len(graph.ops),
        "kernels": len(estimate.kernels),
        "total_ms_estimated": estimate.total_ms,
        "import_ms": import_s * 1e3,
        "predictor_load_ms": load_s * 1e3,
        "read_model": stats(read_samples),
        "estimate": stats(est_samples),
        "read_plus_estimate_min_ms": (min(read_samples) + min(est_samples)) * 1e3,
        "render": render,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="pixel4")
    ap.add_argument("--ops", type=int, default=300)
    ap.add_argument("--runs", type=int, default=5, help="fresh CLI processes")
    ap.add_argument("--inproc-runs", type=int, default=20)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "speed300.tflite"
        model.write_bytes(build_model(args.ops))
        inproc = time_in_process(model, args.device, args.inproc_runs)
        cli = {fmt: time_cli(model, args.device, args.runs, fmt) for fmt in ("table", "html")}
    result = {
        "benchmark": "estimate_speed",
        "device": args.device,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "targets": {"cli_fresh_process_ms": 1000, "in_process_estimate_ms": 50},
        "in_process": inproc,
        "cli_fresh_process": cli,
        "pass": {
            "cli_under_1s": cli["table"]["min_ms"] < 1000,
            "in_process_under_50ms": inproc["read_plus_estimate_min_ms"] < 50,
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "estimate_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# estimate speed",
        "",
        f"Model: {inproc['ops']} ops ({inproc['kernels']} kernels), device {args.device}, "
        f"{result['when']}, shared 2-core machine, load average {os.getloadavg()[0]:.1f} "
        "(noisy: compare minimums; CPU time is the load-independent figure).",
        "",
        "| what | min ms | median ms | target |",
        "|---|---|---|---|",
        f"| fresh CLI process, table: wall | {cli['table']['min_ms']:.0f} | "
        f"{cli['table']['median_ms']:.0f} | < 1000 |",
        f"| fresh CLI process, table: CPU user+sys | {cli['table']['cpu_min_ms']:.0f} | "
        f"{cli['table']['cpu_median_ms']:.0f} | |",
        f"| fresh CLI process, html: wall | {cli['html']['min_ms']:.0f} | "
        f"{cli['html']['median_ms']:.0f} | < 1000 |",
        f"| fresh CLI process, html: CPU user+sys | {cli['html']['cpu_min_ms']:.0f} | "
        f"{cli['html']['cpu_median_ms']:.0f} | |",
        f"| predictor load (once) | {inproc['predictor_load_ms']:.1f} | | separate |",
        f"| read_model | {inproc['read_model']['min_ms']:.1f} | "
        f"{inproc['read_model']['median_ms']:.1f} | |",
        f"| estimate (predictor loaded) | {inproc['estimate']['min_ms']:.1f} | "
        f"{inproc['estimate']['median_ms']:.1f} | |",
        f"| read + estimate | {inproc['read_plus_estimate_min_ms']:.1f} | | < 50 |",
    ]
    for name, s in inproc["render"].items():
        md.append(f"| render {name} | {s['min_ms']:.1f} | {s['median_ms']:.1f} | |")
    (RESULTS / "estimate_speed.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
