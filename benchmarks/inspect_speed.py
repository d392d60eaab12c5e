"""How fast ``tflat inspect`` runs in-process, now that it resolves every tensor's shape.

The target (issue 13): inspecting a ~300-op model stays under 100 ms in-process. For each
model this times the whole command as the CLI runs it (``tflat.cli.main(["inspect", MODEL,
"-o", FILE])``: parse, read, resolve shapes, render the table, write it) and, apart, the read
alone (``tflat.read_model``, shape resolution included), and records the minimum and the
median of ``--repeat`` runs:

    python benchmarks/inspect_speed.py                 # the models below
    python benchmarks/inspect_speed.py --repeat 30 MODEL.tflite ...

The default models: three written here with tflat's writer (MobileNetV3-Large, 163 ops, static;
the same network and DenseNet-121, 491 ops, stored as a dynamic-batch converter stores them,
every computed shape 1 and -1 so all of them must be inferred), plus the ~300-op models of the
fetched corpus (``scripts/fetch_models.py``) when present. Results go to
benchmarks/results/inspect_speed.{json,md}. This machine is shared and noisy: the minimum is
the figure least disturbed by other load, and it is the one held against the target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGET_MS = 100.0
#: ~300-op models of the fetched corpus, one with a dynamic batch and shape arithmetic.
CORPUS = ("pose_landmark_full.tflite", "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite")


def written_models(folder: Path) -> list[Path]:
    from tflat.model import zoo
    from tflat.model.layers import GraphBuilder

    out = []
    for arch, signature, blank in (
        ("mobilenetv3_large", None, False),
        ("mobilenetv3_large", (-1, 224, 224, 3), True),
        ("densenet121", (-1, 224, 224, 3), True),
    ):
        b = GraphBuilder(seed=0)
        x = b.input((1, 224, 224, 3), signature=signature)
        b.output(zoo.ARCHITECTURES[arch](b, x))
        path = folder / f"written_{arch}_{'dynamic_batch' if blank else 'static'}.tflite"
        path.write_bytes(b.to_bytes(blank_shapes=blank))
        out.append(path)
    return out


def corpus_models() -> list[Path]:
    cache = os.environ.get("TFLAT_MODEL_CACHE")
    if cache is None:
        from platformdirs import user_cache_dir

        cache = str(Path(user_cache_dir("tflat")) / "models")
    found = {p.name: p for p in Path(cache).glob("**/*.tflite")}
    return [found[name] for name in CORPUS if name in found]


def time_ms(fn: Callable[[], Any], repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (this process) milliseconds of each call: wall is what a user waits, CPU
    the figure least disturbed when other jobs share the cores."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - start_cpu) * 1e3)
        wall.append((time.perf_counter() - start) * 1e3)
    return wall, cpu


def measure(path: Path, repeat: int, out_file: Path) -> dict[str, Any]:
    import tflat
    from tflat.cli import main as cli

    graph = tflat.read_model(path)  # warm-up: schema tables, option layouts, rich
    if cli(["inspect", str(path), "-o", str(out_file)]) != 0:
        raise SystemExit(f"tflat inspect {path} failed")
    inspect, inspect_cpu = time_ms(lambda: cli(["inspect", str(path), "-o", str(out_file)]), repeat)
    read, _ = time_ms(lambda: tflat.read_model(path), repeat)
    computed = [t for op in graph.ops for t in op.outputs]
    return {
        "model": path.name,
        "ops": len(graph.all_ops),
        "outputs_with_dynamic_signature": sum(-1 in (t.shape_signature or ()) for t in computed),
        "unresolved_ops": sum(bool(op.unresolved) for op in graph.all_ops),
        "inspect_min_ms": round(min(inspect), 1),
        "inspect_median_ms": round(statistics.median(inspect), 1),
        "inspect_cpu_min_ms": round(min(inspect_cpu), 1),
        "read_min_ms": round(min(read), 1),
        "read_median_ms": round(statistics.median(read), 1),
        "under_target": min(inspect) < TARGET_MS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time tflat inspect in-process.")
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = args.models or [*written_models(folder), *corpus_models()]
        rows = [measure(p, args.repeat, folder / "inspect.txt") for p in paths]
    lines = [
        "| model | ops | outputs with -1 in the file | unresolved | inspect min ms "
        "| inspect median ms | inspect CPU min ms | read min ms | read median ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['ops']} | {r['outputs_with_dynamic_signature']} "
            f"| {r['unresolved_ops']} | {r['inspect_min_ms']} | {r['inspect_median_ms']} "
            f"| {r['inspect_cpu_min_ms']} | {r['read_min_ms']} | {r['read_median_ms']} |"
        )
    print("\n".join(lines))
    if not args.no_write:
        meta = {
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "repeat": args.repeat,
            "target_ms": TARGET_MS,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "statistic": "minimum of the runs (median beside it); wall time, in-process",
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "inspect_speed.json").write_text(
            json.dumps({"meta": meta, "models": rows}, indent=2) + "\n"
        )
        md = [
            "# tflat inspect speed (in-process, shapes resolved)",
            "",
            f"Python {meta['python']}, {meta['cpus']} CPUs shared with other jobs, "
            f"{args.repeat} runs per model, {meta['when']}. Target: under {TARGET_MS:.0f} ms "
            "for a ~300-op model (the minimum). `inspect` is the whole command in-process "
            "(`tflat.cli.main`, table written to a file); `read` is `tflat.read_model` alone. "
            "Written by `python benchmarks/inspect_speed.py`.",
            "",
            *lines,
            "",
        ]
        (RESULTS / "inspect_speed.md").write_text("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
