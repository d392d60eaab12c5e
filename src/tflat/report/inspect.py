"""Render a :class:`~tflat.model.ops.Graph` for ``tflat inspect``."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from tflat.model.ops import Graph, Op
from tflat.model.shapes import unresolved_warnings
from tflat.report.fit_table import Column, FitTable


def _shape(op: Op) -> str:
    return "x".join(str(d) for d in op.outputs[0].shape) if op.outputs else ""


def _in_shape(op: Op) -> str:
    acts = op.activations
    return "x".join(str(d) for d in acts[0].shape) if acts else ""


def _pair(p: tuple[int, int] | None) -> str:
    return f"{p[0]}x{p[1]}" if p else ""


CSV_COLUMNS = (
    "index", "subgraph", "type", "known", "input_shape", "output_shape", "dtype", "kernel",
    "stride", "dilation", "padding", "groups", "depth_multiplier", "activation", "flops",
    "weight_bytes", "input_bytes", "output_bytes", "unresolved",
)  # fmt: skip


def _row(op: Op) -> dict[str, Any]:
    return {
        "index": op.index,
        "subgraph": op.subgraph,
        "type": op.type,
        "known": op.known,
        "input_shape": _in_shape(op),
        "output_shape": _shape(op),
        "dtype": op.outputs[0].dtype if op.outputs else "",
        "kernel": _pair(op.kernel),
        "stride": _pair(op.stride),
        "dilation": _pair(op.dilation),
        "padding": op.padding or "",
        "groups": op.groups,
        "depth_multiplier": op.depth_multiplier if op.depth_multiplier is not None else "",
        "activation": op.activation,
        "flops": op.flops,
        "weight_bytes": op.weight_bytes,
        "input_bytes": op.input_bytes,
        "output_bytes": op.output_bytes,
        "unresolved": op.unresolved,
    }


def to_json(graph: Graph) -> str:
    return json.dumps(graph.to_dict(), indent=2) + "\n"


def to_csv(graph: Graph) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for op in graph.all_ops:
        writer.writerow(_row(op))
    return buf.getvalue()


def human(n: float, unit: str = "") -> str:
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}{unit}"
    return f"{n:g} {unit}".rstrip()


#: The ops table's columns; a narrow terminal drops them in the order of ``drop`` (dtype first,
#: the kernel size last), shortening long type names to 17 characters on the way (a custom
#: op's name) and further at the end; #, output and FLOPs always stay.
TABLE_COLUMNS = (
    Column("#", "right"), Column("type", shrink=45, min_width=17), Column("input", drop=60),
    Column("output"), Column("dtype", drop=10), Column("kernel", drop=80),
    Column("stride", drop=50), Column("pad", drop=20), Column("groups", "right", drop=30),
    Column("act", drop=40), Column("FLOPs", "right"), Column("weights", "right", drop=70),
)  # fmt: skip


def to_table(graph: Graph) -> Any:
    from rich.console import Group
    from rich.table import Table

    rows = []
    for op in graph.all_ops:
        r = _row(op)
        prefix = f"{op.subgraph}:" if op.subgraph else ""
        rows.append(
            [
                f"{prefix}{op.index}",
                op.type if op.known else f"{op.type} (unknown)",
                r["input_shape"],
                f"{r['output_shape']} (unresolved)" if op.unresolved else r["output_shape"],
                r["dtype"],
                r["kernel"],
                r["stride"],
                r["padding"],
                str(op.groups) if op.groups != 1 else "",
                "" if op.activation == "NONE" else op.activation,
                human(op.flops),
                human(op.weight_bytes, "B"),
            ]
        )
    table = FitTable(f"{graph.name}: {len(graph.all_ops)} ops", TABLE_COLUMNS, rows)
    s = graph.summary()
    summary = Table.grid(padding=(0, 2))
    summary.add_row("ops", f"{s['ops']} in {s['subgraphs']} subgraph(s)")
    summary.add_row("by type", ", ".join(f"{k} {v}" for k, v in s["op_counts"].items()))
    summary.add_row("total FLOPs", human(s["total_flops"]))
    summary.add_row("parameters", f"{s['parameters']:,}")
    summary.add_row("model size", human(s["size_bytes"], "B"))
    if s["unknown_ops"]:
        summary.add_row(
            "[yellow]unknown ops[/]",
            ", ".join(s["unknown_ops"]) + " (no cost formula: 0 FLOPs counted, flagged above)",
        )
    for line in unresolved_warnings(graph.all_ops):
        summary.add_row("[yellow]warning[/]", line)
    if len(graph.subgraphs) > 1:
        summary.add_row(
            "subgraphs",
            "; ".join(
                f"{sg.index}: {sg.name or '-'} ({len(sg.ops)} ops)" for sg in graph.subgraphs
            ),
        )
    return Group(table, summary)
