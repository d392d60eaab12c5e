"""The CLI's error contract across commands: exit 0 ok, 1 bad input, 2 device or database
failure; exactly one line on stderr, never a traceback; no half-written output left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tflat.cli import main
from tflat.store.tabular import MEASUREMENT_COLUMNS

MODELS = Path(__file__).resolve().parent / "models"
MODEL = MODELS / "hand_recrop.tflite"
BAD_PG = "postgresql+psycopg://nobody@127.0.0.1:1/none"


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Bad inputs of every kind, and a default database that is not the user's."""
    monkeypatch.setenv("TFLAT_DB", f"sqlite:///{tmp_path / 'default.db'}")
    (tmp_path / "empty.tflite").write_bytes(b"")
    (tmp_path / "random.bin").write_bytes(bytes(range(256)) * 20)
    (tmp_path / "folder").mkdir()
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "manifest.jsonl").write_bytes(b"\x84\xff" * 100)
    (tmp_path / "bad.toml").write_text("name = 'x'\n[[[grid\n")
    (tmp_path / "benchmark_model").write_bytes(b"\x7fELF")
    row = {c: "1" for c in MEASUREMENT_COLUMNS} | {"status": "weird"}
    (tmp_path / "bad-status.csv").write_text(
        ",".join(MEASUREMENT_COLUMNS) + "\n" + ",".join(row.values()) + "\n"
    )
    return {
        "tmp": str(tmp_path),
        "model": str(MODEL),
        "empty": str(tmp_path / "empty.tflite"),
        "random": str(tmp_path / "random.bin"),
        "folder": str(tmp_path / "folder"),
        "garbled": str(tmp_path / "garbled"),
        "badtoml": str(tmp_path / "bad.toml"),
        "binary": str(tmp_path / "benchmark_model"),
        "badstatus": str(tmp_path / "bad-status.csv"),
        "missing_db": f"sqlite:///{tmp_path / 'no' / 'such.db'}",
    }


