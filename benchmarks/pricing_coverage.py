"""80 % interval coverage per basis, each on data the interval was not calibrated on.

Run: python benchmarks/pricing_coverage.py  (after scripts/fit_pricing.py and
benchmarks/accuracy_usc.py, whose records it reads from benchmarks/results/)

* learned: kernels of held-out architecture families (accuracy_usc.json, op level);
* extrapolated: kernels outside the range their regressor was trained on, each (feature, end)
  experiment judged by the band of the other experiments (pricing_fit.json);
* analytic: kernels of a kind left out of the fit, each kind judged by the band of the other
  kinds on every phone (pricing_fit.json);
* cpu: whole-model CPU times of held-out families, each family judged by the band of the
  others (pricing_fit.json);
* copies at partition edges: no public data times a split graph: not measured.
Writes benchmarks/results/pricing_coverage.md.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def by_device(held_out: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean coverage per phone over its held-out sets, every set weighing the same."""
    acc: dict[str, list[float]] = defaultdict(list)
    for key, v in held_out.items():
        acc[key.split("/", 1)[0]].append(v["coverage_pct"])
    return {dev: float(np.mean(v)) for dev, v in acc.items()}


def main() -> int:
    fit = json.loads((RESULTS / "pricing_fit.json").read_text())
    acc = json.loads((RESULTS / "accuracy_usc.json").read_text())["devices"]
    analytic = by_device(fit["analytic"]["held_out"])
    extra = by_device(fit.get("extrapolation", {}).get("held_out", {}))
    rows = []
    for dev in acc:
        rows.append((dev, acc[dev]["op_level"]["interval_coverage_pct"],
                     extra.get(dev, float("nan")), analytic.get(dev, float("nan")),
                     fit["devices"][dev]["cpu"]["family_held_out_coverage_pct"]))  # fmt: skip
    lines = ["# 80 % interval coverage per basis (held-out data)", "",
             "Command: `python benchmarks/pricing_coverage.py` (reads accuracy_usc.json and "
             "pricing_fit.json; see this script's docstring for what each column holds out)",
             "", "| phone | learned | extrapolated | analytic | cpu | partition copies |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for dev, *cov in rows:
        lines.append(f"| {dev} | " + " | ".join(f"{c:.1f}" for c in cov) + " | not measured |")
    means = np.nanmean(np.array([r[1:] for r in rows], dtype=float), axis=0)
    lines.append("| all | " + " | ".join(f"{m:.1f}" for m in means) + " | not measured |")
    text = "\n".join(lines) + "\n"
    (RESULTS / "pricing_coverage.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
