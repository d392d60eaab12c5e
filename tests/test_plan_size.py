"""A plan's size is known before any spec is made, and a plan over the cap is refused at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tflat.cli import main
from tflat.errors import SpecError
from tflat.plans import DEFAULT_MAX_SPECS, load_plan, plan_from_dict

HUNDRED = list(range(1, 101))
#: six axes of a hundred values: 10^12 specs
HUGE = {
    "name": "huge",
    "grid": [
        {
            "kind": "CONV_2D",
            **{k: HUNDRED for k in ("input_h", "input_w", "cin", "cout", "kernel_h", "kernel_w")},
        }
    ],
}


def _toml(path: Path) -> Path:
    axes = "\n".join(
        f"{k} = {HUNDRED}" for k in ("input_h", "input_w", "cin", "cout", "kernel_h", "kernel_w")
    )
    path.write_text(f'name = "huge"\n[[grid]]\nkind = "CONV_2D"\n{axes}\n', encoding="utf-8")
    return path


def test_size_is_computed_without_making_specs() -> None:
    assert plan_from_dict(HUGE).size() == 10**12
    seed = load_plan("seed-grid")
    assert seed.size() == len(seed.expand().specs) == 5760
    for name in ("random", "prior", "calibrate-random"):
        plan = load_plan(name)
        expanded = plan.expand()
        # an upper bound: duplicates and specs no model can have are dropped afterwards
        assert plan.size() >= len(expanded.specs) + len(expanded.invalid) > 0


def test_a_plan_of_a_trillion_specs_is_refused_before_generation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tflat.plans import plan, sampling

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a spec was made for a plan over the cap")

    monkeypatch.setattr(plan, "_section", never)
    monkeypatch.setattr(sampling, "grid", never)
    path, out = _toml(tmp_path / "huge.toml"), tmp_path / "out"
    for args in (
        ["generate", str(path), "--out", str(out)],
        ["plan", "show", str(path)],
        ["bench", str(path), "--device", "host-cpu", "--db", str(tmp_path / "db.sqlite")],
    ):
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert f"expands to 1000000000000 specs, over the limit of {DEFAULT_MAX_SPECS}" in err
    assert not out.exists() and not (tmp_path / "db.sqlite").exists()


def test_max_specs_moves_the_cap(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "show", "seed-grid", "--max-specs", "5759"]) == 1
    assert "5760 specs, over the limit of 5759" in capsys.readouterr().err
    assert main(["plan", "show", "seed-grid", "--max-specs", "5760", "--format", "json"]) == 0
    with pytest.raises(SpecError, match="over the limit of 100"):
        load_plan("random").expand(max_specs=100)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[random]]\nkind = 'ADD'\ncount = -1\ncin = 8\ninput_h = 4\ninput_w = 4", "count must"),
        ("[[random]]\nkind = 'ADD'\ncount = '5'\ncin = 8\ninput_h = 4\ninput_w = 4", "count must"),
        ("[[random]]\nkind = 'ADD'\ncount = 1e12\ncin = 8", "count must"),
        ("[[prior]]\ntables = ['fc']\nper_row = 1.5", "per_row must"),
        ("[[prior]]\ntables = ['fc']\nkeep = 'yes'", "keep must"),
        ("[[prior]]\ntables = ['fc']\njitter = 1e308", "jitter must"),
        ("[[prior]]\ntables = 'fc'", "tables must"),
        ("[[prior]]\nmodels = 3", "models must"),
        ("seed = -1\n[[specs]]\nkind = 'ADD'\ncin = 8\ninput_h = 4\ninput_w = 4", "seed must"),
        ("seed = 'x'\n[[specs]]\nkind = 'ADD'\ncin = 8\ninput_h = 4\ninput_w = 4", "seed must"),
        ("grid = [1, 2]", "must be a table"),
    ],
)
def test_bad_plan_values_are_one_line_errors(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n", encoding="utf-8")
    assert main(["plan", "show", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
