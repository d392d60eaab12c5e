"""Published anchors: tflat against every published row of a shipped phone and a model it can
build, as ratios between models on one device (absolute figures depend on the delegate version
and its settings; a ratio within one source cancels most of that).

Run: python benchmarks/published_anchors.py [--published FILE]
Reads published/published_tables.csv beside the USC data folder (TFLAT_USC_DIR, else
../shared/data next to the repository) unless told (public data, not shipped). Builds the
networks with tflat's writer (benchmarks/anchor_models.py), prices them with
``tflat.estimate``; writes
benchmarks/results/published_anchors.json and .md. Every row of a shipped phone is listed, the
ones whose model cannot be built with the reason.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path
from typing import Any

import anchor_models
import tflat
from pricing_common import learned_share, shared_data_dir

OUT = Path(__file__).parent / "results"
PHONES = {"Pixel 4": "pixel4", "iPhone XS": "iphonexs", "iPhone 7": "iphone7",
          "Galaxy S10": "s10", "Samsung Galaxy S10": "s10"}  # fmt: skip
#: published model name -> anchor network (only architectures the builders reproduce)
MODELS = {
    "Mobilenet_1.0_224 (float)": "mobilenet_v1",
    "Mobilenet V1 1.0 224": "mobilenet_v1",
    "Inception_ResNet_V2": "inception_resnet_v2",
    "Inception_V4": "inception_v4",
    **{f"efficientnet-lite{n}": f"efficientnet_lite{n}" for n in range(5)},
}


def default_published() -> Path:
    return shared_data_dir() / "published" / "published_tables.csv"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--published", type=Path, default=default_published())
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if not args.published.is_file():
        print(f"published tables not found ({args.published.name}): pass --published FILE")
        return 1
    rows = [r for r in csv.DictReader(args.published.open(encoding="utf-8"))
            if r["device"] in PHONES]  # fmt: skip
    listed, groups = [], {}
    for r in rows:
        net = MODELS.get(r["model"])
        gpu = r["processor"] == "GPU"
        fp16 = "fp16 allowed" in r["runtime"] or r["source_id"] == "tfl_measure" or (
            r["source_id"] == "gldelegate")  # fmt: skip
        why = (
            "no builder for this network"
            if net is None
            else "not a GPU row"
            if not gpu
            else "GPU without fp16 math (the shipped data is fp16)"
            if not fp16
            else ""
        )
        listed.append(
            {
                "source": r["source_id"],
                "device": r["device"],
                "model": r["model"],
                "processor": r["processor"],
                "runtime": r["runtime"],
                "published_ms": float(r["latency_ms"]),
                "compared": not why,
                "why": why,
            }
        )
        if not why:
            groups.setdefault((r["source_id"], PHONES[r["device"]]), []).append(
                (net, float(r["latency_ms"]), r["model"])
            )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        graphs: dict[str, tflat.Graph] = {}
        for (source, dev), members in sorted(groups.items()):
            if len(members) < 2:
                continue
            ref_net, ref_ms, ref_name = members[0]
            for net, _, _ in members:
                if net not in graphs:
                    path = Path(tmp) / f"{net}.tflite"
                    path.write_bytes(anchor_models.build(net))
                    graphs[net] = tflat.read_model(path)
            ref = tflat.estimate(graphs[ref_net], dev).total_ms
            for net, ms, name in members[1:]:
                c = tflat.estimate(graphs[net], dev)
                results.append(
                    {
                        "source": source,
                        "device": dev,
                        "model": name,
                        "reference": ref_name,
                        "published_ratio": ms / ref_ms,
                        "tflat_ratio": c.total_ms / ref,
                        "tflat_ms": c.total_ms,
                        "learned_share": learned_share(c),
                    }
                )
                r = results[-1]
                print(
                    f"{dev} {source}: {name} / {ref_name}: published {r['published_ratio']:.2f}"
                    f", tflat {r['tflat_ratio']:.2f}"
                )
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"command": "python benchmarks/published_anchors.py", "comparisons": results,
               "rows": listed}  # fmt: skip
    (args.out / "published_anchors.json").write_text(json.dumps(payload, indent=1) + "\n")
    (args.out / "published_anchors.md").write_text(render(payload))
    return 0


def render(p: dict[str, Any]) -> str:
    lines = ["# Published anchors: time ratios between models on one phone", "",
             f"Command: `{p['command']}`. Ratios within one source and phone (the reference is "
             "that source's first model); tflat = `tflat.estimate`.", "",
             "| phone | source | model / reference | published | tflat | learned | log error |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    import math

    for r in p["comparisons"]:
        err = math.log(r["tflat_ratio"] / r["published_ratio"])
        lines.append(f"| {r['device']} | {r['source']} | {r['model']} / {r['reference']} | "
                     f"{r['published_ratio']:.2f} | {r['tflat_ratio']:.2f} | "
                     f"{r['learned_share']:.0%} | {err:+.2f} |")  # fmt: skip
    lines += [
        "",
        "Every published row of a shipped phone:",
        "",
        "| source | phone | model | processor | ms | compared | why not |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in p["rows"]:
        lines.append(
            f"| {r['source']} | {r['device']} | {r['model']} | {r['processor']} | "
            f"{r['published_ms']:g} | {'yes' if r['compared'] else 'no'} | {r['why']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
