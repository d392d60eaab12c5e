"""Every command in README.md's ``bash`` blocks is run by a test, and so is its Python example.

Who runs what:

* ``pip install .`` and the ``tflat`` commands of the Quickstart and First steps blocks: a fresh,
  non-editable install in ``tests/test_fresh_install.py`` (it reads them from here);
* ``pip install -e ".[dev]"`` and ``bash scripts/test.sh``: CI itself (``.ci/run`` runs both; this
  test is part of that run), checked below;
* the Model Explorer block: its ``tflat`` command runs here and its file is checked against
  Model Explorer's node-data format (``GraphNodeData``: results of ``{"value": ...}`` by node id,
  a gradient of stops from 0 to 1); ``pip install ai-edge-model-explorer`` and ``model-explorer``
  (a web server) are not run: they are named here so a new command cannot slip through.

Inline ``code`` in tables and prose is syntax with placeholders (MODEL, DEVICE, URL), not a command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tflat.cli import main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
EXAMPLE = REPO / "examples" / "face_detection_short_range.tflite"


def blocks(language: str) -> list[str]:
    """The fenced blocks of README.md in ``language``, in order."""
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def commands() -> list[str]:
    """Every command of every bash block: one per line, ``&&`` chains split."""
    out = []
    for block in blocks("bash"):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out += [part.strip() for part in line.split("&&")]
    return out


def fresh_install_commands() -> list[str]:
    """The ``tflat`` commands a new user runs from the clone after ``pip install .``: the
    Quickstart's and the First steps block's (test_fresh_install.py runs them)."""
    quickstart, first_steps = blocks("bash")[0], _first_steps()
    cmds = [c.strip() for c in quickstart.split("&&")]
    assert cmds[0] == "pip install ."
    return cmds[1:] + [c for c in first_steps.splitlines() if c.strip()]


def _first_steps() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## First steps", 1)[1]
    (block,) = re.findall(r"^```bash\n(.*?)^```", section.split("\n## ", 1)[0], re.S | re.M)
    return str(block)


OVERLAY = "tflat estimate model.tflite --device pixel4 --overlay model.pixel4.json"
NOT_RUN = {
    "pip install ai-edge-model-explorer": "a web UI with a binary adapter; the overlay's format "
    "is checked instead",
    "model-explorer model.tflite --node_data_paths=model.pixel4.json": "starts a web server; "
    "the overlay's format is checked instead",
}
RUN_BY_CI = ('pip install -e ".[dev]"', "bash scripts/test.sh")


def test_quickstart_is_exactly_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"^```bash\n(.*?)^```", quickstart, flags=re.S | re.M)
    assert [b.strip() for b in found] == [
        "pip install . && tflat estimate examples/face_detection_short_range.tflite "
        "--device pixel4",
        'pip install -e ".[dev]" && bash scripts/test.sh',
    ]


def test_every_command_has_a_runner() -> None:
    """A command added to the README without a test that runs it fails here."""
    fresh = set(fresh_install_commands())
    unclaimed = [
        c
        for c in commands()
        if c not in fresh
        and c != "pip install ."
        and c not in RUN_BY_CI
        and c != OVERLAY
        and c not in NOT_RUN
    ]
    assert unclaimed == []
    assert len(fresh) >= 8 and all(c.startswith("tflat ") for c in fresh)


def test_ci_runs_the_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r'pip install .*-e "\.\[dev\]"', ci)
    assert re.search(r"^bash scripts/test\.sh", ci, flags=re.M)


def test_model_explorer_overlay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert OVERLAY in commands()
    shutil.copy(EXAMPLE, tmp_path / "model.tflite")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TFLAT_DB", f"sqlite:///{tmp_path / 'tflat.db'}")
    assert main(shlex.split(OVERLAY)[1:]) == 0
    data = json.loads((tmp_path / "model.pixel4.json").read_text(encoding="utf-8"))
    # Model Explorer's GraphNodeData: results (node id -> NodeDataResult), thresholds, gradient
    assert set(data) <= {"results", "thresholds", "gradient"} and data["results"]
    from tflat import read_model

    n_ops = len(read_model(tmp_path / "model.tflite").ops)
    assert set(data["results"]) == {str(i) for i in range(n_ops)}  # node ids: op indices
    for result in data["results"].values():
        assert set(result) <= {"value", "bgColor", "textColor"}
        assert isinstance(result["value"], int | float) and result["value"] >= 0
    stops = [g["stop"] for g in data["gradient"]]
    assert stops[0] == 0 and stops[-1] == 1 and stops == sorted(stops)
    for g in data["gradient"]:
        assert set(g) <= {"stop", "bgColor", "textColor"}
        assert re.fullmatch(r"#[0-9a-f]{6}", g["bgColor"])


def test_python_example(tmp_path: Path) -> None:
    (code,) = blocks("python")
    shutil.copy(EXAMPLE, tmp_path / "model.tflite")
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TFLAT_DB": f"sqlite:///{tmp_path / 'tflat.db'}"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    totals = [ln.split() for ln in lines if re.fullmatch(r"[\d.e-]+ [\d.e-]+ [\d.e-]+", ln)]
    total, low, high = map(float, totals[0])
    assert low < total < high
    assert sum("CONV_2D" in line for line in lines) > 5  # the ops, then the top 5 layers
