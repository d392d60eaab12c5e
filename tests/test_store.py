"""The measurement database, on SQLite and PostgreSQL (see the db_url fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tflat.datasets.usc import E2E_FILE, OPS_FILE, data_file, default_folder, read_csv
from tflat.errors import StoreError
from tflat.store import (
    ModelRecord,
    ProfileRecord,
    RuntimeKey,
    SpecRecord,
    open_store,
)
from tflat.store.measurement import DeviceInfo, Measurement, OpProfileRow

XNN = RuntimeKey("ai-edge-litert", "2.3.0", "xnnpack", "fp32", 1)
SPEC = SpecRecord("0123456789abcdef", "CONV_2D", {"input_h": 8, "cin": 3, "cout": 4})
#: The USC data: TFLAT_USC_DIR's folder when set, else the copy shipped in the package.
USC_DIR = default_folder()


def test_open_migrates_to_head_and_schema_matches_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tflat.store.migrate import current_revision, downgrade, head_revision, upgrade
    from tflat.store.schema import Base

    store = open_store(db_url)
    engine = store._engine
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
    downgrade(engine, "base")
    assert current_revision(engine) is None
    upgrade(engine)
    assert store.stats().revision == head_revision()
    store.close()


def test_a_failed_migration_leaves_nothing_half_done(db_url: str) -> None:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(db_url)
    with engine.begin() as conn:  # collides with the migration's last CREATE TABLE
        conn.execute(text("CREATE TABLE predictors (x integer)"))
    with pytest.raises(StoreError):
        open_store(db_url)
    assert inspect(engine).get_table_names() == ["predictors"]
    engine.dispose()


def test_measurement_round_trip_unique_and_resume_keys(db_url: str) -> None:
    with open_store(db_url) as store:
        store.add_device(DeviceInfo("host-cpu", vendor="AMD", soc="EPYC"))
        m = Measurement(status="ok", samples_ms=(2.0, 1.0, 4.0), warmup=1, init_ms=3.5)
        assert store.add_measurement("host-cpu", XNN, SPEC, m, model_file="a.tflite")
        # the same device + settings + spec is stored once
        assert not store.add_measurement("host-cpu", XNN, SPEC, m)
        [row] = store.measurements("host-cpu")
        assert row.samples_ms == (2.0, 1.0, 4.0)
        assert (row.median_ms, row.min_ms, row.repeats, row.warmup) == (2.0, 1.0, 3, 1)
        assert row.spec == SPEC
        assert row.created_at.tzinfo is not None
        assert store.measured_spec_hashes("host-cpu", XNN) == {SPEC.spec_hash}
        # other settings or another device are not "measured"
        two_threads = RuntimeKey("ai-edge-litert", "2.3.0", "xnnpack", "fp32", 2)
        assert store.measured_spec_hashes("host-cpu", two_threads) == set()
        assert store.measured_spec_hashes("pixel4", XNN) == set()
        # replace overwrites in place
        again = Measurement(status="ok", samples_ms=(5.0, 6.0), warmup=2)
        assert store.add_measurement("host-cpu", XNN, SPEC, again, replace=True)
        [row] = store.measurements()
        assert row.samples_ms == (5.0, 6.0) and row.min_ms == 5.0
        assert store.stats().tables["measurements"] == 1


def test_failures_are_stored_and_skipped_unless_retried(db_url: str) -> None:
    with open_store(db_url) as store:
        bad = Measurement(status="timeout", warmup=1, error="no result after 3 s")
        store.add_measurement("host-cpu", XNN, SPEC, bad)
        [row] = store.measurements()
        assert (row.status, row.error, row.samples_ms, row.median_ms) == (
            "timeout",
            "no result after 3 s",
            (),
            None,
        )
        assert store.measured_spec_hashes("host-cpu", XNN) == {SPEC.spec_hash}
        assert store.measured_spec_hashes("host-cpu", XNN, include_failed=False) == set()
        assert store.training_rows("host-cpu") == []
        stats = store.stats()
        assert stats.devices[0].measurements_failed == 1


def test_specs_are_deduplicated_by_hash(db_url: str) -> None:
    with open_store(db_url) as store:
        other = SpecRecord("fedcba9876543210", "ADD", {"input_h": 4})
        assert store.add_specs([SPEC, other, SPEC]) == 2
        assert store.add_specs([SPEC]) == 0
        assert store.stats().tables["op_specs"] == 2


def test_model_measurement_with_profile(db_url: str) -> None:
    model = ModelRecord(key="abc", name="net", flops=10**11, size_bytes=5_000_000_000)
    prof = (
        OpProfileRow(0, "CONV_2D", "conv", 1.5, share=0.6),
        OpProfileRow(1, "ADD", "add", 1.0, share=0.4),
    )
    m = Measurement(status="ok", samples_ms=(3.0, 2.5, 2.75), warmup=2, op_profile=prof)
    with open_store(db_url) as store:
        assert store.add_model_measurement(model, "pixel4", XNN, m)
        assert store.has_model_measurement("abc", "pixel4", XNN)
        assert not store.add_model_measurement(model, "pixel4", XNN, m)
        [mm] = store.model_measurements("pixel4")
        assert mm.model.flops == 10**11 and mm.model.size_bytes == 5_000_000_000
        assert (mm.min_ms, mm.median_ms, mm.repeats) == (2.5, 2.75, 3)
        assert [(p.position, p.op_type, p.avg_ms) for p in mm.profile] == [
            (0, "CONV_2D", 1.5),
            (1, "ADD", 1.0),
        ]


def test_failed_write_leaves_no_partial_rows(db_url: str) -> None:
    model = ModelRecord(key="abc", name="net")
    broken = ProfileRecord(position=1, op_type=None, avg_ms=1.0)  # type: ignore[arg-type]
    good = ProfileRecord(position=0, op_type="CONV_2D", avg_ms=1.0)
    values = {"status": "ok", "samples_ms": [1.0], "mean_ms": 1.0}
    with open_store(db_url) as store:
        with pytest.raises(StoreError):
            store.add_model_measurements([(model, "pixel4", XNN, values, (good, broken))])
        tables = store.stats().tables
        assert tables["model_measurements"] == 0
        assert tables["op_profiles"] == 0
        assert tables["models"] == 0


def test_predictor_bundles(db_url: str) -> None:
    with open_store(db_url) as store:
        assert store.load_predictor_bundle("host-cpu") is None
        store.save_predictor("host-cpu", {"version": 1, "w": [1.5, 2.0]}, {"rows": 10})
        store.save_predictor("host-cpu", {"version": 2})
        assert store.load_predictor_bundle("host-cpu") == {"version": 2}
        [info] = store.predictors()
        assert info.device_id == "host-cpu" and info.provenance == {}
        with pytest.raises(StoreError):
            store.save_predictor("host-cpu", {"w": float("nan")})


def test_unreachable_database_is_a_store_error() -> None:
    with pytest.raises(StoreError) as err:
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert err.value.exit_code == 2
    assert "\n" not in str(err.value)


def test_plain_path_is_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tflat.store import default_url

    with open_store(str(tmp_path / "sub" / "x.db")) as store:
        assert store.url.startswith("sqlite:///") and store.url.endswith("sub/x.db")
    monkeypatch.setenv("TFLAT_DB", "sqlite:///elsewhere.db")
    assert default_url() == "sqlite:///elsewhere.db"


def _usc_counts() -> tuple[int, int, int]:
    """Counts read straight from the CSV files: op cells, e2e mean cells, model rows."""
    ops_path, e2e_path = (data_file(USC_DIR, name) for name in (OPS_FILE, E2E_FILE))
    assert ops_path is not None and e2e_path is not None
    ops, e2e = read_csv(ops_path), read_csv(e2e_path)
    op_cells = sum(1 for r in ops for k, v in r.items() if k.endswith("|gpu|float") and v)
    mean_cells = sum(1 for r in e2e for k, v in r.items() if k.endswith("|mean") and v)
    return op_cells, mean_cells, len(e2e)


def test_usc_import_counts_units_and_partial_ops(db_url: str) -> None:
    from tflat.store.usc import import_usc

    op_cells, mean_cells, model_rows = _usc_counts()
    assert op_cells == 3885 * 6 and model_rows == 79
    with open_store(db_url) as store:
        r = import_usc(store, USC_DIR)
        assert (r.models, r.model_measurements, r.op_profile_rows) == (
            model_rows,
            mean_cells,
            op_cells,
        )
        again = import_usc(store, USC_DIR)  # idempotent
        assert (again.model_measurements, again.skipped_existing) == (0, mean_cells)
        stats = store.stats()
        assert stats.tables["op_profiles"] == op_cells
        assert stats.tables["model_measurements"] == mean_cells
        assert {d.device_id for d in stats.devices} == {
            "pixel4",
            "s10",
            "mi8se",
            "a03s",
            "iphone7",
            "iphonexs",
        }
        pixel = store.model_measurements("pixel4")
        gpu = {m.model.name: m for m in pixel if m.runtime.config == "gpu|float"}
        # bagnet9, pixel4|gpu|float|mean = 102523.0 µs; first op row 320.4096 µs
        assert gpu["bagnet9"].mean_ms == pytest.approx(102.523)
        assert gpu["bagnet9"].profile[0].avg_ms == pytest.approx(0.3204096)
        assert gpu["bagnet9"].profile[0].features["Input_channel"] == 3
        assert gpu["bagnet9"].model.ops_partial
        cpu = [m for m in pixel if m.model.name == "bagnet9" and m.runtime.config == "1large|float"]
        assert cpu[0].mean_ms == pytest.approx(908.365) and cpu[0].runtime.delegate == "cpu"


def test_tflat_csv_round_trips(db_url: str, tmp_path: Path) -> None:
    from tflat.store.tabular import import_measurements_csv, to_csv, write_parquet

    spec2 = SpecRecord("1111222233334444", "ADD", {"input_h": 4, "cin": 2})
    with open_store(db_url) as store:
        store.add_device(DeviceInfo("host-cpu", vendor="AMD", os="Linux, 6"))
        store.add_measurement(
            "host-cpu",
            XNN,
            SPEC,
            Measurement("ok", (0.1 + 0.2, 1 / 3, 2.5e-6), warmup=3, reference_ms=0.0512),
        )
        store.add_measurement("host-cpu", XNN, spec2, Measurement("failed", error='bad "x", y'))
        text = to_csv(store)
        assert write_parquet(store, tmp_path / "m.parquet") == 2
    path = tmp_path / "m.csv"
    path.write_text(text, encoding="utf-8")
    with open_store(f"sqlite:///{tmp_path / 'other.db'}") as other:
        assert import_measurements_csv(other, path) == (2, 0)
        assert import_measurements_csv(other, path) == (0, 2)
        assert to_csv(other) == text
        assert other.devices()[0].os == "Linux, 6"
        assert sorted(str(r.reference_ms) for r in other.measurements()) == ["0.0512", "None"]
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "m.parquet")
    assert table.num_rows == 2
    assert table.column("samples_ms").to_pylist()[0] == [0.1 + 0.2, 1 / 3, 2.5e-6]


def test_speed_reference_is_stored_with_each_measurement(db_url: str) -> None:
    """reference_ms goes in and comes back on both tables; absent stays None (Android)."""
    other = SpecRecord("fedcba9876543210", "ADD", {"input_h": 4})
    with open_store(db_url) as store:
        store.add_measurement("host-cpu", XNN, SPEC, Measurement("ok", (1.0,), reference_ms=0.05))
        store.add_measurement("host-cpu", XNN, other, Measurement("ok", (2.0,)))
        model = ModelRecord(key="net", name="net")
        store.add_model_measurement(
            model, "host-cpu", XNN, Measurement("ok", (3.0,), reference_ms=0.06)
        )
        by_hash = {r.spec.spec_hash: r.reference_ms for r in store.measurements("host-cpu")}
        assert by_hash == {SPEC.spec_hash: 0.05, other.spec_hash: None}
        [mm] = store.model_measurements("host-cpu")
        assert mm.reference_ms == 0.06
        assert sorted(store.reference_readings("host-cpu")) == [0.05, 0.06]
        assert store.reference_readings("pixel4") == []


def test_a_database_from_before_the_reference_upgrades_and_keeps_its_rows(db_url: str) -> None:
    """A database at revision 0001 (no reference_ms columns) holding a measurement is migrated
    in place by open_store; the old row reads back with reference_ms None."""
    from sqlalchemy import create_engine, inspect, text

    from tflat.store.migrate import current_revision, head_revision, upgrade

    engine = create_engine(db_url)
    upgrade(engine, "0001")
    assert "reference_ms" not in {c["name"] for c in inspect(engine).get_columns("measurements")}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO devices (id, vendor, model, soc, gpu, os, driver, extra, source, "
                "updated_at) VALUES ('host-cpu', '', '', '', '', '', '', '{}', '', :t)"
            ),
            {"t": "2026-01-01 00:00:00+00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO runtimes (runtime, version, delegate, precision, threads, config) "
                "VALUES ('ai-edge-litert', '2.3.0', 'xnnpack', 'fp32', 1, '')"
            )
        )
        conn.execute(
            text("INSERT INTO op_specs (spec_hash, kind, params) VALUES (:h, 'CONV_2D', '{}')"),
            {"h": SPEC.spec_hash},
        )
        conn.execute(
            text(
                "INSERT INTO measurements (device_id, runtime_id, spec_id, status, samples_ms, "
                "min_ms, warmup, repeats, model_file, created_at) VALUES ('host-cpu', "
                "(SELECT id FROM runtimes), (SELECT id FROM op_specs), 'ok', '[1.5]', 1.5, 1, 1, "
                "'', :t)"
            ),
            {"t": "2026-01-01 00:00:00+00:00"},
        )
    engine.dispose()
    with open_store(db_url) as store:
        assert current_revision(store._engine) == head_revision()
        [row] = store.measurements("host-cpu")
        assert row.min_ms == 1.5 and row.reference_ms is None
        store.add_measurement(
            "host-cpu",
            XNN,
            SpecRecord("fedcba9876543210", "ADD", {}),
            Measurement("ok", (2.0,), reference_ms=0.05),
        )
        assert store.reference_readings("host-cpu") == [0.05]
