"""The pricing targets of issue 17, checked on graphs this script builds (and, with --models,
on real exports the user has).

Run: python benchmarks/pricing_targets.py [--models DIR]
Writes benchmarks/results/pricing_targets.json and .md. Prices are composed by
benchmarks/pricing_compose.py (the registry/compose of the redesign are not on main yet).

Built with tflat's writer (always):
* an ADD of two 112x112x96 tensors against one of two 7x7x96 tensors on pixel4;
* conv -> CUMSUM -> conv on every phone: the CUMSUM's basis and time, the copies;
* Inception-ResNet-V2 / MobileNet v1 (TF-slim layouts, benchmarks/anchor_models.py) on pixel4
  and iphonexs, against the TFLite performance page's 9.7 and 13.4.
With ``--models DIR`` (Keras exports named keras_<name>.tflite; never shipped):
* the learned share of familiar CNNs on pixel4 (MobileNet, MobileNetV2, ResNet50,
  DenseNet121), warnings and relative 80 % interval of ConvNeXt-Tiny and a ViT-tiny against
  MobileNetV2's, and Inception-ResNet-V2 / MobileNet v1 from the exports.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import anchor_models
import tflat
from pricing_compose import Composed, compose, shared_data_dir
from tflat.datasets.usc import DEVICES
from tflat.model.writer import GraphBuilder

OUT = Path(__file__).parent / "results"
FAMILIAR = ("mobilenet", "mobilenetv2", "resnet50", "densenet121")
NEW = ("convnext_tiny", "vit_tiny")


def _graph(b: GraphBuilder, folder: Path, name: str) -> tflat.Graph:
    path = folder / f"{name}.tflite"
    path.write_bytes(b.to_bytes())
    return tflat.read_model(path)


def add_model(folder: Path, hw: int) -> tflat.Graph:
    b = GraphBuilder(seed=0)
    b.output(b.add(b.input((1, hw, hw, 96), "a"), b.input((1, hw, hw, 96), "b")))
    return _graph(b, folder, f"add_{hw}")


def cumsum_model(folder: Path) -> tflat.Graph:
    b = GraphBuilder(seed=0)
    x = b.conv2d(b.input((1, 56, 56, 32)), 32, 3, activation="relu")
    axis = b._tensor((1,), "int32", "axis", data=__import__("numpy").array([3], dtype="int32"))
    y = b._tensor(x.shape, "float32", "cumsum")
    b._op("CUMSUM", [x, axis], [y], b._s.CumsumOptionsT(), "CumsumOptions")
    b.output(b.conv2d(y, 32, 3, activation="relu"))
    return _graph(b, folder, "conv_cumsum_conv")


def nn_meter_check(folder: Path) -> dict[str, Any]:
    """An independent check of the analytic pricer on the Adreno 640: nn-Meter's fusion-rule
    tests timed a standalone ADD and RELU on 28x28x16 tensors (TFLite 2.1 GPU delegate; the
    ruletest config's HW 28, CIN 16), data the rates never saw."""
    path = shared_data_dir() / "nn-meter" / "fusion_rule_tests" / "rule_tflite_gpu.json"
    if not path.is_file():
        print("nn-Meter fusion tests not found: check skipped")
        return {}
    data = json.loads(path.read_text())
    measured = {op: float(data["BF_add_relu"]["latency"][op].split()[0]) for op in ("add", "relu")}
    b = GraphBuilder(seed=0)
    x = b.input((1, 28, 28, 16), "a")
    b.output(b.add(x, b.input((1, 28, 28, 16), "b")))
    add = compose(_graph(b, folder, "nn_add"), "pixel4").prices[0]
    b = GraphBuilder(seed=0)
    b.output(b.unary("RELU", b.input((1, 28, 28, 16))))
    relu = compose(_graph(b, folder, "nn_relu"), "pixel4").prices[0]
    out = {}
    for op, p in (("add", add), ("relu", relu)):
        out[op] = {
            "measured_ms": measured[op],
            "price_ms": p.ms,
            "low_ms": p.low_ms,
            "high_ms": p.high_ms,
            "inside": p.low_ms <= measured[op] <= p.high_ms,
        }
        print(
            f"nn-Meter {op} 28x28x16 on the Adreno 640: measured {measured[op]:.4f} ms, "
            f"analytic {p.ms:.4f} [{p.low_ms:.4f}, {p.high_ms:.4f}]"
        )
    return out


def summary(c: Composed) -> dict[str, Any]:
    return {
        "total_ms": c.total_ms,
        "low_ms": c.total_low_ms,
        "high_ms": c.total_high_ms,
        "relative_interval": c.relative_interval,
        "basis_ms": c.basis_ms,
        "learned_share": c.share("learned"),
        "transfer_ms": c.transfer_ms,
        "partition_edges": len(c.edges),
        "warnings": c.warnings,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=Path, default=None, help="folder of keras_<name>.tflite")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    res: dict[str, Any] = {
        "command": "python benchmarks/pricing_targets.py "
        + " ".join(a if not a.startswith("/") else "DIR" for a in sys.argv[1:])
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small, big = (compose(add_model(folder, hw), "pixel4") for hw in (7, 112))
        res["add"] = {
            "7x7x96_ms": small.prices[0].ms,
            "112x112x96_ms": big.prices[0].ms,
            "ratio": big.prices[0].ms / small.prices[0].ms,
            "basis": str(big.prices[0].basis),
            "target": ">= 10",
        }
        print(
            f"ADD 112x112x96 / 7x7x96 on pixel4: {res['add']['ratio']:.1f}x "
            f"({res['add']['112x112x96_ms']:.3f} / {res['add']['7x7x96_ms']:.4f} ms)"
        )
        res["nn_meter"] = nn_meter_check(folder)
        graph = cumsum_model(folder)
        res["cumsum"] = {}
        for dev in DEVICES:
            c = compose(graph, dev)
            k = next(i for i, kk in enumerate(c.kernels) if graph.ops[kk.main_op].type == "CUMSUM")
            res["cumsum"][dev] = {
                "basis": str(c.prices[k].basis),
                "cumsum_ms": c.prices[k].ms,
                **summary(c),
            }
            print(
                f"conv->CUMSUM->conv on {dev}: CUMSUM {c.prices[k].basis} "
                f"{c.prices[k].ms:.3f} ms, transfer {c.transfer_ms:.3f} ms over "
                f"{len(c.edges)} edges, total {c.total_ms:.2f} ms"
            )
        built = {}
        for name in ("mobilenet_v1", "inception_resnet_v2"):
            path = folder / f"{name}.tflite"
            path.write_bytes(anchor_models.build(name))
            built[name] = tflat.read_model(path)
        res["irv2_over_mbv1_built"] = ratios(built["inception_resnet_v2"], built["mobilenet_v1"])
    if args.models is not None:
        res.update(exports(args.models))
    else:
        print("no --models folder: the Keras-export targets are skipped")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pricing_targets.json").write_text(json.dumps(res, indent=1) + "\n")
    (args.out / "pricing_targets.md").write_text(render(res))
    return 0


def ratios(big: tflat.Graph, ref: tflat.Graph) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dev, target in (
        ("pixel4", "6.8 .. 15.5 (9.7 published)"),
        ("iphonexs", "9.4 .. 17.4 (13.4 published, ±30 %)"),
    ):
        a, b = compose(big, dev), compose(ref, dev)
        old = tflat.estimate(big, dev).total_ms / tflat.estimate(ref, dev).total_ms
        out[dev] = {
            "ratio": a.total_ms / b.total_ms,
            "target": target,
            "today": old,
            "irv2": summary(a),
            "mbv1": summary(b),
        }
        print(
            f"IRv2 / MBv1 on {dev}: {a.total_ms / b.total_ms:.1f} (was {old:.1f}; "
            f"{a.total_ms:.1f} / {b.total_ms:.2f} ms), target {target}"
        )
    return out


def exports(folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"familiar_pixel4": {}, "new_pixel4": {}}
    for name in (*FAMILIAR, *NEW):
        path = folder / f"keras_{name}.tflite"
        if not path.is_file():
            print(f"{path.name} not in --models: skipped")
            continue
        c = compose(tflat.read_model(path), "pixel4")
        key = "familiar_pixel4" if name in FAMILIAR else "new_pixel4"
        out[key][name] = summary(c)
        print(
            f"{name} on pixel4: {c.total_ms:.2f} ms, learned {c.share('learned'):.0%}, "
            f"interval ±{c.relative_interval / 2:.0%}, warnings {c.warnings}"
        )
    irv2, mbv1 = folder / "keras_inception_resnet_v2.tflite", folder / "keras_mobilenet.tflite"
    if irv2.is_file() and mbv1.is_file():
        out["irv2_over_mbv1_keras"] = ratios(tflat.read_model(irv2), tflat.read_model(mbv1))
    return out


def render(res: dict[str, Any]) -> str:
    a = res["add"]
    lines = [
        "# Pricing targets (issue 17)",
        "",
        f"Command: `{res['command'].strip()}`",
        "",
        f"- ADD 112x112x96 / 7x7x96 on pixel4: **{a['ratio']:.1f}x** ({a['112x112x96_ms']:.3f} "
        f"/ {a['7x7x96_ms']:.4f} ms, basis {a['basis']}; target >= 10)",
        "",
        "| phone | CUMSUM basis | CUMSUM ms | transfer ms | edges | total ms |",
        "|---|---|---|---|---|---|",
    ]
    for dev, c in res["cumsum"].items():
        lines.append(
            f"| {dev} | {c['basis']} | {c['cumsum_ms']:.3f} | {c['transfer_ms']:.3f} | "
            f"{c['partition_edges']} | {c['total_ms']:.2f} |"
        )
    if res.get("nn_meter"):
        lines += [
            "",
            "nn-Meter's Adreno 640 timings (TFLite 2.1, 28x28x16, never fitted on) "
            "against the pixel4 analytic price:",
            "",
            "| op | measured ms | price ms | 80 % interval | inside |",
            "|---|---|---|---|---|",
        ]
        for op, v in res["nn_meter"].items():
            lines.append(
                f"| {op} | {v['measured_ms']:.4f} | {v['price_ms']:.4f} | "
                f"{v['low_ms']:.4f} .. {v['high_ms']:.4f} | {v['inside']} |"
            )
    for key in ("irv2_over_mbv1_built", "irv2_over_mbv1_keras"):
        if key in res:
            lines += [
                "",
                f"## Inception-ResNet-V2 / MobileNet v1 ({key.rsplit('_', 1)[1]})",
                "",
                "| phone | ratio | target | before | learned share IRv2 |",
                "|---|---|---|---|---|",
            ]
            for dev, r in res[key].items():
                lines.append(
                    f"| {dev} | {r['ratio']:.1f} | {r['target']} | {r['today']:.1f} | "
                    f"{r['irv2']['learned_share']:.0%} |"
                )
    for key in ("familiar_pixel4", "new_pixel4"):
        if res.get(key):
            lines += [
                "",
                f"## {key} (Keras exports)",
                "",
                "| model | total ms | learned share | relative 80 % interval | warnings |",
                "|---|---|---|---|---|",
            ]
            for name, s in res[key].items():
                lines.append(
                    f"| {name} | {s['total_ms']:.2f} | {s['learned_share']:.0%} | "
                    f"{s['relative_interval']:.2f} | {'; '.join(s['warnings'])} |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
