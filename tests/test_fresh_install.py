"""A newcomer's first hour: ``pip install .`` (not editable) and the README's commands.

The repository's tracked files are copied to a temporary folder (a fresh clone: no ``../shared``
beside it, no build left over), built into a wheel whose contents are checked (the USC data, its
licence and source must ship), and the wheel is installed into a new virtual environment. That
is what ``pip install .`` does; the environment sees this Python's site-packages for the
dependencies, which CI installed already, so the test needs no network beyond the build's own
setuptools. Then the Quickstart's and First steps' ``tflat`` commands (read from README.md) run
with that environment's ``tflat``, from the copy, with no TFLAT_USC_DIR, no PYTHONPATH and a home
of their own.
"""

from __future__ import annotations

import csv
import io
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from test_readme import REPO, fresh_install_commands

pytestmark = pytest.mark.slow

MUST_SHIP = (
    "tflat/data/usc/tflite_cnn_ops_gpu.csv.xz",
    "tflat/data/usc/tflite_cnn_e2e.csv.xz",
    "tflat/data/usc/LICENSE",
    "tflat/data/usc/SOURCE.md",
    "tflat/data/devices/pixel4.json",
    "tflat/gpu/rules/tflite_gpu.toml",
    "tflat/store/migrations/env.py",
)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    assert done.returncode == 0, f"{shlex.join(cmd)}: exit {done.returncode}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(the copied clone, the venv's bin folder, the environment a new user has)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to copy the tracked files from")
    root = tmp_path_factory.mktemp("newcomer")
    clone = root / "tflat"
    tracked = _run(["git", "ls-files", "-z"], REPO, dict(os.environ)).split("\0")
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, clone / name)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "TFLAT_USC_DIR", "TFLAT_DB", "COLUMNS")}  # fmt: skip
    home = root / "home"
    env |= {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1"}  # fmt: skip
    # pip's own cache stays where it is: the build's setuptools comes from it when it can
    env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    wheels = root / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(clone)],
         root, env)  # fmt: skip
    (wheel,) = wheels.glob("tflat-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in MUST_SHIP if n not in names]
    assert missing == [], f"not in the wheel: {missing}"
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], root, env)
    bin_dir = venv / "bin"
    _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], root,
         env)  # fmt: skip
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return clone, bin_dir, env


def test_the_installed_package_is_the_wheel_not_a_checkout(
    installed: tuple[Path, Path, dict[str, str]],
) -> None:
    clone, bin_dir, env = installed
    where = _run([str(bin_dir / "python"), "-c", "import tflat; print(tflat.__file__)"], clone, env)
    assert "site-packages" in where and str(bin_dir.parent) in where, where
    usc = _run([str(bin_dir / "python"), "-c",
                "from tflat.datasets.usc import default_folder, have_usc; "
                "print(default_folder(), have_usc())"], clone, env)  # fmt: skip
    assert str(bin_dir.parent) in usc and usc.strip().endswith("True"), usc


def test_readme_commands_from_a_fresh_install(
    installed: tuple[Path, Path, dict[str, str]],
) -> None:
    clone, bin_dir, env = installed
    assert not (clone.parent / "shared").exists()
    outputs = {}
    for command in fresh_install_commands():
        argv = shlex.split(command)
        assert argv[0] == "tflat"
        outputs[command] = _run([str(bin_dir / "tflat"), *argv[1:]], clone, env)

    quickstart = next(out for cmd, out in outputs.items() if "--device pixel4" in cmd)
    assert "total" in quickstart and "overhead" in quickstart
    two = next(out for cmd, out in outputs.items() if "-d pixel4 -d iphonexs" in cmd)
    header = two.splitlines()[1].split()
    assert "pixel4" in header and "iphonexs" in header  # one table, side by side
    rows = list(csv.DictReader(io.StringIO((clone / "estimate.csv").read_text())))
    assert [r["role"] for r in rows[-2:]] == ["overhead", "total"]
    assert sum(float(r["latency_ms"]) for r in rows[:-1]) == pytest.approx(
        float(rows[-1]["latency_ms"]), rel=1e-12
    )
    assert "<table" in (clone / "report.html").read_text(encoding="utf-8")
    assert (clone / "pixel4.json").stat().st_size > 10_000
    trained = next(out for cmd, out in outputs.items() if cmd.startswith("tflat train"))
    assert "trained pixel4: 3885 kernels, 79 models" in trained
    evaluated = next(out for cmd, out in outputs.items() if cmd.startswith("tflat evaluate"))
    assert "whole model" in evaluated and "79" in evaluated
    assert (clone / "pixel4.svg").read_text(encoding="utf-8").startswith("<svg")
