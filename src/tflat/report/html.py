"""A self-contained HTML report of one or several estimates (one per device).

One file, no network: inline CSS and SVG, and a few lines of inline JavaScript that sort the
layer table when a numeric header is clicked (without JavaScript the report reads the same,
unsorted), so it opens anywhere and can be attached to a review. Layout: a summary per device
(side by side), a per-layer latency chart per device, the top-10 layers per device, then one
table with a column group per device: its body holds one row per layer, its foot the
per-inference overhead and the total of each device (the foot never moves when sorting).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from tflat.estimation import Estimate, LayerEstimate, Role
from tflat.report import svg
from tflat.report.estimate_text import (
    flag_text,
    flops_text,
    kernel_cell,
    ms_text,
    shape_text,
    summary_lines,
)
from tflat.version import __version__

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:1.4em;margin:0 0 4px}h2{font-size:1.15em;margin:24px 0 8px}
.sub{color:#666;margin-bottom:16px}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(400px,1fr));gap:24px}
.col{min-width:0}
.card{border:1px solid #ddd;border-radius:6px;padding:12px 16px;background:#fafafa}
.card .big{font-size:1.8em;font-weight:600}.card td{padding:1px 10px 1px 0;vertical-align:top}
table.layers{border-collapse:collapse;font-size:12px;width:100%}
table.layers th,table.layers td{border-bottom:1px solid #eee;padding:2px 6px;text-align:right}
table.layers th{background:#f3f3f3;position:sticky;top:0}
table.layers td.l,table.layers th.l{text-align:left}
table.layers td{white-space:nowrap}table.layers td.note{white-space:normal;min-width:24em}
tr.fb td{background:#fff1e6}tr.fused td{color:#888}
tr.tot td{font-weight:600;border-top:2px solid #999}
.flag{color:#c2410c;font-weight:600}.warn{color:#c2410c}
svg text{font-size:10px;fill:#333}svg text.t{font-size:12px;font-weight:600}
svg text.x{text-anchor:middle}svg text.y{text-anchor:end}svg text.l{text-anchor:end}
svg line.g{stroke:#e5e5e5}
.legend{font-size:11px;margin:4px 0 12px}.lg{margin-right:10px;white-space:nowrap}
.sw{display:inline-block;width:10px;height:10px;margin-right:3px;vertical-align:middle}
th[data-sort]{cursor:pointer}th[aria-sort=descending]::after{content:" ▼"}
th[aria-sort=ascending]::after{content:" ▲"}
"""

#: Sorting the layer table: a click on a header with ``data-sort`` orders the body rows by the
#: cells' ``data-v`` numbers, largest first, and a second click reverses (ties keep file order).
_SORT_JS = """
document.querySelectorAll("table.layers th[data-sort]").forEach(function (th) {
  th.title = "sort by this column";
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var down = th.getAttribute("aria-sort") !== "descending";
    table.querySelectorAll("th[aria-sort]").forEach(function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", down ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
      return {row: row, i: i, v: parseFloat(row.cells[col].getAttribute("data-v") || "0")};
    });
    rows.sort(function (a, b) { return (down ? b.v - a.v : a.v - b.v) || a.i - b.i; });
    rows.forEach(function (r) { body.appendChild(r.row); });
  });
});
"""


