"""What guarding against hostile input costs, and how fast the refusals are (issue 14).

* a plan of 10^12 specs: refused as a fresh ``tflat plan show`` process (target < 10 s), and
  the size computation itself in process;
* a predictor bundle file: ``load_predictor_file`` (read, size cap, schema, trees) against
  loading the same bundle unchecked as a shipped one is, and ``tflat estimate -d FILE.json``
  against ``--device pixel4`` as fresh processes;
* claims: one claim plus its release, per measured spec, on SQLite (and PostgreSQL when
  ``TFLAT_TEST_POSTGRES_URL`` names a server, in a schema of its own, dropped after).

    python benchmarks/hostile_inputs.py [--runs 5]

Writes benchmarks/results/hostile_inputs.{json,md}. The machine is shared and noisy: every
figure is the minimum over runs (the median beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
MODEL = Path(__file__).resolve().parents[1] / "tests" / "models" / "hand_recrop.tflite"
AXES = ("input_h", "input_w", "cin", "cout", "kernel_h", "kernel_w")


def timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return {"min_ms": min(samples) * 1e3, "median_ms": statistics.median(samples) * 1e3}


def cli(*args: str, ok: bool = True) -> Callable[[], None]:
    exe = shutil.which("tflat")
    cmd = [exe] if exe else [sys.executable, "-c", "from tflat.cli import main; main()"]

    def run() -> None:
        done = subprocess.run([*cmd, *args], capture_output=True, timeout=120, check=False)
        assert (done.returncode == 0) == ok, done.stderr

    return run


def huge_plan(folder: Path) -> Path:
    axes = "\n".join(f"{k} = {list(range(1, 101))}" for k in AXES)
    path = folder / "huge.toml"
    path.write_text(f'name = "huge"\n[[grid]]\nkind = "CONV_2D"\n{axes}\n', encoding="utf-8")
    return path


def claims_cost(url: str, n: int) -> float:
    """Seconds per claim + release, the mean over ``n`` specs (the store's claims are not
    public API: this reads them through ``tflat.store``, as campaigns do)."""
    from tflat.bench import DeviceInfo
    from tflat.store import RuntimeKey, open_store
    from tflat.store.claims import SpecClaims

    key = RuntimeKey("bench", "0", "xnnpack", "fp32", 1)
    with open_store(url) as store:
        store.add_device(DeviceInfo("bench-device"))
        with SpecClaims(store, "bench-device", key, owner="bench") as claims:
            hashes = [uuid.uuid4().hex[:16] for _ in range(n)]
            t0 = time.perf_counter()
            for _ in claims.take(hashes, lambda h: h):
                pass
            return (time.perf_counter() - t0) / n


def postgres_url() -> tuple[str, Callable[[], None]] | None:
    base = os.environ.get("TFLAT_TEST_POSTGRES_URL", "").strip()
    if not base:
        return None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), drop


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--claims", type=int, default=200, help="specs claimed per database")
    args = ap.parse_args()
    import tflat

    out: dict[str, Any] = {"runs": args.runs, "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plan = tflat.load_plan(huge_plan(folder))
        assert plan.size() == 10**12
        out["plan_size_in_process"] = timed(plan.size, 20)
        out["plan_refused_cli"] = timed(cli("plan", "show", str(folder / "huge.toml"), ok=False),
                                        args.runs)  # fmt: skip
        text = resources.files("tflat").joinpath("data", "devices", "pixel4.json").read_text()
        bundle = folder / "pixel4.json"
        bundle.write_text(text, encoding="utf-8")
        out["bundle_unchecked_in_process"] = timed(
            lambda: tflat.Predictor(json.loads(bundle.read_text())), 10
        )
        tflat.load_predictor(str(bundle))  # pydantic imported and models built once
        out["bundle_checked_in_process"] = timed(lambda: tflat.load_predictor(str(bundle)), 10)
        out["estimate_cli_shipped"] = timed(cli("estimate", str(MODEL), "-d", "pixel4"), args.runs)
        out["estimate_cli_bundle_file"] = timed(
            cli("estimate", str(MODEL), "-d", str(bundle)), args.runs
        )
        out["claim_release_sqlite_ms"] = 1e3 * min(
            claims_cost(f"sqlite:///{folder / f'c{i}.db'}", args.claims) for i in range(3)
        )
    pg = postgres_url()
    if pg is not None:
        url, drop = pg
        try:
            out["claim_release_postgresql_ms"] = 1e3 * min(
                claims_cost(url, args.claims) for _ in range(3)
            )
        finally:
            drop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hostile_inputs.json").write_text(json.dumps(out, indent=2) + "\n")
    rows = [
        ("10^12-spec plan refused: fresh `tflat plan show` process", "plan_refused_cli", "< 10000"),
        ("its size computed in process", "plan_size_in_process", ""),
        ("pixel4 bundle loaded unchecked (as shipped ones are)", "bundle_unchecked_in_process", ""),
        ("pixel4 bundle file loaded with every check", "bundle_checked_in_process", ""),
        ("`tflat estimate -d pixel4` fresh process", "estimate_cli_shipped", ""),
        ("`tflat estimate -d pixel4.json` fresh process", "estimate_cli_bundle_file", ""),
    ]
    md = [
        "# hostile inputs: what the guards cost",
        "",
        f"{out['when']}, shared 2-core machine, load average {os.getloadavg()[0]:.1f}; "
        f"minimum (median) of {args.runs} fresh processes or 10-20 in-process runs.",
        "",
        "| what | min ms | median ms | target |",
        "|---|---|---|---|",
    ]
    md += [f"| {label} | {out[k]['min_ms']:.1f} | {out[k]['median_ms']:.1f} | {t} |"
           for label, k, t in rows]  # fmt: skip
    for name in ("sqlite", "postgresql"):
        key = f"claim_release_{name}_ms"
        if key in out:
            md.append(
                f"| one claim + release on {name} (mean of {args.claims}, min of 3) | "
                f"{out[key]:.2f} | | |"
            )
    (RESULTS / "hostile_inputs.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
