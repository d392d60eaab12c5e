"""Render estimates as a terminal table, CSV or JSON.

One function per format; each takes one or several :class:`~tflat.estimation.Estimate` (one per
device) and returns text or a rich renderable. Numbers are rounded only for display: JSON keeps
full precision so its rows add up to its total.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from tflat.estimation import Estimate, LayerEstimate, Role
from tflat.report.fit_table import Column, FitTable

CSV_COLUMNS = (
    "device", "index", "subgraph", "type", "output_shape", "kernel_index", "kernel",
    "kernel_kind", "role", "flops", "latency_ms", "low_ms", "high_ms", "share", "on_gpu",
    "fallback", "known", "modelled", "basis", "note", "precision",
)  # fmt: skip
#: How the table names each basis (its column is narrow).
BASIS_SHORT = {"learned": "learned", "extrapolated": "extrap", "analytic": "analytic",
               "cpu": "cpu", "free": "free"}  # fmt: skip


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def ms_text(value: float) -> str:
    """Milliseconds with 3 significant decimals for small values, fewer for large."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def flops_text(n: float) -> str:
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}"
    return f"{n:g}"


def flag_text(layer: LayerEstimate) -> str:
    """The short flag a reader scans for: CPU fallback, unknown op, not estimated, no model."""
    flags = []
    if layer.fallback:
        flags.append("CPU")
    if not layer.known:
        flags.append("unknown op")
    if layer.role is Role.NOT_ESTIMATED:
        flags.append("not estimated")
    if not layer.modelled:
        flags.append("no model")
    return ", ".join(flags)


def kernel_text(layer: LayerEstimate) -> str:
    if layer.kernel is None:
        return ""
    return f"k{layer.kernel.index} {layer.kernel.name}"


def kernel_cell(layer: LayerEstimate) -> str:
    """The kernel column: the kernel's name on its main op, an arrow to it on fused ops."""
    if layer.kernel is None:
        return ""
    if layer.role is Role.KERNEL:
        return kernel_text(layer)
    if layer.role is Role.FREE and layer.kernel.kind == "free":
        return "free"
    return f"↳ k{layer.kernel.index}"


def _json_object(est: Estimate) -> dict[str, Any]:
    """The estimate's dict with ``layers_ms`` (the sum of the layer rows) beside ``overhead_ms``
    and ``total_ms``, so the three fields show how the total is made up."""
    data = est.to_dict()
    layers_ms = sum(layer.latency_ms for layer in est.layers)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "overhead_ms":
            out["layers_ms"] = layers_ms
        out[key] = value
    out.setdefault("layers_ms", layers_ms)
    return out


def to_json(estimates: Sequence[Estimate]) -> str:
    """One device: the estimate's object. Several: a JSON array of them, in the given order.

    ``total_ms == layers_ms + overhead_ms``, and ``layers_ms`` is the sum of the layers'
    ``latency_ms`` (full precision)."""
    if len(estimates) == 1:
        return json.dumps(_json_object(estimates[0]), indent=2) + "\n"
    return json.dumps([_json_object(e) for e in estimates], indent=2) + "\n"


def _precise(value: float) -> str:
    """A float as the shortest text that reads back as the same number: rows add up exactly."""
    return "0" if value == 0 else repr(float(value))


