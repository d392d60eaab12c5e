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

CSV_COLUMNS = (
    "device", "index", "subgraph", "type", "output_shape", "kernel_index", "kernel",
    "kernel_kind", "role", "flops", "latency_ms", "low_ms", "high_ms", "share", "on_gpu",
    "fallback", "known", "modelled", "note",
)  # fmt: skip


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


def to_json(estimates: Sequence[Estimate]) -> str:
    """One device: the estimate's object. Several: a JSON array of them, in the given order."""
    if len(estimates) == 1:
        return json.dumps(estimates[0].to_dict(), indent=2) + "\n"
    return json.dumps([e.to_dict() for e in estimates], indent=2) + "\n"


def to_csv(estimates: Sequence[Estimate]) -> str:
    """One row per layer and device (the per-inference overhead is in the JSON, not a layer)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for est in estimates:
        for layer in est.layers:
            row = layer.to_dict()
            row["device"] = est.device
            row["output_shape"] = shape_text(layer.output_shape)
            row["kernel_index"] = "" if layer.kernel is None else layer.kernel.index
            row["kernel"] = row["kernel"] or ""
            row["kernel_kind"] = row["kernel_kind"] or ""
            for key in ("latency_ms", "low_ms", "high_ms"):
                row[key] = f"{row[key]:.6g}"
            row["share"] = f"{layer.share:.6f}"
            writer.writerow(row)
    return buf.getvalue()


def summary_lines(est: Estimate) -> list[tuple[str, str]]:
    """(label, value) pairs of the summary every renderer shows."""
    pct = round(est.interval * 100)
    lines = [
        ("device", est.device),
        ("total", f"{ms_text(est.total_ms)} ms  ({pct} % interval {ms_text(est.total_low_ms)}"
                  f" – {ms_text(est.total_high_ms)} ms)"),
        ("layers", f"{ms_text(est.total_ms - est.overhead_ms)} ms in "
                   f"{len(est.kernels)} kernels for {len(est.layers)} ops"),
        ("overhead", f"{ms_text(est.overhead_ms)} ms per inference"),
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


def to_table(estimates: Sequence[Estimate], *, top_n: int = 10) -> Any:
    """A rich renderable: per device, the layer table, the top layers and the total."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = []
    for n, est in enumerate(estimates):
        if n:
            parts.append(Text(""))  # one blank line between devices
        parts.extend(_device_tables(est, top_n))
    return Group(*parts)


#: Columns a narrow terminal loses first, in this order (CSV, JSON and HTML keep them all).
_OPTIONAL_COLUMNS = ("FLOPs", "output")


class _FitTable:
    """A plain, borderless text table that fits the terminal without cutting numbers.

    Rich's own Table takes most of a second for a few hundred rows and shrinks every column
    of a table wider than the terminal ("0…" would mislead). Here every column keeps its
    content's width except "kernel", which takes what is left; on a narrow terminal the
    optional columns go first. Cells are plain text; the "flag" column is shown in yellow.
    """

    def __init__(self, title: str, columns: Sequence[tuple[str, str]], rows: list[list[str]],
                 sections: Sequence[int] = ()) -> None:  # fmt: skip
        self.title, self.columns, self.rows, self.sections = title, columns, rows, sections

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.text import Text

        names = [col for col, _ in self.columns]
        widths = [max([len(names[i])] + [len(r[i]) for r in self.rows]) for i in range(len(names))]
        keep = list(range(len(names)))
        k = names.index("kernel") if "kernel" in names else -1

        def room() -> int:
            others = sum(widths[i] for i in keep if i != k)
            return int(options.max_width) - others - 2 * len(keep)

        for optional in _OPTIONAL_COLUMNS:
            if room() >= 12 or optional not in names:
                continue
            keep.remove(names.index(optional))
        if k >= 0:
            widths[k] = max(8, min(widths[k], room()))

        def line(cells: Sequence[str]) -> str:
            out = []
            for i in keep:
                cell, w = cells[i], widths[i]
                if len(cell) > w:
                    cell = cell[: w - 1] + "…"
                out.append(cell.rjust(w) if self.columns[i][1] == "right" else cell.ljust(w))
            return "  ".join(out).rstrip()

        flag = names.index("flag") if "flag" in names and names.index("flag") in keep else -1
        flag_at = sum(widths[i] + 2 for i in keep if i < flag)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(self.title + "\n", style="bold")
        text.append(line(names) + "\n", style="bold")
        text.append("  ".join("─" * widths[i] for i in keep) + "\n")
        for n, row in enumerate(self.rows):
            if n in self.sections:
                text.append("  ".join("─" * widths[i] for i in keep) + "\n")
            start = len(text)
            text.append(line(row) + "\n")
            if flag >= 0 and row[flag]:
                text.stylize("yellow", start + flag_at, len(text) - 1)
        yield text


def _device_tables(est: Estimate, top_n: int) -> list[Any]:
    from rich.table import Table

    pct = round(est.interval * 100)
    columns = (
        ("#", "right"), ("type", "left"), ("output", "left"), ("kernel", "left"),
        ("FLOPs", "right"), ("ms", "right"), (f"{pct} % interval", "right"), ("share", "right"),
        ("flag", "left"),
    )  # fmt: skip
    rows = []
    for layer in est.layers:
        prefix = f"{layer.subgraph}:" if layer.subgraph else ""
        timed = layer.role is Role.KERNEL
        flag = flag_text(layer)
        rows.append(
            [
                f"{prefix}{layer.index}",
                layer.type,
                shape_text(layer.output_shape),
                kernel_cell(layer),
                flops_text(layer.flops),
                ms_text(layer.latency_ms) if timed else "·",
                f"{ms_text(layer.low_ms)}–{ms_text(layer.high_ms)}" if timed else "",
                f"{layer.share * 100:.1f} %" if timed else "",
                flag,
            ]
        )
    overhead_share = f"{est.overhead_ms / est.total_ms * 100:.1f} %" if est.total_ms else ""
    rows.append(["", "overhead", "", "per inference", "", ms_text(est.overhead_ms), "",
                 overhead_share, ""])  # fmt: skip
    interval = f"{ms_text(est.total_low_ms)}–{ms_text(est.total_high_ms)}"
    rows.append(["", "total", "", "", flops_text(est.total_flops), ms_text(est.total_ms),
                 interval, "100 %", ""])  # fmt: skip
    title = f"{est.model} on {est.device}: {len(est.layers)} ops"
    table = _FitTable(title, columns, rows, sections=(len(rows) - 2,))

    top_rows = [
        [str(layer.index), layer.type, kernel_text(layer), ms_text(layer.latency_ms),
         f"{layer.share * 100:.1f} %", flag_text(layer)]
        for layer in est.top(top_n)
    ]  # fmt: skip
    top_columns = (("#", "right"), ("type", "left"), ("kernel", "left"), ("ms", "right"),
                   ("share", "right"), ("flag", "left"))  # fmt: skip
    top = _FitTable(f"top {top_n} layers on {est.device}", top_columns, top_rows)

    summary = Table.grid(padding=(0, 2))
    for label, value in summary_lines(est):
        style = "yellow" if label in ("CPU fallback", "warning") else ""
        summary.add_row(f"[{style}]{label}[/]" if style else label, value)
    return [table, top, summary]
