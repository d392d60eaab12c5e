"""What one more interpreter node costs on host-cpu, delegated to XNNPACK or not.

Why: the int8 wake-word models (alexa, hey_jarvis, ...) are 4-7 µs streaming graphs with about
20 bookkeeping ops (resource variables) that XNNPACK does not take and that split the graph into
many delegate partitions; tflat prices those ops at 0. This measures, on tiny tensors, what an
extra node costs inside one partition, across partitions, and as a TFLite builtin kernel.

    python benchmarks/node_dispatch.py [--nodes 16] [--rounds 15]

Chains on a 1x1x1x8 float tensor: ADD (taken by XNNPACK) and EXP (not taken: a builtin kernel).
Statistic: minimum of 200 invokes per round, median over rounds (µs). Writes
benchmarks/results/node_dispatch.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import tflat

RESULTS = Path(__file__).resolve().parent / "results"


def build(pattern: list[str], path: Path) -> None:
    """A chain of ``pattern`` ops ("add": ADD of a constant, "exp": EXP) on a 1x1x1x8 input."""
    g = tflat.GraphBuilder()
    x = g.input([1, 1, 1, 8])
    c = g.constant(np.full((1, 1, 1, 8), 0.01, np.float32))
    for kind in pattern:
        if kind == "exp":
            out = g._activation_like(x.shape, x, "none", op="EXP")
            g._op("EXP", [x], [out])
            x = out
        else:
            x = g.add(x, c)
    g.output(x)
    path.write_bytes(g.to_bytes())


def timed(path: Path, rounds: int) -> float:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], np.zeros((1, 1, 1, 8), np.float32))
    mins = []
    for _ in range(rounds):
        for _ in range(50):
            it.invoke()
        ts = []
        for _ in range(200):
            start = time.perf_counter_ns()
            it.invoke()
            ts.append(time.perf_counter_ns() - start)
        mins.append(min(ts) / 1e3)
    return float(np.median(mins))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    n = args.nodes
    cases = {
        "1 ADD (one partition)": ["add"],
        f"{n} ADD (one partition)": ["add"] * n,
        f"{n // 2} ADD alternating with {n // 2} EXP ({n // 2} partitions)": ["add", "exp"]
        * (n // 2),
        f"{n} EXP (builtin, no partition)": ["exp"] * n,
        "1 EXP (builtin)": ["exp"],
    }
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, pattern) in enumerate(cases.items()):
            path = Path(tmp) / f"case{i}.tflite"
            build(pattern, path)
            out[name] = timed(path, args.rounds)
            print(f"{name:50s} {out[name]:.3f} µs")
    one = out["1 ADD (one partition)"]
    per_node = {k: (v - one) / (n - 1) for k, v in out.items() if k.startswith(str(n))}
    load = os.getloadavg()[0]
    payload = {"nodes": n, "rounds": args.rounds, "us": out, "per_extra_node_us": per_node,
               "load_average": load,
               "statistic": "min of 200 invokes per round, median over rounds"}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "node_dispatch.json").write_text(json.dumps(payload, indent=1) + "\n")
    lines = [
        "# Interpreter node cost on host-cpu",
        "",
        f"Command: `python benchmarks/node_dispatch.py --nodes {n} --rounds {args.rounds}`; "
        f"load average {load:.1f}. Statistic: {payload['statistic']}.",
        "",
        "| chain | µs |",
        "|---|---:|",
        *[f"| {k} | {v:.3f} |" for k, v in out.items()],
        "",
        "Per extra node over one ADD: "
        + ", ".join(f"{k}: {v * 1e3:.0f} ns" for k, v in per_node.items()),
    ]
    (RESULTS / "node_dispatch.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
