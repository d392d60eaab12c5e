"""How fast are ``tflat inspect`` and ``tflat estimate`` on a 10,000-op model? Target: under 5 s
each as a fresh CLI process, table to an 80-column pipe (the slowest output: every row laid out).

The model is written with tflat's own writer (the MobileNet-like chain of
``estimate_speed.py``: conv + relu + depthwise + add blocks, fp16 weights behind DEQUANTIZE).
Each command runs ``--runs`` times as a fresh process; the in-process stages (read, estimate,
render) are timed on their own to show where the time goes.

    python benchmarks/large_model_speed.py [--ops 10000] [--runs 3]

Prints a summary and writes benchmarks/results/large_model_speed.{json,md}. This machine is
shared and noisy: the minimum over runs is the figure to compare (wall time and the child's CPU
time, user + system); the median is shown beside it.
"""

from __future__ import annotations

import argparse
import io
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

from estimate_speed import build_model

RESULTS = Path(__file__).parent / "results"
TARGET_S = 5.0

COMMANDS: dict[str, list[str]] = {
    "inspect (table)": ["inspect", "{model}"],
    "inspect --format json": ["inspect", "{model}", "--format", "json"],
    "estimate (table)": ["estimate", "{model}"],
    "estimate --format csv": ["estimate", "{model}", "--format", "csv"],
    "estimate --format json": ["estimate", "{model}", "--format", "json"],
    "estimate --format html": ["estimate", "{model}", "--format", "html"],
    "estimate -d pixel4 -d s10 (table)": ["estimate", "{model}", "-d", "pixel4", "-d", "s10"],
}


def time_command(argv: list[str], runs: int) -> dict[str, float]:
    exe = shutil.which("tflat")
    cmd = [exe] if exe else [sys.executable, "-c", "from tflat.cli import main; main()"]
    env = {**os.environ, "COLUMNS": "80"}
    wall, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(
            [*cmd, *argv], check=True, timeout=300, capture_output=True, text=True, env=env
        )
        wall.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    widest = max((len(line) for line in done.stdout.splitlines()), default=0)
    return {
        "wall_min_s": min(wall),
        "wall_median_s": statistics.median(wall),
        "cpu_min_s": min(cpu),
        "runs": runs,
        "stdout_lines": done.stdout.count("\n"),
        "widest_line_chars": widest,
    }


def time_stages(model: Path, runs: int) -> dict[str, float]:
    """In process, after one warm-up: read, estimate with a loaded predictor, render a table."""
    from rich.console import Console

    import tflat
    from tflat.report import estimate_text, inspect

    predictor = tflat.load_predictor("pixel4")
    samples: dict[str, list[float]] = {}

    def timed(name: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        out = fn()
        samples.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    for _ in range(runs + 1):
        graph = timed("read_model", lambda: tflat.read_model(model))
        est = timed("estimate_with (pixel4)", lambda g=graph: tflat.estimate_with(g, predictor))
        for name, renderable in (
            ("render inspect table", lambda g=graph: inspect.to_table(g)),
            ("render estimate table", lambda e=est: estimate_text.to_table([e])),
        ):
            console = Console(file=io.StringIO(), width=80, color_system=None)
            timed(name, lambda r=renderable, c=console: c.print(r()))
    return {name: min(v[1:]) for name, v in samples.items()}  # the first run warms up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    import tflat

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / f"chain_{args.ops}.tflite"
        t0 = time.perf_counter()
        model.write_bytes(build_model(args.ops))
        write_s = time.perf_counter() - t0
        n_ops = len(tflat.read_model(model).ops)
        commands = {
            name: time_command([a.format(model=model) for a in argv], args.runs)
            for name, argv in COMMANDS.items()
        }
        stages = time_stages(model, args.runs)
        size = model.stat().st_size
    result = {
        "benchmark": "large_model_speed",
        "command": f"python benchmarks/large_model_speed.py --ops {args.ops} --runs {args.runs}",
        "statistic": "minimum over runs (wall and child CPU time); median beside it",
        "target_s": TARGET_S,
        "model": {
            "ops": n_ops,
            "bytes": size,
            "written_by": "tflat.model.writer",
            "write_s": write_s,
        },
        "fresh_process": commands,
        "in_process_min_s": stages,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "tflat_version": tflat.__version__,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "large_model_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# inspect and estimate on a {n_ops:,}-op model",
        "",
        f"Command: `{result['command']}`. Model written by tflat's writer ({size / 1e6:.1f} MB). "
        f"Statistic: {result['statistic']}. COLUMNS=80, output to a pipe. Target: under "
        f"{TARGET_S:g} s as a fresh process.",
        "",
        "| command (fresh process) | wall min s | wall median s | CPU min s | widest line |",
        "|---|---|---|---|---|",
    ]
    for name, r in commands.items():
        lines.append(
            f"| `tflat {name}` | {r['wall_min_s']:.2f} | {r['wall_median_s']:.2f} | "
            f"{r['cpu_min_s']:.2f} | {r['widest_line_chars']} chars |"
        )
    lines += ["", "| stage (in process, min) | s |", "|---|---|"]
    lines += [f"| {name} | {s:.3f} |" for name, s in stages.items()]
    (RESULTS / "large_model_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    slow = [n for n, r in commands.items() if r["wall_min_s"] >= TARGET_S]
    if slow:
        print(f"over {TARGET_S:g} s: {', '.join(slow)}", file=sys.stderr)


if __name__ == "__main__":
    main()
