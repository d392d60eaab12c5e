"""No model name runs as a command on the phone.

The stand-in for the phone is a fake ``adb`` executable put first on PATH, where the runner
finds the real one. Like the real client, it joins the words after ``shell`` with spaces and
hands the line to ``sh -c`` (run in a temporary folder standing for the phone), and ``push``
copies a file. The pushed ``benchmark_model`` is a small script that checks the ``--graph`` it
was given exists and prints output recorded from a real phone.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tflat.bench import RunSettings
from tflat.bench.android import AndroidRunner, remote_name

RECORDED = Path(__file__).parent / "data" / "benchmark_model" / "tf43541_android_gpu.txt"
SERIAL = "FAKE01"

FAKE_ADB = """#!{python}
import shutil, subprocess, sys
args = sys.argv[1:]
if args[:1] == ["-s"]:
    args = args[2:]
if args == ["devices"]:
    print("List of devices attached\\n{serial}\\tdevice")
    sys.exit(0)
if args[0] == "push":
    shutil.copyfile(args[1], args[2])
    sys.exit(0)
if args[0] == "shell":
    # what the real adb does: one line of the words, run by the phone's shell
    done = subprocess.run(["sh", "-c", " ".join(args[1:])], cwd={home!r})
    sys.exit(done.returncode)
sys.exit("fake adb: unknown command " + " ".join(args))
"""

FAKE_BENCHMARK = """#!/bin/sh
graph=""
for a in "$@"; do
  case "$a" in --graph=*) graph="${{a#--graph=}}" ;; esac
done
printf '%s\\n' "$graph" >> {log}
if [ ! -f "$graph" ]; then echo "ERROR: Failed to load model $graph"; exit 1; fi
cat {recorded}
"""

HOSTILE = [
    "a;touch PWNED;b.tflite",
    "$(touch DOLLAR).tflite",
    "`touch BACKTICK`.tflite",
    "it's \"quoted\" & 'more'.tflite",
    "new\nline;touch NEWLINE.tflite",
    "with spaces > redirected.tflite",
    "-rf.tflite",
    "--graph=evil.tflite",
    "a|touch PIPE.tflite",
    "*.tflite",
]


class FakePhone:
    def __init__(self, root: Path) -> None:
        self.home = root / "phone"
        self.home.mkdir()
        # a folder name that is itself hostile: only quoting keeps mkdir, chmod, the run and
        # rm on it (the runner creates it with mkdir -p on the phone)
        self.remote_dir = self.home / "tf lat;touch RDIR" / "$(touch RD2)`touch RD3`"
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "graphs.log"
        adb = self.bin / "adb"
        adb.write_text(FAKE_ADB.format(python=sys.executable, serial=SERIAL, home=str(self.home)))
        adb.chmod(0o755)
        self.binary = root / "benchmark_model"
        self.binary.write_text(
            FAKE_BENCHMARK.format(
                log=shlex.quote(str(self.log)), recorded=shlex.quote(str(RECORDED))
            )
        )
        self.binary.chmod(0o755)

    def files(self, root: Path) -> set[Path]:
        return {p for p in root.rglob("*")}


@pytest.fixture
def phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePhone:
    fake = FakePhone(tmp_path)
    monkeypatch.setenv("PATH", f"{fake.bin}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.chdir(tmp_path)
    return fake


def test_the_fake_adb_runs_an_unquoted_line_like_the_real_one(phone: FakePhone) -> None:
    """The harness can fail: a shell word with ``;`` does run a second command through it."""
    adb = str(phone.bin / "adb")
    subprocess.run([adb, "-s", SERIAL, "shell", "echo", "a;touch", "PWNED"], check=True, timeout=30)
    assert (phone.home / "PWNED").exists()


def test_hostile_model_names_never_run_on_the_phone(
    phone: FakePhone, tmp_path: Path, tiny_models_12: Path
) -> None:
    sources = sorted(tiny_models_12.glob("*.tflite"))
    models = tmp_path / "models"
    models.mkdir()
    paths = []
    for name, source in zip(HOSTILE, sources, strict=False):
        path = models / name
        path.write_bytes(source.read_bytes())
        paths.append(path)
    assert len(paths) == len(HOSTILE)
    before = phone.files(tmp_path)
    runner = AndroidRunner(SERIAL, benchmark_binary=phone.binary, remote_dir=str(phone.remote_dir))
    with runner:
        for path in paths:
            m = runner.measure(path, RunSettings(delegate="gpu", warmup=1, repeats=50))
            # the binary found the model it was given: the quoted --graph arrived whole
            assert m.ok, (path.name, m.error)
            assert m.count == 50 and m.mean_ms == pytest.approx(119.375)
        pushed = {phone.remote_dir / remote_name(p) for p in paths}
        assert pushed <= phone.files(phone.remote_dir)
    graphs = phone.log.read_text().splitlines()
    assert graphs == [str(phone.remote_dir / remote_name(p)) for p in paths]
    created = phone.files(tmp_path) - before
    # the folder (mkdir -p), the binary, the log of graphs; close() removed the models
    expected = {phone.remote_dir.parent, phone.remote_dir, phone.remote_dir / "benchmark_model"}
    assert created == {*expected, phone.log}, created
    for marker in ("PWNED", "DOLLAR", "BACKTICK", "NEWLINE.tflite", "PIPE.tflite", "redirected"):
        assert not any(marker in p.name for p in phone.files(phone.home)), marker
    assert not any(p.name in ("RDIR", "RD2", "RD3") for p in phone.files(tmp_path))


def test_shell_words_arrive_as_words(phone: FakePhone) -> None:
    runner = AndroidRunner(SERIAL, benchmark_binary=phone.binary)
    words = ["a;touch PWNED", "$(touch DOLLAR)", "`touch BACKTICK`", "it's", "two  spaces", "-n"]
    done = runner.shell("printf", "%s\\n", *words)
    assert done.returncode == 0
    assert done.stdout.splitlines() == words
    assert sorted(p.name for p in phone.home.iterdir()) == []


def test_remote_names_are_content_hashes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a;rm -rf x.tflite", tmp_path / "b.tflite", tmp_path / "c.tflite"
    a.write_bytes(b"one")
    b.write_bytes(b"one")
    c.write_bytes(b"two")
    assert remote_name(a) == remote_name(b) != remote_name(c)
    assert re.fullmatch(r"[0-9a-f]{32}\.tflite", remote_name(a))
