"""Progress: library calls report steps, the CLI draws bars on stderr only on a terminal or
when asked (``tflat --progress``), never into the output."""

from __future__ import annotations

from pathlib import Path

import pytest

from tflat.cli import main
from tflat.progress import Step, nested, report


def test_nested_maps_a_sub_task_onto_one_unit_of_its_parent() -> None:
    seen: list[Step] = []
    inner = nested(seen.append, 2, 5, "fold 3 of 5")
    assert inner is not None
    for done in (0, 1, 4, 4, 9):  # a sub-task may overshoot; the parent never leaves its unit
        inner(Step(done, 4, "training"))
    assert [s.done for s in seen] == [2.0, 2.25, 3.0, 3.0, 3.0]
    assert {s.total for s in seen} == {5} and {s.label for s in seen} == {"fold 3 of 5"}
    assert nested(None, 0, 1) is None
    report(None, 1, 2)  # no callback: nothing to do


def test_bench_draws_a_bar_only_when_asked(
    tiny_models_12: Path, capsys: pytest.CaptureFixture[str], default_db: str
) -> None:
    argv = ["bench", str(tiny_models_12), "--device", "host-cpu", "--repeats", "2", "--warmup",
            "0", "--sample", "2"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "ETA" not in err and "2 measured" in out
    assert main(["--progress", *argv, "--seed", "1"]) == 0
    out, err = capsys.readouterr()
    assert "host-cpu" in err and "ETA" in err and "2/2" in err
    assert "ETA" not in out
