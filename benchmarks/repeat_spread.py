"""How much do repeated host-cpu campaigns of the same specs agree?

Measures the same seeded specs in several independent campaigns (a fresh database and a fresh
LiteRT worker each time, as separate `tflat bench` runs would) and reports, per statistic
(min of N runs, median of N runs), the spread between campaigns of each spec,
(max - min) / min over the campaigns, and its median over the specs. Also reports the
within-campaign spread (median - min) / min that `tflat bench` warns about.

    python benchmarks/repeat_spread.py [--specs 20] [--campaigns 3] [--repeats 30] [--warmup 5]

Writes benchmarks/results/repeat_spread.json and .md. Timing on a shared machine is noisy:
the figures describe this machine at the time of the run (recorded with the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import tflat
from tflat import OpSpec

RESULTS = Path(__file__).resolve().parent / "results"


def make_specs(n: int, seed: int) -> list[OpSpec]:
    """Seeded mid-sized specs of several kinds (0.01-1 ms on one CPU thread)."""
    rng = random.Random(seed)
    specs: dict[str, OpSpec] = {}
    while len(specs) < n:
        h = rng.choice([16, 24, 32, 48])
        c = rng.choice([8, 16, 32])
        kind = rng.choice(["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "FULLY_CONNECTED"])
        image = {"input_h": h, "input_w": h, "cin": c}
        if kind == "CONV_2D":
            k = rng.choice([1, 3])
            params: dict[str, Any] = {
                **image,
                "cout": rng.choice([8, 16, 32]),
                "kernel_h": k,
                "kernel_w": k,
            }
        elif kind == "DEPTHWISE_CONV_2D":
            params = {**image, "kernel_h": 3, "kernel_w": 3, "stride": rng.choice([1, 2])}
        elif kind == "MAX_POOL_2D":
            params = {**image, "kernel_h": 2, "kernel_w": 2, "stride": 2}
        elif kind == "FULLY_CONNECTED":
            params = {"cin": rng.choice([256, 512, 1024]), "cout": rng.choice([64, 256, 512])}
        else:
            params = dict(image)
        spec = OpSpec(kind, params)
        specs[spec.spec_hash] = spec
    return list(specs.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", type=int, default=20)
    ap.add_argument("--campaigns", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "repeat_spread.json")
    args = ap.parse_args()

    settings = tflat.RunSettings(warmup=args.warmup, repeats=args.repeats, timeout_s=120)
    per_spec: dict[str, dict[str, list[float]]] = {}
    within: list[float] = []
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        items = []
        for spec in make_specs(args.specs, args.seed):
            path = Path(tmp) / f"{spec.spec_hash}.tflite"
            path.write_bytes(tflat.build_spec(spec))
            items.append(
                tflat.BenchItem(
                    path, tflat.SpecRecord(spec.spec_hash, spec.kind, dict(spec.params))
                )
            )
        for campaign in range(args.campaigns):
            url = f"sqlite:///{Path(tmp) / f'campaign{campaign}.db'}"
            with tflat.open_store(url) as store, tflat.get_runner("host-cpu") as runner:
                tflat.run_campaign(store, runner, items, settings)
                for m in store.training_rows("host-cpu"):
                    key = f"{m.spec.kind}[{m.spec.spec_hash}]"
                    d = per_spec.setdefault(key, {"min_ms": [], "median_ms": []})
                    d["min_ms"].append(float(m.min_ms or 0.0))
                    d["median_ms"].append(float(m.median_ms or 0.0))
                    spread = tflat.relative_spread(m.samples_ms)
                    if spread is not None:
                        within.append(spread)
            print(f"campaign {campaign + 1}/{args.campaigns} done", flush=True)

    def between(values: list[float]) -> float:
        return (max(values) - min(values)) / min(values)

    complete = {k: v for k, v in per_spec.items() if len(v["min_ms"]) == args.campaigns}
    spreads = {
        stat: sorted(between(v[stat]) for v in complete.values())
        for stat in ("min_ms", "median_ms")
    }
    result = {
        "what": "spread between repeated host-cpu campaigns of the same specs, (max-min)/min",
        "device": "host-cpu",
        "specs": len(complete),
        "campaigns": args.campaigns,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "seed": args.seed,
        "median_between_campaign_spread": {
            "min_of_runs": statistics.median(spreads["min_ms"]),
            "median_of_runs": statistics.median(spreads["median_ms"]),
        },
        "p90_between_campaign_spread": {
            "min_of_runs": spreads["min_ms"][int(0.9 * (len(complete) - 1))],
            "median_of_runs": spreads["median_ms"][int(0.9 * (len(complete) - 1))],
        },
        "within_campaign_spread": {
            "statistic": "(median - min) / min of the timed runs",
            "median": statistics.median(within),
            "share_over_warn_limit": sum(w > tflat.SPREAD_LIMIT for w in within) / len(within),
            "warn_limit": tflat.SPREAD_LIMIT,
        },
        "per_spec": complete,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_at_end": os.getloadavg(),
        },
        "seconds": round(time.time() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    med = result["median_between_campaign_spread"]
    p90 = result["p90_between_campaign_spread"]
    w = result["within_campaign_spread"]
    md = (
        "# Repeat spread on host-cpu\n\n"
        f"{len(complete)} specs x {args.campaigns} campaigns, {args.repeats} timed runs "
        f"({args.warmup} warm-up) each; load average at the end {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores.\n\n"
        "| statistic per campaign | median over specs of (max-min)/min between campaigns | p90 |\n"
        "|---|---|---|\n"
        f"| min of runs | {100 * med['min_of_runs']:.1f} % | {100 * p90['min_of_runs']:.1f} % |\n"
        f"| median of runs | {100 * med['median_of_runs']:.1f} % | "
        f"{100 * p90['median_of_runs']:.1f} % |\n\n"
        f"Within a campaign, (median - min) / min of the runs: median {100 * w['median']:.1f} %, "
        f"{100 * w['share_over_warn_limit']:.0f} % of measurements over the "
        f"{100 * tflat.SPREAD_LIMIT:.0f} % warning limit.\n"
    )
    args.out.with_suffix(".md").write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
