"""How fast ``tflat.read_model`` parses real models, in-process.

The target (issue 2): a 300-op model parses in well under 100 ms. For each model this times
repeated parses of the file's bytes (the file read once, outside the timing) and of the path
(read included), and prints and records the median and minimum:

    python benchmarks/reader_speed.py                  # vendored + fetched corpus
    python benchmarks/reader_speed.py --repeat 50 MODEL.tflite ...

The fetched corpus is what ``scripts/fetch_models.py`` stored (``TFLAT_MODEL_CACHE`` or the
user cache). Results go to benchmarks/results/reader_speed.{json,md}. Timings on a shared
machine are noisy: the minimum is the figure least disturbed by other load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import tflat

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def corpus() -> list[Path]:
    paths = sorted((ROOT / "tests" / "models").glob("*.tflite"))
    cache = os.environ.get("TFLAT_MODEL_CACHE")
    if cache is None:
        from platformdirs import user_cache_dir

        cache = str(Path(user_cache_dir("tflat")) / "models")
    seen = {p.name for p in paths}
    for p in sorted(Path(cache).glob("**/*.tflite")):
        if p.name not in seen:
            paths.append(p)
            seen.add(p.name)
    return paths


def time_ms(fn: Any, repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of each call. CPU time (this process only) is the figure
    least disturbed when other jobs share the cores; wall time is what a user waits."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - start_cpu) * 1e3)
        wall.append((time.perf_counter() - start) * 1e3)
    return wall, cpu


def measure(path: Path, repeat: int) -> dict[str, Any]:
    data = path.read_bytes()
    graph = tflat.read_model(data)  # warm-up: schema tables, option layouts
    from_bytes, cpu = time_ms(lambda: tflat.read_model(data), repeat)
    from_path, _ = time_ms(lambda: tflat.read_model(path), max(3, repeat // 4))
    return {
        "model": path.name,
        "size_bytes": len(data),
        "ops": len(graph.all_ops),
        "ops_main_subgraph": len(graph.ops),
        "subgraphs": len(graph.subgraphs),
        "parse_median_ms": round(statistics.median(from_bytes), 2),
        "parse_min_ms": round(min(from_bytes), 2),
        "parse_cpu_median_ms": round(statistics.median(cpu), 2),
        "parse_cpu_min_ms": round(min(cpu), 2),
        "with_read_median_ms": round(statistics.median(from_path), 2),
        "us_per_op_min": round(1e3 * min(from_bytes) / max(len(graph.all_ops), 1), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time tflat.read_model on real models.")
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    paths = args.models or corpus()
    rows = [measure(p, args.repeat) for p in paths]
    rows.sort(key=lambda r: int(r["ops"]))
    header = (
        "| model | ops | size | parse median ms | parse min ms | parse CPU median ms "
        "| with read median ms |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['ops']} | {int(r['size_bytes']) / 1e6:.2f} MB "
            f"| {r['parse_median_ms']} | {r['parse_min_ms']} | {r['parse_cpu_median_ms']} "
            f"| {r['with_read_median_ms']} |"
        )
    print("\n".join(lines))
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        meta = {
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "repeat": args.repeat,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "note": "shared machine under load from other jobs: medians are noisy, minima less so",
        }
        (RESULTS / "reader_speed.json").write_text(
            json.dumps({"meta": meta, "models": rows}, indent=2) + "\n"
        )
        md = [
            "# tflat.read_model speed",
            "",
            f"Python {meta['python']}, {meta['cpus']} CPUs shared with other jobs, "
            f"{args.repeat} parses per model, {meta['when']}. "
            "Written by `python benchmarks/reader_speed.py`.",
            "",
            *lines,
            "",
        ]
        (RESULTS / "reader_speed.md").write_text("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
