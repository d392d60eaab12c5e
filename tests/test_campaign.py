"""The resumable campaign: real generated models, the real host-cpu runner, real databases."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tflat.bench import RunSettings, get_runner
from tflat.bench.campaign import (
    bench_model,
    read_manifest,
    relative_spread,
    run_campaign,
    sample_items,
)
from tflat.errors import TflatError
from tflat.store import open_store

FAST = RunSettings(warmup=1, repeats=3, timeout_s=60)
MODELS = Path(__file__).resolve().parent / "models"


def test_relative_spread() -> None:
    assert relative_spread([2.0, 3.0, 4.0]) == pytest.approx(0.5)
    assert relative_spread([1.0]) is None
    assert relative_spread([0.0, 1.0]) is None


def test_sample_is_seeded_and_distinct(tiny_models_12: Path) -> None:
    items = read_manifest(tiny_models_12)
    a = sample_items(items, 5, seed=1)
    assert [i.spec.spec_hash for i in a] == [i.spec.spec_hash for i in sample_items(items, 5, 1)]
    assert len({i.spec.spec_hash for i in a}) == 5
    assert sample_items(items, 5, seed=2) != a
    assert len(sample_items(items + items, None)) == 12


def test_bad_manifest_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "manifest.jsonl").write_text('{"file": "a.tflite"}\n')
    with pytest.raises(TflatError, match=r"manifest\.jsonl:1"):
        read_manifest(tmp_path)


def test_campaign_measures_then_resumes(db_url: str, tiny_models_12: Path) -> None:
    items = read_manifest(tiny_models_12)
    seen: list[int] = []
    with open_store(db_url) as store, get_runner("host-cpu") as runner:
        first = run_campaign(store, runner, items[:7], FAST, progress=lambda p: seen.append(p.done))
        assert (first.measured, first.skipped, first.failed) == (7, 0, 0)
        assert seen == list(range(1, 8))
        second = run_campaign(store, runner, items, FAST)
        assert (second.measured, second.skipped, second.total) == (5, 7, 12)
        rows = store.training_rows("host-cpu")
        assert len(rows) == 12
        for r in rows:
            assert len(r.samples_ms) == 3 and r.repeats == 3 and r.warmup == 1
            assert r.min_ms == min(r.samples_ms) > 0
            assert r.median_ms == statistics.median(r.samples_ms)
        assert {r.spec.spec_hash for r in rows} == {i.spec.spec_hash for i in items}
        # other runtime settings are another campaign
        two_threads = dataclasses.replace(first.runtime, threads=2)
        assert store.measured_spec_hashes("host-cpu", two_threads) == set()


def test_failures_are_recorded_and_retried_on_request(db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "broken.tflite").write_bytes(b"TFL3 but not a model at all")
    rows = [
        {"file": "broken.tflite", "kind": "CONV_2D", "spec_hash": "b" * 16, "params": {"cin": 1}},
        {"file": "missing.tflite", "kind": "ADD", "spec_hash": "c" * 16, "params": {"cin": 2}},
    ]
    (folder / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    items = read_manifest(folder)
    with open_store(db_url) as store, get_runner("host-cpu") as runner:
        r = run_campaign(store, runner, items, FAST)
        assert (r.measured, r.failed) == (2, 2)
        stored = store.measurements("host-cpu")
        assert {m.status for m in stored} == {"failed"}
        assert all(m.error and m.samples_ms == () for m in stored)
        assert run_campaign(store, runner, items, FAST).measured == 0
        assert run_campaign(store, runner, items, FAST, retry_failed=True).measured == 2
        assert store.stats().tables["measurements"] == 2


def test_wide_spread_is_flagged(sqlite_url: str, tiny_models_12: Path) -> None:
    items = read_manifest(tiny_models_12)[:3]
    with open_store(sqlite_url) as store, get_runner("host-cpu") as runner:
        r = run_campaign(store, runner, items, FAST, spread_limit=-1.0)
    # a negative limit flags every measurement with a defined spread
    assert len(r.wide_spread) == 3
    assert all(w.median_ms >= w.min_ms > 0 for w in r.wide_spread)


def test_whole_model_is_stored_once(db_url: str) -> None:
    model = MODELS / "hand_recrop.tflite"
    with open_store(db_url) as store, get_runner("host-cpu") as runner:
        r = bench_model(store, runner, model, FAST)
        assert r.measured and r.measurement is not None and r.measurement.ok
        assert not bench_model(store, runner, model, FAST).measured
        [mm] = store.model_measurements("host-cpu")
        assert mm.model.name == "hand_recrop" and mm.model.n_ops and mm.model.n_ops > 0
        assert mm.model.size_bytes == model.stat().st_size
        assert len(mm.samples_ms) == 3 and mm.min_ms == min(mm.samples_ms)
        assert len(mm.profile) == len(r.measurement.op_profile)
        assert mm.reference_ms is not None and mm.reference_ms == r.measurement.reference_ms


def test_bench_of_a_model_prints_the_normalised_figure_beside_the_minimum(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tflat.cli import main

    model = MODELS / "hand_recrop.tflite"
    args = ["bench", str(model), "--device", "host-cpu", "--db", sqlite_url, "--repeats", "3"]
    assert main([*args, "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "min " in out and "normalised to the fast regime" in out and "reference" in out
    with open_store(sqlite_url) as store:
        [mm] = store.model_measurements("host-cpu")
        assert mm.reference_ms is not None and f"reference {mm.reference_ms:.4g} ms" in out


def _bench_cmd(folder: Path, url: str) -> list[str]:
    code = "import sys; from tflat.cli import main; sys.exit(main(sys.argv[1:]))"
    return [
        sys.executable,
        "-c",
        code,
        "bench",
        str(folder),
        "--device",
        "host-cpu",
        "--db",
        url,
        "--repeats",
        "3",
        "--warmup",
        "1",
    ]


def _count(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM measurements")).scalar() or 0)
    except Exception:  # the first process may not have created the table yet
        return 0
    finally:
        engine.dispose()


@pytest.mark.slow
def test_sigkill_halfway_then_resume_gives_exactly_200(db_url: str, tiny_models_200: Path) -> None:
    """The issue's done-when: SIGKILL a real `tflat bench` halfway, restart, 200 specs, no dupes."""
    env = dict(os.environ, TFLAT_DB="")
    proc = subprocess.Popen(
        _bench_cmd(tiny_models_200, db_url),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    at_kill = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            at_kill = _count(db_url)
            if at_kill >= 100:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the campaign ended before it could be killed"
    assert 100 <= at_kill < 200
    killed_at = _count(db_url)
    assert killed_at < 200

    done = subprocess.run(
        _bench_cmd(tiny_models_200, db_url), env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert f"{200 - killed_at} measured" in done.stdout
    assert f"{killed_at} measured before" in done.stdout

    with open_store(db_url) as store:
        rows = store.measurements("host-cpu")
        stats = store.stats()
    expected = {i.spec.spec_hash for i in read_manifest(tiny_models_200)}
    assert len(rows) == 200 == stats.tables["measurements"] == stats.tables["op_specs"]
    assert {r.spec.spec_hash for r in rows} == expected
    for r in rows:  # no partial row: every sample and statistic is there and agrees
        assert r.status == "ok", r.error
        assert len(r.samples_ms) == r.repeats == 3
        assert r.median_ms == statistics.median(r.samples_ms)
        assert r.min_ms == min(r.samples_ms)