def to_csv(estimates: Sequence[Estimate]) -> str:
    """One row per layer and device, then per device an ``overhead`` row (the per-inference
    time no layer carries) and a ``total`` row: per device, the ``latency_ms`` of the layer
    rows and the overhead row add up to the total row's (full precision, not rounded)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for est in estimates:
        for layer in est.layers:
            row = layer.to_dict()
            row["device"] = est.device
            row["precision"] = est.precision
            row["output_shape"] = shape_text(layer.output_shape)
            row["kernel_index"] = "" if layer.kernel is None else layer.kernel.index
            row["kernel"] = row["kernel"] or ""
            row["kernel_kind"] = row["kernel_kind"] or ""
            row["basis"] = row["basis"] or ""
            for key in ("latency_ms", "low_ms", "high_ms"):
                row[key] = _precise(row[key])
            row["share"] = f"{layer.share:.6f}"
            writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
        share = est.overhead_ms / est.total_ms if est.total_ms > 0 else 0.0
        writer.writerow({"device": est.device, "type": "overhead", "role": "overhead",
                         "latency_ms": _precise(est.overhead_ms), "share": f"{share:.6f}",
                         "note": "per inference, in no layer",
                         "precision": est.precision})  # fmt: skip
        writer.writerow({"device": est.device, "type": "total", "role": "total",
                         "flops": est.total_flops, "latency_ms": _precise(est.total_ms),
                         "low_ms": _precise(est.total_low_ms),
                         "high_ms": _precise(est.total_high_ms), "share": "1.000000",
                         "note": f"{round(est.interval * 100)} % interval",
                         "precision": est.precision})  # fmt: skip
    return buf.getvalue()


def precision_text(est: Estimate) -> str:
    """The GPU math precision an estimate assumes, and whether the data was measured in it."""
    if est.precision_basis == "learned":
        return f"{est.precision} math (as the device's data was measured)"
    return f"{est.precision} math, extrapolated from {est.measured_precision} measurements"


def summary_lines(est: Estimate) -> list[tuple[str, str]]:
    """(label, value) pairs of the summary every renderer shows."""
    pct = round(est.interval * 100)
    lines = [
        ("device", est.device),
        ("total", f"{ms_text(est.total_ms)} ms  ({pct} % interval {ms_text(est.total_low_ms)}"
                  f" – {ms_text(est.total_high_ms)} ms)"),
        ("basis", basis_text(est)),
        ("layers", f"{ms_text(est.total_ms - est.overhead_ms)} ms in "
                   f"{len(est.kernels)} kernels for {len(est.layers)} ops"),
        ("precision", precision_text(est)),
        ("overhead", f"{ms_text(est.overhead_ms)} ms per inference"
                     + (f", {ms_text(est.cpu_io_ms)} ms of it int8 input/output conversion on"
                        " the CPU" if est.cpu_io_ms else "")),
        ("FLOPs", flops_text(est.total_flops)),
    ]  # fmt: skip
    fallback = est.fallback_layers
    if fallback:
        kinds = sorted({layer.type for layer in fallback})
        lines.append(
            (
                "CPU fallback",
                f"{len(fallback)} ops ({', '.join(kinds)}): {ms_text(est.cpu_ms)} ms on the CPU",
            )
        )
    for w in est.warnings:
        lines.append(("warning", w))
    return lines


def basis_text(est: Estimate) -> str:
    """The time outside the overhead by what it rests on, e.g. ``learned 0.960 ms (97 %),
    analytic 0.030 ms (3 %)``; copies at partition edges are named when there are any."""
    priced = est.total_ms - est.overhead_ms
    parts = [
        f"{basis} {ms_text(ms)} ms ({100 * ms / priced:.0f} %)" if priced > 0 else basis
        for basis, ms in est.basis_ms.items()
        if ms > 0
    ]
    if est.transfer_ms > 0:
        parts.append(f"of which GPU<->CPU copies {ms_text(est.transfer_ms)} ms")
    return ", ".join(parts) or "-"


def _learned_share(est: Estimate) -> str:
    """The share of the time outside the overhead that rests on learned prices."""
    priced = est.total_ms - est.overhead_ms
    return f"{100 * est.basis_ms.get('learned', 0.0) / priced:.0f} %" if priced > 0 else "-"


def to_table(estimates: Sequence[Estimate], *, top_n: int = 10) -> Any:
    """A rich renderable. One device: the layer table, the top layers and the summary.
    Several: one layer table with a column of ms per device (and its interval where the width
    allows), overhead and totals at the foot, the top layers and a summary row per device."""
    from rich.console import Group

    if len(estimates) == 1:
        return Group(*_device_tables(estimates[0], top_n))
    return Group(*_side_by_side(estimates, top_n))


def _layer_cells(layer: LayerEstimate) -> list[str]:
    """#, type, output, kernel, FLOPs: the columns every layer table starts with."""
    prefix = f"{layer.subgraph}:" if layer.subgraph else ""
    return [f"{prefix}{layer.index}", layer.type, shape_text(layer.output_shape),
            kernel_cell(layer), flops_text(layer.flops)]  # fmt: skip


def _time_cells(layer: LayerEstimate | None) -> tuple[str, str]:
    """ms and interval of a layer that carries a kernel's time; "·" for one that does not."""
    if layer is None or layer.role is not Role.KERNEL:
        return "·", ""
    return ms_text(layer.latency_ms), f"{ms_text(layer.low_ms)}–{ms_text(layer.high_ms)}"


def _interval_text(est: Estimate) -> str:
    return f"{ms_text(est.total_low_ms)}–{ms_text(est.total_high_ms)}"


