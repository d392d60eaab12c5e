"""How fast `tflat generate` writes the whole seed grid, and how much disk it takes.

Generates every spec of the shipped ``seed-grid`` plan (5760 CONV_2D models, each read back
and checked against its spec) into a temporary folder, prints models per second and bytes on
disk, and writes ``benchmarks/results/generate_speed.json``. A second pass over the same
folder measures the re-run (everything skipped). Timings on a shared machine are noisy.

    python benchmarks/generate_speed.py [--plan seed-grid] [--sample N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import tflat

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", default="seed-grid")
    parser.add_argument("--sample", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="Generate here and keep it.")
    args = parser.parse_args()

    t0 = time.perf_counter()
    specs = tflat.load_plan(args.plan).expand(sample=args.sample).specs
    expand_s = time.perf_counter() - t0
    out = args.keep or Path(tempfile.mkdtemp(prefix="tflat-generate-"))
    try:
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        report = tflat.generate(specs, out)
        wall_s = time.perf_counter() - t0
        cpu_s = time.process_time() - cpu0
        t0 = time.perf_counter()
        rerun = tflat.generate(specs, out)
        rerun_s = time.perf_counter() - t0
        sizes = [f.stat().st_size for f in out.rglob("*.tflite")]
        on_disk = sum(sizes)
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    result = {
        "plan": args.plan,
        "specs": len(specs),
        "written": report.written,
        "failed": len(report.failed),
        "expand_s": round(expand_s, 3),
        "generate_wall_s": round(wall_s, 2),
        "generate_cpu_s": round(cpu_s, 2),
        "models_per_s": round(report.written / wall_s, 1) if wall_s else None,
        "rerun_skipped": rerun.skipped,
        "rerun_wall_s": round(rerun_s, 2),
        "bytes_on_disk": on_disk,
        "models_on_disk": len(sizes),
        "mean_model_bytes": round(on_disk / len(sizes)) if sizes else 0,
        "largest_model_bytes": max(sizes, default=0),
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "ai_edge_litert": version("ai-edge-litert"),
            "numpy": version("numpy"),
            "flatbuffers": version("flatbuffers"),
            "note": "shared machine (2 cores, several users): wall times are noisy",
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(
        f"{args.plan}: {report.written} models in {wall_s:.1f} s "
        f"({result['models_per_s']} models/s, cpu {cpu_s:.1f} s), {len(report.failed)} failed, "
        f"{on_disk / 1e6:.1f} MB on disk (mean {result['mean_model_bytes'] / 1e3:.1f} kB); "
        f"re-run skipped {rerun.skipped} in {rerun_s:.1f} s"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = (
        "generate_speed.json"
        if args.sample is None and args.plan == "seed-grid"
        else (f"generate_speed_{args.plan}_{args.sample or 'all'}.json")
    )
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
