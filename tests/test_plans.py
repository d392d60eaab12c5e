"""Sampling plans and `tflat generate`: counts, determinism, re-runs, and models that match
their manifest rows and run in LiteRT."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tflat import SpecError, read_model
from tflat.cli import main
from tflat.model.spec import OpSpec, check_graph, spec_from_op
from tflat.plans import (
    adaptive_specs,
    generate,
    load_plan,
    model_specs,
    neighbours,
    plan_from_dict,
    read_manifest,
    shipped_plans,
)

MODELS = Path(__file__).parent / "models"


def run_litert(path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], np.ones(d["shape"], dtype=np.float32))
    interp.invoke()


def _weight_elements(spec: OpSpec) -> int:
    p = spec.params
    k = p.get("kernel_h", 1) * p.get("kernel_w", 1)
    return k * p.get("cin", 1) * p.get("cout", 1) + p.get("input_h", 1) * p.get(
        "input_w", 1
    ) * p.get("cin", 1)


def test_shipped_plans() -> None:
    assert {"seed-grid", "random", "prior"} <= set(shipped_plans())


def test_seed_grid_is_the_study_grid() -> None:
    specs = load_plan("seed-grid").expand().specs
    assert len(specs) == 5760 == len({s.spec_hash for s in specs})
    assert {s.kind for s in specs} == {"CONV_2D"}
    values = {k: sorted({s.params[k] for s in specs}) for k in specs[0].params}
    assert values["kernel_h"] == values["kernel_w"] == [1, 2, 3, 5]
    assert values["cout"] == [16, 32, 64, 128, 256]
    assert values["input_h"] == values["input_w"] == [8, 16, 32, 64]
    assert values["cin"] == [16, 32, 48]
    assert values["stride"] == [1, 2, 3]
    assert values["padding"] == ["same", "valid"]


def test_random_plan_is_seeded() -> None:
    plan = load_plan("random")
    first = [s.spec_hash for s in plan.expand().specs]
    assert first == [s.spec_hash for s in plan.expand().specs]
    assert first != [s.spec_hash for s in plan.expand(seed=1).specs]
    kinds = Counter(s.kind for s in plan.expand().specs)
    assert len(kinds) == 19  # every op kind the writer knows


def test_latin_hypercube_hits_every_stratum() -> None:
    plan = plan_from_dict(
        {
            "random": [
                {
                    "kind": "RELU",
                    "count": 50,
                    "input_h": {"min": 1, "max": 50},
                    "input_w": 4,
                    "cin": 8,
                }
            ]
        }
    )
    assert sorted(s.params["input_h"] for s in plan.expand().specs) == list(range(1, 51))


def test_random_ranges_log_step_and_ties() -> None:
    plan = plan_from_dict(
        {
            "random": [
                {
                    "kind": "CONV_2D",
                    "count": 40,
                    "input_h": {"min": 8, "max": 256, "log": True},
                    "input_w": {"same_as": "input_h"},
                    "kernel": [1, 3],
                    "cin": {"min": 16, "max": 512, "log": True, "step": 16},
                    "cout": 32,
                    "groups": [1, 4],
                }
            ]
        }
    )
    specs = plan.expand().specs
    assert len(specs) == 40
    for s in specs:
        p = s.params
        assert p["input_h"] == p["input_w"] and 8 <= p["input_h"] <= 256
        assert p["cin"] % 16 == 0 and 16 <= p["cin"] <= 512
    small = sum(s.params["input_h"] < 45 for s in specs)  # log-uniform: half below sqrt(8*256)
    assert 10 <= small <= 30


def test_impossible_random_section_says_so() -> None:
    plan = plan_from_dict(
        {
            "random": [
                {
                    "kind": "CONV_2D",
                    "count": 5,
                    "input_h": 4,
                    "input_w": 4,
                    "cin": 3,
                    "cout": 8,
                    "kernel": 3,
                    "groups": 2,
                }
            ]
        }
    )
    with pytest.raises(SpecError, match="only 0 of 5"):
        plan.expand()


def test_bad_plan_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[grid]\nkind = 'RELU'\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_plan(bad)
    bad.write_text("[[grids]]\nkind = 'RELU'\n")
    with pytest.raises(SpecError, match="unknown key"):
        load_plan(bad)
    with pytest.raises(SpecError, match="not a shipped plan"):
        load_plan("no-such-plan")


def test_prior_plan_from_vendored_tables() -> None:
    specs = load_plan("prior").expand().specs
    kinds = Counter(s.kind for s in specs)
    assert set(kinds) == {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "MAX_POOL_2D",
        "AVERAGE_POOL_2D",
    }
    # alexnet's first conv is in the table as it is, and has jittered neighbours beside it
    assert any(
        s.params["kernel_h"] == 11 and s.params["input_h"] == 224
        for s in specs
        if s.kind == "CONV_2D"
    )
    assert sum(s.params["kernel_h"] == 11 for s in specs if s.kind == "CONV_2D") >= 2


def test_prior_from_real_models_reproduces_their_ops(tmp_path: Path) -> None:
    specs = model_specs(MODELS)
    assert len(specs) > 20
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD"} <= {s.kind for s in specs}
    # Each spec read from a real op builds a model whose op reads back as that spec.
    rng = np.random.default_rng(0)
    by_kind: dict[str, OpSpec] = {}
    for i in rng.permutation(len(specs)):
        if _weight_elements(specs[int(i)]) <= 300_000:
            by_kind.setdefault(specs[int(i)].kind, specs[int(i)])
    report = generate(by_kind.values(), tmp_path)
    assert report.failed == () and report.written == len(by_kind)


def test_plan_folder_prior_relative_to_plan_file(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "face.tflite").write_bytes(
        (MODELS / "face_detection_short_range.tflite").read_bytes()
    )
    plan = tmp_path / "p.toml"
    plan.write_text('[[prior]]\nmodels = "m"\nper_row = 2\njitter = 0.3\n')
    expanded = load_plan(plan).expand()
    originals = model_specs(tmp_path / "m")
    assert len(expanded.specs) > len({s.spec_hash for s in originals})


@pytest.mark.parametrize("plan", ["seed-grid", "random", "prior"])
def test_generated_models_match_manifest_and_run(plan: str, tmp_path: Path) -> None:
    expanded = load_plan(plan).expand()
    # a random sample with every op kind of the plan in it (small ones: the prior holds
    # VGG's 400 MB fully-connected layer, which the benchmark, not a unit test, writes)
    rng = np.random.default_rng(42)
    chosen: dict[str, list[OpSpec]] = {}
    for i in rng.permutation(len(expanded.specs)):
        spec = expanded.specs[int(i)]
        if _weight_elements(spec) > 300_000:
            continue
        if len(chosen.setdefault(spec.kind, [])) < 3:
            chosen[spec.kind].append(spec)
    specs = [s for group in chosen.values() for s in group]
    report = generate(specs, tmp_path)
    assert report.failed == () and report.written == len(specs)
    rows = read_manifest(tmp_path)
    assert len(rows) == len(specs)
    for row in rows.values():
        path = tmp_path / row["file"]
        graph = read_model(path)
        main_op = next(op for op in graph.ops if op.type == row["kind"])
        assert dict(spec_from_op(main_op, graph).params) == row["params"]
        assert spec_from_op(main_op, graph).spec_hash == row["spec_hash"]
        assert path.stat().st_size == row["size_bytes"]
        run_litert(path)
    header = (tmp_path / "manifest.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["file", "kind", "spec_hash", "size_bytes"]
    assert set(specs[0].params) <= set(header)


def test_generate_is_safe_to_rerun(tmp_path: Path) -> None:
    specs = load_plan("random").expand(sample=12, seed=5).specs
    first = generate(specs[:8], tmp_path)
    assert (first.written, first.skipped) == (8, 0)
    # A run that died after a rename but before its manifest row, and one that died mid-write
    lost = specs[8]
    from tflat.model.writer import build_spec
    from tflat.plans import model_path

    lost_path = tmp_path / model_path(lost)
    lost_path.parent.mkdir(parents=True, exist_ok=True)
    lost_path.write_bytes(build_spec(lost))
    (tmp_path / model_path(specs[9])).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / (model_path(specs[9]) + ".part")).write_bytes(b"half")
    with (tmp_path / "manifest.jsonl").open("a") as fh:
        fh.write('{"file": "torn')
    second = generate(specs, tmp_path)
    assert (second.written, second.skipped, second.failed) == (3, 9, ())
    rows = read_manifest(tmp_path)
    assert set(rows) == {s.spec_hash for s in specs}
    check_graph(read_model(lost_path), lost)
    assert not list(tmp_path.rglob(".*.part"))


def test_invalid_specs_fail_alone_and_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "mixed.toml"
    plan.write_text(
        "[[grid]]\nkind = 'CONV_2D'\ninput_h = 8\ninput_w = 8\ncin = [16, 18]\ncout = 32\n"
        "kernel = [3, 9]\ngroups = 4\npadding = 'valid'\n"
    )
    expanded = load_plan(plan).expand()
    assert len(expanded.specs) == 1 and len(expanded.invalid) == 3
    code = main(["generate", str(plan), "--out", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err
    # one line for the error; the valid spec is still written
    assert len(err.strip().splitlines()) == 1
    assert "3 spec(s) could not be generated" in err and "invalid spec" in err
    assert len(read_manifest(tmp_path / "out")) == 1
    # `plan show` names why each one is invalid
    assert main(["plan", "show", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "groups 4 do not divide cin 18" in out and "larger than input" in out


def test_cli_plan_show_and_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "show", "seed-grid", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["count"] == 5760 and shown["by_kind"] == {"CONV_2D": 5760}
    assert main(["plan", "show", "random"]) == 0
    assert "HARD_SWISH" in capsys.readouterr().out
    out = tmp_path / "gen"
    assert main(["generate", "random", "--out", str(out), "--sample", "15", "--seed", "3"]) == 0
    assert "15 written" in capsys.readouterr().out
    assert main(["generate", "random", "--out", str(out), "--sample", "15", "--seed", "3"]) == 0
    assert "0 written, 15 already there" in capsys.readouterr().out
    assert len(list(out.rglob("*.tflite"))) == 15
    assert main(["plan", "show", "nope"]) == 1
    assert "not a shipped plan" in capsys.readouterr().err


def test_adaptive_samples_around_the_worst() -> None:
    base = load_plan("random").expand(sample=40, seed=2).specs
    errors = [(s, 0.01 * i) for i, s in enumerate(base)]
    worst = base[-1]
    new = adaptive_specs(errors, 20, worst=2, seed=1)
    assert 10 <= len(new) <= 20
    known = {s.spec_hash for s in base}
    assert all(s.spec_hash not in known for s in new)
    kinds_of_worst = {base[-1].kind, base[-2].kind}
    assert {s.kind for s in new} <= kinds_of_worst
    # the worst spec gets at least as many neighbours as the second worst
    near_worst = [s for s in new if s.kind == worst.kind]
    assert len(near_worst) >= len(new) // 2
    assert adaptive_specs(errors, 0) == []
    assert adaptive_specs(errors, 10, seed=3) == adaptive_specs(errors, 10, seed=3)


def test_neighbours_keep_structure() -> None:
    spec = OpSpec(
        "CONV_2D",
        {
            "input_h": 56,
            "input_w": 56,
            "cin": 64,
            "cout": 128,
            "kernel": 3,
            "stride": 2,
            "groups": 4,
        },
    )
    near = neighbours(spec, 10, np.random.default_rng(0), 0.3)
    assert len(near) == 10
    for n in near:
        p = n.params
        assert (p["kernel_h"], p["stride"], p["groups"]) == (3, 2, 4)
        assert p["input_h"] == p["input_w"] and 40 <= p["input_h"] <= 75
        assert p["cin"] % 4 == 0 and p["cout"] % 4 == 0


def test_oversized_weights_are_refused_unless_the_plan_allows_them(tmp_path: Path) -> None:
    vgg_fc = "[[specs]]\nkind = 'FULLY_CONNECTED'\ncin = 25088\ncout = 4096\n"
    small = "[[specs]]\nkind = 'FULLY_CONNECTED'\ncin = 64\ncout = 10\n"
    (tmp_path / "default.toml").write_text(vgg_fc + small)
    (tmp_path / "roomy.toml").write_text("max_weight_mb = 500\n" + vgg_fc + small)
    refused = load_plan(tmp_path / "default.toml").expand()
    assert [s.params["cin"] for s in refused.specs] == [64]
    assert len(refused.invalid) == 1 and "411 MB of weights" in refused.invalid[0].reason
    allowed = load_plan(tmp_path / "roomy.toml").expand()
    assert sorted(s.params["cin"] for s in allowed.specs) == [64, 25088]
    (tmp_path / "bad.toml").write_text("max_weight_mb = -1\n" + small)
    with pytest.raises(SpecError, match="max_weight_mb"):
        load_plan(tmp_path / "bad.toml")
