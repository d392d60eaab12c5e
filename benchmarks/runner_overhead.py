"""What the host-cpu runner's child process costs: worker start-up and per-model round trip.

Prints the figures and writes benchmarks/results/runner_overhead.json. Timing on a shared
machine is noisy: the minimum over repetitions is reported next to the median.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import tflat

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "models" / "hand_recrop.tflite"
ROUNDS = 20


def main() -> None:
    starts = []
    for _ in range(3):
        runner = tflat.get_runner("host-cpu")
        t0 = time.perf_counter()
        runner.measure(MODEL, tflat.RunSettings(warmup=0, repeats=1))
        starts.append((time.perf_counter() - t0) * 1000)
        runner.close()
    runner = tflat.get_runner("host-cpu")
    runner.measure(MODEL, tflat.RunSettings(warmup=0, repeats=1))
    overhead = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        m = runner.measure(MODEL, tflat.RunSettings(warmup=1, repeats=5))
        wall = (time.perf_counter() - t0) * 1000
        assert m.ok and m.init_ms is not None
        overhead.append(wall - sum(m.samples_ms))
    runner.close()
    result = {
        "model": MODEL.name,
        "first_measure_with_worker_start_ms": {
            "min": min(starts),
            "median": statistics.median(starts),
        },
        "per_model_overhead_ms": {"min": min(overhead), "median": statistics.median(overhead)},
        "note": "per-model overhead = wall time of measure() minus timed invokes (includes "
        "interpreter creation, warm-up, JSON round trip)",
    }
    out = ROOT / "benchmarks" / "results" / "runner_overhead.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
