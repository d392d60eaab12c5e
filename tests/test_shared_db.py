"""Campaigns sharing one database: claims, race-safe migrations, real concurrent processes.

Every test runs on SQLite and on PostgreSQL (the ``db_url`` fixture). The process tests start
real ``tflat bench`` processes with the real host-cpu runner on generated models.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tflat.bench import DeviceInfo, Measurement
from tflat.store import RuntimeKey, SpecRecord, open_store
from tflat.store.claims import Claim, SpecClaims

KEY = RuntimeKey("ai-edge-litert", "test", "xnnpack", "fp32", 1)
DEVICE = "host-cpu"
OK = Measurement(status="ok", samples_ms=(1.0, 1.1, 1.2), warmup=1)
FAILED = Measurement(status="failed", error="boom")


def _spec(i: int) -> SpecRecord:
    return SpecRecord(f"{i:016x}", "ADD", {"cin": i})


@pytest.fixture
def store(db_url: str) -> Any:
    with open_store(db_url) as s:
        s.add_device(DeviceInfo(DEVICE))
        yield s


def test_a_claim_is_held_once_until_measured(store: Any) -> None:
    spec = _spec(1)
    assert store.claim_spec(DEVICE, KEY, spec.spec_hash, "a") is Claim.CLAIMED
    assert store.claim_spec(DEVICE, KEY, spec.spec_hash, "b") is Claim.BUSY
    assert store.claim_spec(DEVICE, KEY, spec.spec_hash, "a") is Claim.CLAIMED  # its own again
    [info] = store.claims(DEVICE)
    assert info.owner == "a" and info.spec_hash == spec.spec_hash
    assert info.expires_at > info.claimed_at
    store.add_measurement(DEVICE, KEY, spec, OK)
    # measured: nobody claims it again, and a claim left behind is dropped on the way
    assert store.claim_spec(DEVICE, KEY, spec.spec_hash, "b") is Claim.DONE
    assert store.claim_spec(DEVICE, KEY, spec.spec_hash, "a") is Claim.DONE
    assert store.claims(DEVICE) == []
    other = RuntimeKey("ai-edge-litert", "test", "xnnpack", "fp32", 2)
    assert store.claim_spec(DEVICE, other, spec.spec_hash, "b") is Claim.CLAIMED


def test_an_expired_claim_is_taken_over_and_a_renewed_one_is_not(store: Any) -> None:
    a, b = _spec(2).spec_hash, _spec(3).spec_hash
    assert store.claim_spec(DEVICE, KEY, a, "dead", lease_s=0.3) is Claim.CLAIMED
    assert store.claim_spec(DEVICE, KEY, b, "alive", lease_s=0.3) is Claim.CLAIMED
    time.sleep(0.15)
    assert store.renew_claims("alive", lease_s=30) == 1
    time.sleep(0.3)
    assert store.claim_spec(DEVICE, KEY, a, "new") is Claim.TAKEN_OVER
    assert store.claim_spec(DEVICE, KEY, b, "new") is Claim.BUSY
    assert {c.spec_hash: c.owner for c in store.claims()} == {a: "new", b: "alive"}
    assert store.release_claims("new", DEVICE, KEY, [a, b]) == 1
    assert [c.owner for c in store.claims()] == ["alive"]


def test_failures_count_as_measured_unless_retried_since(store: Any) -> None:
    spec = _spec(4)
    store.add_measurement(DEVICE, KEY, spec, FAILED)
    assert store.claim_spec(DEVICE, KEY, spec.spec_hash, "a") is Claim.DONE
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert store.claim_spec(DEVICE, KEY, spec.spec_hash, "a", failed_before=later) is Claim.CLAIMED
    earlier = datetime.now(UTC) - timedelta(hours=1)
    assert store.claim_spec(DEVICE, KEY, spec.spec_hash, "b", failed_before=earlier) is Claim.DONE


def test_spec_claims_hand_back_what_they_hold(store: Any) -> None:
    specs = [_spec(i) for i in range(10, 16)]
    store.add_measurement(DEVICE, KEY, specs[0], OK)
    done: list[SpecRecord] = []
    with SpecClaims(store, DEVICE, KEY, lease_s=30, owner="w1") as claims:
        taken = []
        for spec in claims.take(specs, lambda s: s.spec_hash, on_done=done.append):
            taken.append(spec)
            assert [c.spec_hash for c in store.claims()] == [spec.spec_hash]
            if len(taken) == 2:
                break  # a campaign stopped by an error: its claim goes back at close
    assert [s.spec_hash for s in taken] == [s.spec_hash for s in specs[1:3]]
    assert done == [specs[0]] and claims.by_others == 1
    assert store.claims() == []


def test_a_worker_waits_for_a_live_claim_then_takes_over_a_lapsed_one(store: Any) -> None:
    specs = [_spec(i) for i in range(20, 23)]
    assert store.claim_spec(DEVICE, KEY, specs[1].spec_hash, "dead", lease_s=1.0) is Claim.CLAIMED
    with SpecClaims(store, DEVICE, KEY, lease_s=1.0, owner="w") as claims:
        order = [s.spec_hash for s in claims.take(specs, lambda s: s.spec_hash)]
    # the held spec comes last, after its claim lapsed: nothing is lost
    assert order == [specs[0].spec_hash, specs[2].spec_hash, specs[1].spec_hash]
    assert claims.taken_over == 1


def test_the_heartbeat_keeps_a_long_measurement_claimed(store: Any) -> None:
    spec = _spec(30)
    with SpecClaims(store, DEVICE, KEY, lease_s=0.6, owner="slow") as claims:
        assert claims.try_claim(spec.spec_hash) is Claim.CLAIMED
        time.sleep(1.5)  # two and a half leases: only the heartbeat keeps it
        assert store.claim_spec(DEVICE, KEY, spec.spec_hash, "other") is Claim.BUSY
    assert store.claim_spec(DEVICE, KEY, spec.spec_hash, "other") is Claim.CLAIMED


def test_processes_opening_a_new_database_at_once_all_migrate_it(db_url: str) -> None:
    from tflat.store.migrate import current_revision, head_revision

    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_it() -> None:
        try:
            start.wait()
            with open_store(db_url) as s:
                s.add_device(DeviceInfo("racer"))
        except BaseException as exc:  # collected and shown by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with open_store(db_url) as s:
        assert current_revision(s._engine) == head_revision()
        assert [d.device_id for d in s.devices()] == ["racer"]


# -- real processes ----------------------------------------------------------------------------


def _bench(folder: Path, url: str, *extra: str) -> list[str]:
    from test_campaign import _bench_cmd

    return [*_bench_cmd(folder, url), *extra]


def _measured(stdout: str) -> int:
    found = re.search(r"(\d+) measured \(", stdout)
    assert found, stdout
    return int(found.group(1))


def _rows(url: str) -> tuple[int, int]:
    """(measurement rows, distinct specs among them)."""
    with open_store(url) as s:
        rows = s.measurements(DEVICE)
    return len(rows), len({r.spec.spec_hash for r in rows})


@pytest.fixture(scope="module")
def models_20(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import write_models

    return write_models(tmp_path_factory.mktemp("shared20"), 20, seed=14)


@pytest.mark.slow
def test_two_benches_on_a_new_database_divide_the_work(db_url: str, models_20: Path) -> None:
    env = dict(os.environ, TFLAT_DB="")
    procs = [
        subprocess.Popen(
            _bench(models_20, db_url),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    measured = [_measured(out) for out, _ in outs]
    # each spec measured by exactly one of them, and both took part
    assert sum(measured) == 20, measured
    assert min(measured) > 0, measured
    assert all("by other campaigns" in out for out, _ in outs)
    assert _rows(db_url) == (20, 20)
    with open_store(db_url) as s:
        assert s.claims() == []


@pytest.mark.slow
def test_a_killed_benchs_claim_is_taken_over(db_url: str, models_20: Path) -> None:
    env = dict(os.environ, TFLAT_DB="")
    orphans: list[Any] = []
    for _ in range(3):  # a kill in the instant between two claims leaves none: kill again
        orphans = _kill_while_claiming(_bench(models_20, db_url, "--lease", "2"), env, db_url)
        if orphans:
            break
    assert len(orphans) == 1, orphans
    killed_rows, _ = _rows(db_url)
    assert killed_rows < 20
    second = subprocess.run(
        _bench(models_20, db_url, "--lease", "2"),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert second.returncode == 0, second.stderr
    assert _measured(second.stdout) == 20 - killed_rows
    assert "1 claims taken over" in second.stderr
    assert _rows(db_url) == (20, 20)
    assert _claims(db_url) == []


def _kill_while_claiming(cmd: list[str], env: dict[str, str], url: str) -> list[Any]:
    """SIGKILL the bench as soon as it holds a claim; the claims it left behind."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if _live_claims(url):
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the bench ended before it could be killed"
    return _claims(url)


