"""`tflat db` and `tflat bench` from the command line: output, files and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tflat.cli import main
from tflat.datasets.usc import default_folder

#: The USC data: TFLAT_USC_DIR's folder when set, else the copy shipped in the package.
USC_DIR = default_folder()
MODEL = Path(__file__).resolve().parent / "models" / "hand_recrop.tflite"
BAD_PG = "postgresql+psycopg://nobody@127.0.0.1:1/none"


def _stats(url: str, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["db", "stats", "--db", url, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_dir_then_export_import_round_trip(
    db_url: str, tiny_models_12: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bench", str(tiny_models_12), "--device", "host-cpu", "--db", db_url]
    assert main([*args, "--repeats", "3", "--warmup", "1", "--sample", "5", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "host-cpu: 5 measured (0 failed), 0 measured before, 5 in all" in out
    assert main([*args, "--repeats", "3", "--warmup", "1"]) == 0
    assert "7 measured (0 failed), 5 measured before, 12 in all" in capsys.readouterr().out
    stats = _stats(db_url, capsys)
    assert stats["tables"]["measurements"] == 12
    assert stats["devices"][0]["device_id"] == "host-cpu"

    csv_path = tmp_path / "m.csv"
    assert main(["db", "export", "--db", db_url, "-o", str(csv_path)]) == 0
    assert len(csv_path.read_text().splitlines()) == 13
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert main(["db", "import", str(csv_path), "--db", other]) == 0
    assert "imported 12 measurements; 0 were stored already" in capsys.readouterr().out
    again = tmp_path / "again.csv"
    assert main(["db", "export", "--db", other, "-o", str(again)]) == 0
    assert again.read_text() == csv_path.read_text()
    pq = tmp_path / "m.parquet"
    assert main(["db", "export", "--db", other, "--format", "parquet", "-o", str(pq)]) == 0
    assert pq.stat().st_size > 0


def test_bench_whole_model(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", str(MODEL), "--device", "host-cpu", "--db", sqlite_url, "--repeats", "3"]
    assert main([*args, "--warmup", "1"]) == 0
    assert "hand_recrop.tflite on host-cpu: min" in capsys.readouterr().out
    assert main([*args, "--warmup", "1"]) == 0
    assert "measured already" in capsys.readouterr().out
    assert _stats(sqlite_url, capsys)["tables"]["model_measurements"] == 1


def test_import_usc(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "import", str(USC_DIR), "--format", "usc", "--db", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert "imported 79 models, 7110 whole-model measurements, 23310 per-op rows" in out
    stats = _stats(sqlite_url, capsys)
    assert stats["tables"]["op_profiles"] == 3885 * 6
    assert sorted(d["device_id"] for d in stats["devices"]) == sorted(
        ["pixel4", "s10", "mi8se", "a03s", "iphone7", "iphonexs"]
    )


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["db", "stats", "--db", BAD_PG], 2, "cannot open database"),
        (["db", "import", "/no/such/file.csv"], 1, "no such file"),
        (["db", "export", "--format", "parquet"], 1, "needs -o FILE"),
        (["bench", "/no/such/dir", "--device", "host-cpu"], 1, "no such file"),
        (["bench", "{models}", "--device", "android:XYZ"], 1, "--benchmark-binary"),
        (["bench", "{models}", "--device", "nokia"], 1, "unknown device"),
        (["bench", "{models}", "--device", "host-cpu", "--db", BAD_PG], 2, "cannot open"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    argv: list[str],
    code: int,
    message: str,
    tiny_models_12: Path,
    capsys: pytest.CaptureFixture[str],
    default_db: str,
) -> None:
    argv = [a.replace("{models}", str(tiny_models_12)) for a in argv]
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert message in err
    assert err.startswith("tflat: error:") and len(err.splitlines()) == 1


def test_bad_import_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["db", "import", str(bad), "--db", str(tmp_path / "x.db")]) == 1
    assert "not a tflat measurements CSV" in capsys.readouterr().err


def test_bench_a_shipped_plan_generates_then_measures(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    args = ["bench", "seed-grid", "--device", "host-cpu", "--db", sqlite_url, "--sample", "4"]
    assert main([*args, "--repeats", "2", "--warmup", "0"]) == 0
    assert "4 measured (0 failed), 0 measured before, 4 in all" in capsys.readouterr().out
    assert list((tmp_path / "cache").rglob("manifest.jsonl"))
    assert main([*args, "--repeats", "2", "--warmup", "0"]) == 0
    assert "0 measured (0 failed), 4 measured before" in capsys.readouterr().out
