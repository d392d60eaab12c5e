"""Renderers of an estimate: golden files for what users read, and the invariants behind them.

The estimate here is written out by hand (a small, fixed example with each kind of row: a
kernel, a fused op, a free op, a CPU fallback, an op in another subgraph), so the golden files
change only when a renderer changes. Regenerate them with ``TFLAT_UPDATE_GOLDEN=1 pytest``
and review the diff.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tflat.estimation import Estimate, KernelEstimate, KernelRef, LayerEstimate, Role
from tflat.report import estimate_text, html, overlay, svg

GOLDEN = Path(__file__).parent / "golden"


def _layer(index: int, type_: str, kernel: KernelRef | None, role: Role, ms: float,
           **kw: object) -> dict[str, object]:  # fmt: skip
    return {
        "index": index,
        "type": type_,
        "output_shape": kw.pop("shape", (1, 8, 8, 16)),
        "kernel": kernel,
        "role": role,
        "flops": kw.pop("flops", 0),
        "latency_ms": ms,
        "low_ms": ms * 0.8,
        "high_ms": ms * 1.25,
        "on_gpu": kw.pop("on_gpu", True),
        "fallback": kw.pop("fallback", False),
        **kw,
    }


def sample_estimate(device: str = "pixel4", scale: float = 1.0) -> Estimate:
    k0 = KernelRef(0, "convolution_2d_0_linked_:_relu_1", "conv2d")
    k1 = KernelRef(1, "reshape", "free")
    k2 = KernelRef(2, "cpu:TOPK_V2", "cpu_fallback")
    k3 = KernelRef(3, "fully_connected", "fully_connected")
    drafts = [
        _layer(
            0,
            "CONV_2D",
            k0,
            Role.KERNEL,
            0.5 * scale,
            flops=4_718_592,
            note="winograd",
            basis="learned",
        ),
        _layer(1, "RELU", k0, Role.FUSED, 0.0, note="fused into CONV_2D #0", basis="learned"),
        _layer(2, "RESHAPE", k1, Role.FREE, 0.0, shape=(1, 1024), basis="free"),
        _layer(
            3,
            "TOPK_V2",
            k2,
            Role.KERNEL,
            0.25 * scale,
            shape=(1, 10),
            on_gpu=False,
            fallback=True,
            note="not supported by the GPU delegate",
            basis="cpu",
        ),
        _layer(
            4,
            "FULLY_CONNECTED",
            k3,
            Role.KERNEL,
            0.125 * scale,
            shape=(1, 10),
            flops=20_480,
            basis="learned",
        ),
        _layer(
            0,
            "ADD",
            None,
            Role.NOT_ESTIMATED,
            0.0,
            subgraph=1,
            on_gpu=False,
            note="in subgraph 1: only the main subgraph is estimated",
        ),
    ]
    overhead = 0.125 * scale
    total = sum(float(d["latency_ms"]) for d in drafts) + overhead  # type: ignore[arg-type]
    layers = tuple(
        LayerEstimate(**d, share=float(d["latency_ms"]) / total)  # type: ignore[arg-type]
        for d in drafts
    )
    kernels = (
        KernelEstimate(0, k0.name, "conv2d", (0, 1), True, 0.5 * scale, 0.4 * scale, 0.625 * scale),
        KernelEstimate(1, "reshape", "free", (2,), True, 0.0, 0.0, 0.0, basis="free"),
        KernelEstimate(
            2,
            k2.name,
            "cpu_fallback",
            (3,),
            False,
            0.25 * scale,
            0.2 * scale,
            0.3125 * scale,
            basis="cpu",
            basis_note="refused by the GPU delegate",
        ),
        KernelEstimate(
            3, k3.name, "fully_connected", (4,), True, 0.125 * scale, 0.1 * scale, 0.15625 * scale
        ),
    )
    return Estimate(
        model="sample",
        device=device,
        layers=layers,
        overhead_ms=overhead,
        total_ms=total,
        total_low_ms=total * 0.8,
        total_high_ms=total * 1.25,
        interval=0.8,
        kernels=kernels,
        total_flops=4_739_072,
        precision="fp16",
        measured_precision="fp16",
    )


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TFLAT_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with TFLAT_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def render_table(est: list[Estimate]) -> str:
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=160, color_system=None).print(estimate_text.to_table(est))
    return buf.getvalue()


def test_table_golden() -> None:
    check_golden("estimate_sample.txt", render_table([sample_estimate()]))


def test_csv_golden_and_one_row_per_layer() -> None:
    est = sample_estimate()
    text = estimate_text.to_csv([est])
    check_golden("estimate_sample.csv", text)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(est.layers) + 2
    assert [r["fallback"] for r in rows].count("True") == 1
    assert [r["role"] for r in rows[-2:]] == ["overhead", "total"]


@pytest.mark.parametrize("n_devices", [1, 2])
def test_csv_rows_add_up_to_the_total_row(n_devices: int) -> None:
    """Per device: the layer rows and the overhead row add up to the total row, exactly."""
    ests = [sample_estimate(), sample_estimate("s10", 1.7)][:n_devices]
    rows = list(csv.DictReader(io.StringIO(estimate_text.to_csv(ests))))
    for est in ests:
        mine = [r for r in rows if r["device"] == est.device]
        (total,) = [r for r in mine if r["role"] == "total"]
        (overhead,) = [r for r in mine if r["role"] == "overhead"]
        parts = [float(r["latency_ms"]) for r in mine if r["role"] != "total"]
        assert len(parts) == len(est.layers) + 1
        assert sum(parts) == float(total["latency_ms"]) == est.total_ms
        assert float(overhead["latency_ms"]) == est.overhead_ms
        assert (float(total["low_ms"]), float(total["high_ms"])) == (
            est.total_low_ms,
            est.total_high_ms,
        )


def test_json_golden_and_rows_add_up() -> None:
    est = sample_estimate()
    text = estimate_text.to_json([est])
    check_golden("estimate_sample.json", text)
    data = json.loads(text)
    assert data["device"] == "pixel4"
    assert {"total_ms", "overhead_ms", "total_low_ms", "total_high_ms", "layers"} <= set(data)
    assert sum(layer["latency_ms"] for layer in data["layers"]) == data["layers_ms"]
    assert data["layers_ms"] + data["overhead_ms"] == data["total_ms"]
    assert [layer["index"] for layer in data["layers"]] == [0, 1, 2, 3, 4, 0]
    assert data["fallback_ops"] == [3]


def test_json_several_devices_is_a_list() -> None:
    data = json.loads(estimate_text.to_json([sample_estimate(), sample_estimate("s10", 2.0)]))
    assert [d["device"] for d in data] == ["pixel4", "s10"]
    assert data[1]["total_ms"] == pytest.approx(2 * data[0]["total_ms"])
    for d in data:
        assert d["layers_ms"] + d["overhead_ms"] == d["total_ms"]


def test_several_devices_are_one_table_side_by_side() -> None:
    ests = [sample_estimate(), sample_estimate("s10", 2.0)]
    text = render_table(ests)
    check_golden("estimate_sample_2devices.txt", text)
    assert text.count("CONV_2D") == 2  # the layer table and the top table, not one per device
    header = text.splitlines()[1].split()
    assert header.index("pixel4") < header.index("s10")
    conv = next(line for line in text.splitlines() if "CONV_2D" in line)
    assert "0.500" in conv and "1.00" in conv and "0.400–0.625" in conv and "0.800–1.25" in conv
    (total,) = [line for line in text.splitlines() if line.split()[:1] == ["total"]]
    assert "1.00" in total and "2.00" in total  # both totals at the foot
    (overhead,) = [line for line in text.splitlines() if line.split()[:1] == ["overhead"]]
    assert "0.125" in overhead and "0.250" in overhead


@pytest.mark.parametrize("n_devices", [1, 2, 6])
def test_tables_fit_80_columns(n_devices: int) -> None:
    from rich.console import Console

    devices = ["pixel4", "s10", "mi8se", "a03s", "iphone7", "iphonexs"][:n_devices]
    ests = [sample_estimate(d, 1.0 + i) for i, d in enumerate(devices)]
    buf = io.StringIO()
    Console(file=buf, width=80, color_system=None).print(estimate_text.to_table(ests))
    lines = buf.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    header = lines[1] if n_devices > 1 else lines[0] + lines[1]
    for d in devices:  # every device's ms stays
        assert d in header
    assert " ms" in lines[0] + lines[1]
    total = next(line for line in lines if line.split()[:1] == ["total"])
    assert all(estimate_text.ms_text(e.total_ms) in total for e in ests)


def test_html_golden_is_self_contained() -> None:
    text = html.to_html([sample_estimate()])
    check_golden("estimate_sample.html", text)
    # No network: one inline script (the table sort), no external references of any kind.
    assert text.lower().count("<script") == 1 and "<script>" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "http://www.w3.org/2000/svg" in text  # the SVG namespace is the only URL
    for url in re.findall(r"https?://[^\s\"'<>]+", text):
        assert url == "http://www.w3.org/2000/svg"


def test_html_side_by_side_has_every_device_and_valid_svg() -> None:
    ests = [sample_estimate(), sample_estimate("s10", 2.0)]
    text = html.to_html(ests)
    svgs = re.findall(r"<svg.*?</svg>", text, flags=re.S)
    assert len(svgs) == 6  # per device: time by kernel kind, per layer, top 10
    for s in svgs:
        ElementTree.fromstring(s)  # well-formed XML
    assert text.count(">pixel4 ms</th>") == 1 and text.count(">s10 ms</th>") == 1
    # The total row shows each device's total.
    assert f"<td>{estimate_text.ms_text(ests[1].total_ms)}</td>" in text


def test_html_escapes_names() -> None:
    est = sample_estimate(device='<b onload="x">')
    text = html.to_html([est])
    assert '<b onload="x">' not in text
    assert "&lt;b onload=&quot;x&quot;&gt;" in text


def test_overlay_golden_and_model_explorer_shape() -> None:
    est = sample_estimate()
    text = overlay.to_json(est)
    check_golden("estimate_sample.overlay.json", text)
    data = json.loads(text)
    # GraphNodeData: results keyed by node id (op index), each with a numeric value.
    assert set(data["results"]) == {"0", "1", "2", "3", "4"}
    assert data["results"]["0"] == {"value": 0.5}
    assert data["results"]["1"] == {"value": 0.0}
    stops = [g["stop"] for g in data["gradient"]]
    assert stops[0] == 0 and stops[-1] == 1 and stops == sorted(stops)
    assert sum(r["value"] for r in data["results"].values()) + est.overhead_ms == pytest.approx(
        est.total_ms
    )


def test_overlay_paths_one_per_device(tmp_path: Path) -> None:
    out = tmp_path / "heat.json"
    assert overlay.overlay_paths(out, ["pixel4"]) == [out]
    assert overlay.overlay_paths(out, ["pixel4", "android:abc"]) == [
        tmp_path / "heat.pixel4.json",
        tmp_path / "heat.android_abc.json",
    ]


def test_svg_column_chart_scales_bars_to_the_largest() -> None:
    bars = [svg.Bar("0", 1.0), svg.Bar("1", 4.0), svg.Bar("2", 0.0)]
    text = svg.column_chart(bars, title="t", height=236)  # plot height 236 - 28 - 36 = 172
    root = ElementTree.fromstring(text)
    heights = [float(r.get("height", "0")) for r in root.iter("{http://www.w3.org/2000/svg}rect")]
    assert heights == [pytest.approx(34.4), pytest.approx(137.6), 0.0]  # axis top: 5


def test_table_marks_fallback_and_overhead() -> None:
    text = render_table([sample_estimate()])
    assert "overhead" in text and "CPU fallback" in text
    assert re.search(r"TOPK_V2.*CPU", text)


def test_narrow_terminal_drops_columns_never_cuts_numbers() -> None:
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=72, color_system=None).print(
        estimate_text.to_table([sample_estimate()])
    )
    text = buf.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 72
    header = text.splitlines()[1]
    assert "FLOPs" not in header and "kernel" in header  # dropped first
    for number in ("0.500", "0.400–0.625", "50.0 %", "0.125", "1.00"):
        assert number in text


def test_svg_axis_labels_are_exact_quarters() -> None:
    text = svg.column_chart([svg.Bar("0", 0.5)], title="t")
    labels = [e.text for e in ElementTree.fromstring(text).iter("{http://www.w3.org/2000/svg}text")]
    for label in ("0", "0.125", "0.25", "0.375", "0.5"):
        assert label in labels