def _device_tables(est: Estimate, top_n: int) -> list[Any]:
    from rich.table import Table

    pct = round(est.interval * 100)
    # a narrow terminal loses FLOPs, then the output shape; the kernel's name shrinks, then
    # the share and the interval go; # , type, ms and flag stay
    columns = (
        Column("#", "right"), Column("type"), Column("output", drop=20),
        Column("kernel", shrink=30), Column("FLOPs", "right", drop=10), Column("ms", "right"),
        Column(f"{pct} % interval", "right", drop=50), Column("share", "right", drop=40),
        Column("basis", drop=30), Column("flag", style="yellow"),
    )  # fmt: skip
    rows = []
    for layer in est.layers:
        ms, interval = _time_cells(layer)
        timed = layer.role is Role.KERNEL
        share = f"{layer.share * 100:.1f} %" if timed else ""
        basis = BASIS_SHORT.get(layer.basis or "", layer.basis or "") if timed else ""
        rows.append([*_layer_cells(layer), ms, interval, share, basis, flag_text(layer)])
    overhead_share = f"{est.overhead_ms / est.total_ms * 100:.1f} %" if est.total_ms else ""
    rows.append(["", "overhead", "", "per inference", "", ms_text(est.overhead_ms), "",
                 overhead_share, "", ""])  # fmt: skip
    rows.append(["", "total", "", "", flops_text(est.total_flops), ms_text(est.total_ms),
                 _interval_text(est), "100 %", "", ""])  # fmt: skip
    title = f"{est.model} on {est.device}: {len(est.layers)} ops, latency in ms"
    table = FitTable(title, columns, rows, sections=(len(rows) - 2,))

    top_rows = [
        [str(layer.index), layer.type, kernel_text(layer), ms_text(layer.latency_ms),
         f"{layer.share * 100:.1f} %", flag_text(layer)]
        for layer in est.top(top_n)
    ]  # fmt: skip
    top_columns = (Column("#", "right"), Column("type"), Column("kernel", shrink=10),
                   Column("ms", "right"), Column("share", "right"),
                   Column("flag", style="yellow"))  # fmt: skip
    top = FitTable(f"top {top_n} layers on {est.device}", top_columns, top_rows)

    summary = Table.grid(padding=(0, 2))
    for label, value in summary_lines(est):
        style = "yellow" if label in ("CPU fallback", "warning") else ""
        summary.add_row(f"[{style}]{label}[/]" if style else label, value)
    return [table, top, summary]


def _flags(layers: Sequence[LayerEstimate | None], devices: Sequence[str]) -> str:
    """One flag cell for a row of several devices: the flag, or each device's where they differ."""
    flags = [flag_text(layer) if layer is not None else "" for layer in layers]
    if len(set(flags)) == 1:
        return flags[0]
    return "; ".join(f"{d}: {f}" for d, f in zip(devices, flags, strict=True) if f)


def _side_by_side(estimates: Sequence[Estimate], top_n: int) -> list[Any]:
    """One table for several devices. Rows follow the first estimate's layers (every device
    estimates the same file, so the same ops); the kernel column is the first device's."""
    from rich.text import Text

    first = estimates[0]
    devices = [e.device for e in estimates]
    pct = round(first.interval * 100)
    n = len(estimates)
    # narrow terminals lose FLOPs, the output shape, the intervals (last device first), then
    # the kernel and flags; the ms of every device stay
    columns = [
        Column("#", "right"), Column("type", shrink=90), Column("output", drop=20),
        Column(f"kernel ({first.device})", shrink=30, drop=70),
        Column("FLOPs", "right", drop=10),
    ]  # fmt: skip
    columns += [Column(d, "right") for d in devices]
    columns += [Column(f"{d} {pct} %", "right", drop=60 - i) for i, d in enumerate(devices)]
    columns.append(Column("flag", shrink=80, style="yellow"))
    per_device = [est.layers for est in estimates]
    rows = []
    for i, layer in enumerate(first.layers):
        mine = [layers[i] if i < len(layers) else None for layers in per_device]
        times = [_time_cells(other) for other in mine]
        rows.append([*_layer_cells(layer), *(t[0] for t in times), *(t[1] for t in times),
                     _flags(mine, devices)])  # fmt: skip
    rows.append(["", "overhead", "", "per inference", "",
                 *(ms_text(e.overhead_ms) for e in estimates), *([""] * n), ""])  # fmt: skip
    rows.append(["", "total", "", "", flops_text(first.total_flops),
                 *(ms_text(e.total_ms) for e in estimates),
                 *(_interval_text(e) for e in estimates), ""])  # fmt: skip
    title = (f"{first.model}: {len(first.layers)} ops, latency in ms on "
             f"{', '.join(devices)} ({pct} % intervals)")  # fmt: skip
    table = FitTable(title, columns, rows, sections=(len(rows) - 2,))

    by = {id(layer): i for i, layer in enumerate(first.layers)}
    top_rows = []
    for layer in first.top(top_n):
        i = by[id(layer)]
        mine = [layers[i] if i < len(layers) else None for layers in per_device]
        top_rows.append([str(layer.index), layer.type, *(_time_cells(o)[0] for o in mine)])
    top_columns = [Column("#", "right"), Column("type", shrink=10)]
    top_columns += [Column(d, "right") for d in devices]
    top = FitTable(f"top {top_n} layers by {first.device} ms", top_columns, top_rows)

    summary_columns = (
        Column("device"), Column("precision"), Column("total ms", "right"),
        Column(f"{pct} % interval ms", "right"),
        Column("overhead ms", "right", drop=20), Column("CPU fallback ms", "right", drop=10),
        Column("kernels", "right", drop=30), Column("learned", "right", drop=25),
    )  # fmt: skip
    summary_rows = [
        [e.device, e.precision, ms_text(e.total_ms), _interval_text(e), ms_text(e.overhead_ms),
         ms_text(e.cpu_ms), str(len(e.kernels)), _learned_share(e)]
        for e in estimates
    ]  # fmt: skip
    parts: list[Any] = [table, top, FitTable("per device", summary_columns, summary_rows)]
    for e in estimates:
        for w in e.warnings:
            parts.append(Text(f"warning ({e.device}): {w}", style="yellow"))
    return parts
