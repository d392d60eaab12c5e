"""tflat's resolved shapes and FLOPs against LiteRT's, model by model (issue 13's check).

For each model: LiteRT resizes the inputs (when a shape is given), allocates, runs one
``invoke()`` on random inputs with its default delegates off, and reports every tensor's shape
(tests/litert_shapes.py, the helper the tests use).
tflat reads the same model with the same input shapes. Counted: ops whose output element count
differs from LiteRT's, ops tflat flags as unresolved, and the FLOPs of CONV_2D,
DEPTHWISE_CONV_2D, FULLY_CONNECTED and BATCH_MATMUL by tflat and as computed from LiteRT's
shapes (largest per-op difference). With ``--baseline SRC`` the same counts are taken for
another tflat source tree (e.g. before this change) in a child process.

    python benchmarks/shapes_vs_litert.py                      # vendored + fetched corpus
    python benchmarks/shapes_vs_litert.py MODEL.tflite MODEL2.tflite@1,224,224,3 ...

Results go to benchmarks/results/shapes_vs_litert.{json,md} (model file names only).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# LiteRT as the reference, and FLOPs from its shapes: the tests' own helpers.
sys.path.insert(0, str(ROOT / "tests"))
from litert_shapes import MATMUL_KINDS, flops_from, litert_shapes, stored_shapes  # noqa: E402


def corpus() -> list[str]:
    paths = sorted(str(p) for p in (ROOT / "tests" / "models").glob("*.tflite"))
    cache = os.environ.get("TFLAT_MODEL_CACHE")
    if cache is None:
        from platformdirs import user_cache_dir

        cache = str(Path(user_cache_dir("tflat")) / "models")
    names = {Path(p).name for p in paths}
    return paths + sorted(str(p) for p in Path(cache).glob("**/*.tflite") if p.name not in names)


def _elements(shape: tuple[int, ...]) -> int:
    # A tree from before resolved shapes keeps -1 in shapes and counted it as 1.
    return math.prod(d if d >= 0 else 1 for d in shape)


def compare(spec: str) -> dict[str, Any]:
    import tflat

    path, _, text = spec.partition("@")
    shape = [int(d) for d in text.split(",")] if text else None
    kwargs = {"input_shapes": [tuple(shape)]} if shape else {}
    try:
        graph = tflat.read_model(path, **kwargs)  # type: ignore[arg-type]
    except TypeError:  # a tree from before input shapes: only the stored ones
        graph = tflat.read_model(path)
    found = litert_shapes(Path(path), [tuple(shape)] if shape else None)
    lite = found if found is not None else stored_shapes(Path(path))
    ran = found is not None
    wrong = [
        op.index
        for op in graph.ops
        if any(_elements(t.shape) != math.prod(lite[t.index]) for t in op.outputs)
    ]
    mm = [op for op in graph.ops if op.type in MATMUL_KINDS and op.outputs]
    ours = sum(op.flops for op in mm)
    theirs = sum(flops_from(op, lite) for op in mm)
    worst = max(
        (abs(op.flops - flops_from(op, lite)) / max(flops_from(op, lite), 1) for op in mm),
        default=0.0,
    )
    return {
        "model": Path(path).name + (f" @ {text}" if text else ""),
        "ops": len(graph.ops),
        "litert_ran": ran,
        "wrong_element_counts": len(wrong),
        "unresolved": sum(bool(getattr(op, "unresolved", "")) for op in graph.ops),
        "matmul_gflops_tflat": round(ours / 1e9, 4),
        "matmul_gflops_litert": round(theirs / 1e9, 4),
        "worst_matmul_op_diff": round(worst, 4),
        "total_gflops_tflat": round(sum(op.flops for op in graph.ops) / 1e9, 4),
    }


def run_in(src: str, specs: list[str]) -> list[dict[str, Any]]:
    """The comparison with another tflat tree on the path, in a child process."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2]); "
        "import shapes_vs_litert as s; "
        "print(json.dumps([s.compare(m) for m in sys.argv[3:]]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, src, str(Path(__file__).parent), *specs],
        capture_output=True,
        text=True,
        timeout=3600,
        check=True,
        env={**os.environ, "PYTHONPATH": src},
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="tflat's shapes and FLOPs against LiteRT's.")
    parser.add_argument("models", nargs="*", help="MODEL.tflite or MODEL.tflite@1,224,224,3")
    parser.add_argument("--baseline", help="another tflat src folder to compare the same way")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    specs = args.models or corpus()
    rows = [compare(m) for m in specs]
    base = {r["model"]: r for r in run_in(args.baseline, specs)} if args.baseline else {}
    lines = [
        "| model | ops | LiteRT ran | wrong sizes | unresolved | matmul GFLOPs tflat "
        "| from LiteRT shapes | worst op | total GFLOPs | before: wrong sizes | before: GFLOPs |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        b = base.get(r["model"], {})
        lines.append(
            f"| {r['model']} | {r['ops']} | {'yes' if r['litert_ran'] else 'no (custom op)'} "
            f"| {r['wrong_element_counts']} | {r['unresolved']} | {r['matmul_gflops_tflat']} "
            f"| {r['matmul_gflops_litert']} | {100 * r['worst_matmul_op_diff']:.1f} % "
            f"| {r['total_gflops_tflat']} | {b.get('wrong_element_counts', '')} "
            f"| {b.get('total_gflops_tflat', '')} |"
        )
    print("\n".join(lines))
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        (RESULTS / "shapes_vs_litert.json").write_text(
            json.dumps({"when": when, "models": rows, "before": list(base.values())}, indent=2)
            + "\n"
        )
        md = [
            "# tflat's resolved shapes against LiteRT's",
            "",
            f"{when}. Written by `python benchmarks/shapes_vs_litert.py MODELS... "
            "[--baseline SRC]`. LiteRT: resize, allocate, one invoke, default delegates off. "
            "'wrong sizes': ops with an output element count unlike LiteRT's; 'worst op': the "
            "largest per-op FLOPs difference among CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED "
            "and BATCH_MATMUL; 'before': the same counts by the tree given as --baseline.",
            "",
            *lines,
            "",
        ]
        (RESULTS / "shapes_vs_litert.md").write_text("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
