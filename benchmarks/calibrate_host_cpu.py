"""Calibrate host-cpu from an empty database, then check it on whole real models.

The issue's acceptance figure: ``tflat calibrate host-cpu --minutes 20`` on an empty database,
then every real model of the evaluation corpus (tests/models plus what
``scripts/fetch_models.py`` fetches; none of them plays any part in calibration, whose prior
is nn-Meter's layer tables and whose whole-model term is fitted on networks tflat writes:
the zoo CNNs and tflat.calibrate.networks' MediaPipe-like and int8 ones) is estimated and
measured on this machine: share within ±10 %, MAPE, Spearman, with the spread of repeated
measurements beside each model.

    python benchmarks/calibrate_host_cpu.py [--minutes 20] [--models DIR ...] [--rounds 3]
    python benchmarks/calibrate_host_cpu.py --skip-calibration --db URL   # evaluate only
    python benchmarks/calibrate_host_cpu.py --skip-calibration --db URL --measured ROUNDS.json \
        --tag retrained --label "..."   # re-check a predictor against cached measurements

Writes benchmarks/results/calibrate_host_cpu.{json,md,png}. Statistic on both sides: the
minimum of 30 timed runs (5 warm-up), taken by the host-cpu worker in the machine's fast regime
as far as its speed reference can tell and normalised by that reference (tflat.bench.speed);
each model is measured in ``--rounds`` rounds that go over all models in turn, and the truth
is the median of the normalised rounds taken in the fast regime (of all rounds if none was;
the lowest raw round for cached rounds without references). Raw and normalised spread
between rounds are reported side by side. Timing on a shared machine is noisy: the load
average before and after is recorded with the figures.
A ``--measured`` JSON may carry ``references`` ({model: [reference ms per round]}).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tflat

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def corpus(folders: list[Path]) -> list[Path]:
    seen: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*.tflite")):
            seen.setdefault(path.name, path)  # the same model vendored and fetched counts once
    return sorted(seen.values(), key=lambda p: p.name)


def load() -> float:
    return os.getloadavg()[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--db", default=None, help="database URL (default: a new SQLite file)")
    ap.add_argument("--models", type=Path, action="append", default=None,
                    help="folder of real models (repeatable; default tests/models and the "
                    "fetch_models.py cache)")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-calibration", action="store_true")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    ap.add_argument("--measured", type=Path, default=None,
                    help="JSON of earlier measurements ({'statistic': ..., 'rounds': {model: "
                    "[ms, ...]}}): the models are not measured again")  # fmt: skip
    ap.add_argument("--label", default="", help="what this result is (written at the top)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tflat-calibrate-"))
    url = args.db or f"sqlite:///{tmp / 'tflat.db'}"
    folders = args.models or [REPO / "tests" / "models", _fetched()]
    models = corpus([f for f in folders if f.is_dir()])
    out: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "db": url,
        "models_dirs": [str(f) for f in folders],
    }
    if not args.skip_calibration:
        cmd = ["tflat", "calibrate", "host-cpu", "--minutes", f"{args.minutes:g}", "--db", url,
               "--work-dir", str(tmp / "work"), "--format", "json"]  # fmt: skip
        out["command"] = shlex.join(cmd)
        out["load_before"] = load()
        started = time.time()
        proc = subprocess.run(
            cmd, capture_output=True, text=True, check=False, timeout=args.minutes * 60 + 600
        )
        sys.stderr.write(proc.stderr[-4000:])
        if proc.returncode != 0:
            print(f"calibration failed ({proc.returncode})", file=sys.stderr)
            return 1
        out["calibration"] = json.loads(proc.stdout)
        out["calibration_wall_s"] = time.time() - started
        out["load_after_calibration"] = load()
    if args.measured is not None:
        cached = json.loads(args.measured.read_text(encoding="utf-8"))
        out["measured_from"] = str(args.measured)
        report = tflat.evaluate_models(
            "host-cpu",
            models,
            url,
            measured=cached["rounds"],
            statistic=cached["statistic"],
            references=cached.get("references"),
        )
    else:
        report = tflat.evaluate_models("host-cpu", models, url, measure_rounds=args.rounds)
    if args.label:
        out["label"] = args.label
    out["argv"] = shlex.join(["python", "benchmarks/calibrate_host_cpu.py", *sys.argv[1:]])
    out["load_after_evaluation"] = load()
    out["evaluation"] = report.to_dict()

    out["predictor"] = {
        k: v
        for k, v in tflat.load_predictor("host-cpu", url).provenance.items()
        if k
        in (
            "cv",
            "whole_model",
            "rows",
            "statistic",
            "runtime",
            "speed_reference",
            "reference_fast_ms",
        )
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"calibrate_host_cpu{'_' + args.tag if args.tag else ''}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    (RESULTS / f"{stem}.md").write_text(markdown(out), encoding="utf-8")

    tflat.write_plot(report.to_eval_report(), RESULTS / f"{stem}.png")
    print(markdown(out))
    return 0


def _fetched() -> Path:
    env = os.environ.get("TFLAT_MODEL_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("tflat", appauthor=False)) / "models"


def markdown(out: dict[str, Any]) -> str:
    ev = out["evaluation"]
    m = ev["metrics"]
    lines = ["# host-cpu calibration, checked on whole real models", ""]
    if out.get("label"):
        lines += [f"**{out['label']}**", "", f"Command: `{out['argv']}`", ""]
    if "command" in out:
        cal = out["calibration"]
        lines += [
            f"Command: `{out['command']}` (empty database), wall time "
            f"{out['calibration_wall_s'] / 60:.1f} min; load average before "
            f"{out['load_before']:.1f}, after {out['load_after_calibration']:.1f} (2 cores).",
            "",
            f"Calibration: {cal['models_measured']} single-op models measured "
            f"({cal['failed']} failed), phases {', '.join(cal['phases_done'])}; "
            f"cross-validated single-op error {100 * cal['cv']['mape']:.1f} % per op, "
            f"{100 * cal['cv']['mape_above_10us']:.1f} % for ops over 10 µs, "
            f"{100 * cal['cv']['wape']:.1f} % latency-weighted.",
            "",
        ]
    wm = out.get("predictor", {}).get("whole_model", {})
    if wm:
        loo = ", ".join(f"{k} {v:.1f} %" for k, v in wm.get("loo_mape_pct_by_variant", {}).items())
        lines += [
            f"Whole-model term fitted on {wm.get('networks')} synthetic networks (tflat zoo "
            f"and tflat.calibrate.networks), variant `{wm.get('variant')}` chosen by "
            f"leave-one-network-out error ({loo}): scale {wm.get('scale', 0):.3f}, int8 scale "
            f"{wm.get('int8_scale', wm.get('scale', 0)):.3f}, cache term "
            f"{wm.get('cache_scale', 0):.3f}, {1000 * wm.get('per_kernel_ms', 0):.2f} µs per "
            "kernel.",
            "",
        ]
    lines += [
        f"Statistic: {ev['statistic']}. Load average after evaluation "
        f"{out['load_after_evaluation']:.1f}"
        + (f" (measurements read from {out['measured_from']})." if "measured_from" in out else "."),
        "",
        f"**{m.get('within_10_pct', float('nan')):.0f} % of {m.get('n', 0)} real models within "
        f"±10 %**; MAPE {m.get('mape_pct', float('nan')):.1f} %, median "
        f"{m.get('median_ape_pct', float('nan')):.1f} %, Spearman "
        f"{m.get('spearman', float('nan')):.3f}; measurement spread between rounds "
        "((max - min) / min of the rounds' minimums): raw median "
        f"{m.get('measurement_spread_pct_median', float('nan')):.1f} %, max "
        f"{m.get('measurement_spread_pct_max', float('nan')):.1f} %; normalised median "
        f"{m.get('normalised_spread_pct_median', float('nan')):.1f} %, max "
        f"{m.get('normalised_spread_pct_max', float('nan')):.1f} %; "
        f"{m.get('skipped', 0) - m.get('not_estimable', 0)} model(s) not measurable"
        + (
            f", {m['not_estimable']} not estimable offline (dynamic shapes: shown, not counted; "
            f"counted as a miss the share is {m['within_10_pct_of_all_measured']:.0f} % of "
            f"{m.get('n', 0) + m['not_estimable']})."
            if m.get("not_estimable")
            else "."
        ),
        "",
        "| model | estimated ms | measured ms (the statistic above) | error | rounds spread raw "
        "| normalised | status |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in ev["models"]:
        norm = c.get("normalised_spread_pct")
        lines.append(
            f"| {c['model']} | {c['estimated_ms']:.3f} | {c['measured_ms']:.3f} | "
            f"{c['error_pct']:+.1f} % | {c['measurement_spread_pct']:.1f} % | "
            f"{'-' if norm is None else f'{norm:.1f} %'} | {c['status']}"
            + (f": {c['note'][:60]}" if c["note"] else "")
            + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