def _claims(url: str) -> list[Any]:
    with open_store(url) as s:
        return s.claims(DEVICE)


def _live_claims(url: str) -> list[Any]:
    try:
        return _claims(url)
    except Exception:  # the process has not created the database yet
        return []


def test_calibrations_skip_specs_another_campaign_holds(tmp_path: Path, db_url: str) -> None:
    from test_calibrate import TINY_PLAN, _FakePhone
    from tflat.calibrate import calibrate
    from tflat.plans import load_plan

    plan = tmp_path / "tiny.toml"
    plan.write_text(TINY_PLAN, encoding="utf-8")
    specs = load_plan(plan).expand().specs
    held = {s.spec_hash for s in specs[::7]}
    key = RuntimeKey("benchmark_model", "test", "gpu", "fp32", 1)
    with open_store(db_url) as s:
        s.add_device(DeviceInfo("android:fake"))
        for h in held:
            assert (
                s.claim_spec("android:fake", key, h, "other-host:1:x", lease_s=600) is Claim.CLAIMED
            )
    calibrate(
        "android:fake",
        minutes=1.0,
        db_url=db_url,
        work_dir=tmp_path / "w",
        plans=[("tiny", plan, 1.0)],
        adaptive=False,
        runner=_FakePhone(),
    )
    with open_store(db_url) as s:
        measured = {r.spec.spec_hash for r in s.measurements("android:fake")}
        assert {c.owner for c in s.claims()} == {"other-host:1:x"}
    assert held and not held & measured
    assert {s.spec_hash for s in specs} - held <= measured