def _run(argv: list[str], files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = main([a.format(**files) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return f"{code}|{err}"


BAD_INPUT = [
    ["inspect", "{tmp}/nope.tflite"],
    ["inspect", "{folder}"],
    ["inspect", "{empty}"],
    ["inspect", "{random}"],
    ["estimate", "{tmp}/nope.tflite"],
    ["estimate", "{folder}"],
    ["estimate", "{empty}"],
    ["estimate", "{random}"],
    ["estimate", "{model}", "--device", "nokia3310"],
    ["estimate", "{model}", "--format", "xml"],
    ["estimate", "{model}", "-o", "{tmp}/no/such/dir/out.txt"],
    ["estimate", "{model}", "-o", "{folder}"],
    ["estimate", "{model}", "--format", "html", "-o", "{empty}/out.html"],
    ["estimate", "{model}", "--overlay", "{tmp}/no/such/dir/o.json"],
    ["devices", "-o", "{tmp}/no/such/dir/devices.txt"],
    ["plan", "show", "no-such-plan"],
    ["plan", "show", "{badtoml}"],
    ["plan", "show", "{random}"],
    ["generate", "{badtoml}", "--out", "{tmp}/gen"],
    ["generate", "random", "--out", "{tmp}/gen", "--sample", "0"],
    ["db", "import", "{random}"],
    ["db", "import", "{badstatus}"],
    ["db", "import", "{tmp}/nope.csv"],
    ["db", "import", "{random}", "--format", "usc"],
    ["db", "export", "--format", "parquet"],
    ["bench", "{tmp}/nope", "--device", "host-cpu"],
    ["bench", "{folder}", "--device", "host-cpu"],
    ["bench", "{garbled}", "--device", "host-cpu"],
    ["bench", "{random}", "--device", "host-cpu"],
    ["bench", "{badtoml}", "--device", "host-cpu"],
    ["bench", "{model}", "--device", "nokia3310"],
    ["bench", "{model}", "--device", "host-cpu", "--delegate", "gpu"],
    ["bench", "{model}", "--device", "host-cpu", "--precision", "fp16"],
    ["bench", "{model}", "--device", "host-cpu-t0"],
    ["bench", "{model}", "--device", "android:XYZ"],
    ["bench", "{model}", "--device", "android:XYZ", "--benchmark-binary", "{tmp}/nope"],
]


@pytest.mark.parametrize("name", ["notes.txt", "README", "model.tflite"])
@pytest.mark.parametrize(
    "command", [["inspect"], ["estimate"], ["bench", "--device", "host-cpu"]], ids=" ".join
)
def test_a_text_file_is_not_a_tflite_model(
    command: list[str], name: str, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = Path(files["tmp"]) / name
    text.write_text("# my notes\nthis is not a model\n", encoding="utf-8")
    code, err = _run([command[0], str(text), *command[1:]], files, capsys).split("|", 1)
    assert code == "1", err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"tflat: error: {text}: not a .tflite model"), line


def test_train_host_cpu_on_an_empty_database_names_the_command_to_run_first(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(["train", "--device", "host-cpu"], files, capsys).split("|", 1)
    assert code == "1", err
    (line,) = err.strip().splitlines()
    assert "run 'tflat calibrate host-cpu' first" in line, line
    url = f"sqlite:///{files['tmp']}/empty.db"
    code, err = _run(["train", "--device", "host-cpu", "--db", url], files, capsys).split("|", 1)
    assert code == "1" and f"run 'tflat calibrate host-cpu --db {url}' first" in err, err


DB_FAILURES = [
    ["estimate", "{model}", "--db", "foo://"],
    ["estimate", "{model}", "--db", BAD_PG],
    ["estimate", "{model}", "--db", "{missing_db}"],
    ["devices", "--db", "foo://"],
    ["devices", "--db", BAD_PG],
    ["devices", "--db", "{missing_db}"],
    ["db", "stats", "--db", "foo://"],
    ["db", "stats", "--db", "{missing_db}"],
    ["db", "stats", "--db", "{random}"],
    ["db", "export", "--db", BAD_PG],
    ["db", "export", "--db", "{missing_db}"],
    ["db", "import", "{model}", "--db", "foo://"],
    ["bench", "{model}", "--device", "host-cpu", "--db", BAD_PG],
]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(a, "1") for a in BAD_INPUT] + [(a, "2") for a in DB_FAILURES],
    ids=lambda v: " ".join(v) if isinstance(v, list) else f"exit {v}",
)
def test_bad_input_is_exit_1_and_database_failure_exit_2_in_one_line(
    argv: list[str], expected: str, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(argv, files, capsys).split("|", 1)
    assert code == expected, err
    assert err.startswith("tflat: error: ") and len(err.strip().splitlines()) == 1, err


def test_read_only_commands_do_not_create_a_database_at_a_mistyped_path(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["db", "stats"], ["devices"], ["estimate", "{model}"]):
        _run([*argv, "--db", "{missing_db}"], files, capsys)
    assert not (Path(files["tmp"]) / "no").exists()


def test_failed_write_leaves_no_file_behind(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp = Path(files["tmp"])
    for fmt in ("table", "csv", "json", "html"):
        out = _run(["estimate", "{model}", "--format", fmt, "-o", "{folder}"], files, capsys)
        assert out.startswith("1|")
    assert sorted(p.name for p in (tmp / "folder").iterdir()) == []
    assert not list(tmp.glob("*.part"))


def test_table_to_file_and_pipe_keeps_whole_cells(
    files: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "table.txt"
    assert _run(["estimate", "{model}", "-o", str(out)], files, capsys).startswith("0|")
    assert "…" not in out.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["estimate", str(MODEL), "-d", "pixel4", "-d", "s10"]) == 0
    text = capsys.readouterr().out
    assert "…" not in text
    header = text.splitlines()[1].split()
    assert "pixel4" in header and "s10" in header  # one table, a column per device


@pytest.fixture
def no_phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``adb`` that lists no phone: the one test double here, as no phone can be attached."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text("#!/bin/sh\necho 'List of devices attached'\necho\n")
    adb.chmod(adb.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.mark.usefixtures("no_phone")
@pytest.mark.parametrize("target", ["{model}", "{tmp}/models"])
def test_no_phone_is_exit_2_and_one_line(
    target: str,
    files: dict[str, str],
    tiny_models_12: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = {**files, "tmp": str(tiny_models_12.parent)}
    argv = ["bench", target.replace("{tmp}/models", str(tiny_models_12))]
    argv += ["--device", "android:XYZ", "--benchmark-binary", "{binary}"]
    code, err = _run(argv, files, capsys).split("|", 1)
    assert code == "2", err
    assert err.strip() == "tflat: error: no phone XYZ attached (adb devices lists: none)"


def test_no_adb_is_exit_2_and_one_line(
    files: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    argv = ["bench", "{model}", "--device", "android:XYZ", "--benchmark-binary", "{binary}"]
    code, err = _run(argv, files, capsys).split("|", 1)
    assert code == "2", err
    assert err.strip() == "tflat: error: adb not found; install the Debian package adb"


def test_host_cpu_variant_takes_its_thread_count(
    files: dict[str, str], tiny_models_12: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", str(tiny_models_12), "--device", "host-cpu-t2", "--sample", "1"]
    code, err = _run([*argv, "--repeats", "2", "--warmup", "0"], files, capsys).split("|", 1)
    assert code == "0", err
    argv = ["bench", str(tiny_models_12), "--device", "host-cpu-t2", "--threads", "3"]
    code, err = _run(argv, files, capsys).split("|", 1)
    assert code == "1" and "contradicts" in err