def to_html(estimates: Sequence[Estimate]) -> str:
    """The whole report as one HTML document."""
    if not estimates:
        raise ValueError("no estimates to render")
    model = estimates[0].model
    devices = ", ".join(e.device for e in estimates)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(model)}: estimated latency on {escape(devices)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(model)}: estimated latency</h1>",
        f'<div class="sub">tflat {escape(__version__)} · {len(estimates[0].layers)} ops · '
        f"devices: {escape(devices)}</div>",
        '<h2>Summary</h2><div class="cols">',
    ]
    parts += [f'<div class="col">{_summary_card(e)}{_kind_chart(e)}</div>' for e in estimates]
    parts.append("</div><h2>Latency per layer</h2>")
    kinds = sorted({k.kind for e in estimates for k in e.kernels if k.latency_ms > 0})
    parts.append(svg.legend(kinds))
    parts += [f"<div>{_layer_chart(e)}</div>" for e in estimates]
    parts.append('<h2>Top 10 layers</h2><div class="cols">')
    parts += [f'<div class="col">{_top_chart(e)}</div>' for e in estimates]
    parts.append("</div><h2>All layers</h2>")
    parts.append(_table(estimates))
    parts.append(f"<script>{_SORT_JS}</script>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _summary_card(est: Estimate) -> str:
    rows = []
    for label, value in summary_lines(est):
        if label == "device":  # the card's heading names it already
            continue
        cls = ' class="warn"' if label in ("CPU fallback", "warning") else ""
        rows.append(f"<tr{cls}><td>{escape(label)}</td><td>{escape(value)}</td></tr>")
    return (
        f'<div class="card"><div>{escape(est.device)}</div>'
        f'<div class="big">{ms_text(est.total_ms)} ms</div>'
        f"<table>{''.join(rows)}</table></div>"
    )


def _kind_chart(est: Estimate) -> str:
    """Where the time goes, by kernel kind (CPU fallback and per-inference overhead included)."""
    by_kind: dict[str, float] = {}
    for k in est.kernels:
        kind = "cpu_fallback" if not k.on_gpu else k.kind
        by_kind[kind] = by_kind.get(kind, 0.0) + k.latency_ms
    items = sorted(((v, k) for k, v in by_kind.items() if v > 0), reverse=True)
    bars = [
        svg.Bar(kind, ms, svg.KIND_COLORS.get(kind, svg.DEFAULT_COLOR),
                f"{kind}: {ms:.4g} ms ({ms / est.total_ms * 100:.1f} %)")
        for ms, kind in items
    ]  # fmt: skip
    share = est.overhead_ms / est.total_ms * 100 if est.total_ms else 0.0
    tip = f"per-inference overhead: {est.overhead_ms:.4g} ms ({share:.1f} %)"
    bars.append(svg.Bar("overhead", est.overhead_ms, "#252525", tip))
    return svg.bar_chart(bars, title=f"{est.device}: ms by kernel kind")


def _color(layer: LayerEstimate) -> str:
    if layer.fallback:
        return svg.KIND_COLORS["cpu_fallback"]
    kind = layer.kernel.kind if layer.kernel else "other"
    return svg.KIND_COLORS.get(kind, svg.DEFAULT_COLOR)


def _tooltip(layer: LayerEstimate) -> str:
    kernel = f" [{layer.kernel.name}]" if layer.kernel else ""
    return (
        f"#{layer.index} {layer.type}{kernel}: {layer.latency_ms:.4g} ms "
        f"({layer.low_ms:.3g}–{layer.high_ms:.3g}), {layer.share * 100:.1f} %"
    )


def _layer_chart(est: Estimate) -> str:
    layers = [layer for layer in est.layers if layer.subgraph == 0]
    bars = [
        svg.Bar(str(layer.index), layer.latency_ms, _color(layer), _tooltip(layer))
        for layer in layers
    ]
    return svg.column_chart(bars, title=f"{est.device}: ms per layer (op index)")


def _short(text: str, limit: int = 24) -> str:
    """A bar label that fits the chart's label column (the full name is in the tooltip)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _top_chart(est: Estimate) -> str:
    bars = [
        svg.Bar(
            _short(f"#{layer.index} {layer.type}"), layer.latency_ms, _color(layer), _tooltip(layer)
        )
        for layer in est.top(10)
    ]
    return svg.bar_chart(bars, title=f"{est.device}: top 10 layers")


def _table(estimates: Sequence[Estimate]) -> str:
    first = estimates[0]
    head = [
        '<table class="layers"><thead><tr>',
        '<th data-sort="num">#</th><th class="l">type</th><th class="l">output</th>',
        '<th class="l">kernel</th><th data-sort="num">FLOPs</th>',
    ]
    pct = round(first.interval * 100)
    for est in estimates:
        head.append(f'<th data-sort="num">{escape(est.device)} ms</th><th>{pct} % interval</th>'
                    "<th>share</th>")  # fmt: skip
    head.append('<th class="l">flag / note</th></tr></thead><tbody>')
    rows = []
    per_device = [est.layers for est in estimates]
    for i, layer in enumerate(first.layers):
        cls = "fb" if layer.fallback else ("fused" if layer.role is not Role.KERNEL else "")
        prefix = f"{layer.subgraph}:" if layer.subgraph else ""
        kernel = kernel_cell(layer)
        cells = [
            f'<td data-v="{i}">{prefix}{layer.index}</td>',
            f'<td class="l">{escape(layer.type)}</td>',
            f'<td class="l">{escape(shape_text(layer.output_shape))}</td>',
            f'<td class="l">{escape(kernel)}</td>',
            f'<td data-v="{layer.flops}">{flops_text(layer.flops)}</td>',
        ]
        for layers in per_device:
            other = layers[i] if i < len(layers) else None
            if other is None or other.role is not Role.KERNEL:
                cells.append('<td data-v="0">·</td><td></td><td></td>')
            else:
                cells.append(
                    f'<td data-v="{other.latency_ms!r}">{ms_text(other.latency_ms)}</td>'
                    f"<td>{ms_text(other.low_ms)}–{ms_text(other.high_ms)}</td>"
                    f"<td>{other.share * 100:.1f} %</td>"
                )
        flag = flag_text(layer)
        note = escape(layer.note)
        cells.append(
            f'<td class="l note">{f"<span class=flag>{escape(flag)}</span> " if flag else ""}'
            f"{note}</td>"
        )
        rows.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    overhead = ['<tr><td></td><td class="l">overhead</td><td></td>'
                '<td class="l">per inference</td><td></td>']  # fmt: skip
    total = ['<tr class="tot"><td></td><td class="l">total</td><td></td><td></td>'
             f"<td>{flops_text(first.total_flops)}</td>"]  # fmt: skip
    for est in estimates:
        share = est.overhead_ms / est.total_ms * 100 if est.total_ms else 0.0
        overhead.append(f"<td>{ms_text(est.overhead_ms)}</td><td></td><td>{share:.1f} %</td>")
        total.append(
            f"<td>{ms_text(est.total_ms)}</td>"
            f"<td>{ms_text(est.total_low_ms)}–{ms_text(est.total_high_ms)}</td><td>100 %</td>"
        )
    overhead.append("<td></td></tr>")
    total.append("<td></td></tr>")
    foot = "</tbody><tfoot>" + "".join(overhead) + "".join(total) + "</tfoot>"
    return "".join(head) + "\n".join(rows) + foot + "</table>"
