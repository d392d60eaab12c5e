"""Small hand-written SVG charts for the HTML report.

No JavaScript and no chart library: a report must open offline, years later, from an e-mail
attachment. Each function returns one ``<svg>`` element as text; every bar carries a
``<title>`` so hovering shows the exact value. All text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

#: Colours by kernel kind (colour-blind safe where it matters: GPU blues, CPU fallback orange).
KIND_COLORS = {
    "conv2d": "#1f77b4",
    "depthwise_conv2d": "#6baed6",
    "grouped_conv2d": "#3182bd",
    "transpose_conv": "#08519c",
    "fully_connected": "#756bb1",
    "pool": "#31a354",
    "mean": "#74c476",
    "concat": "#969696",
    "elementwise": "#9e9ac8",
    "resize": "#a1d99b",
    "softmax": "#bcbddc",
    "pad": "#bdbdbd",
    "free": "#d9d9d9",
    "cpu_fallback": "#e6550d",
    "other": "#636363",
}
DEFAULT_COLOR = "#636363"


@dataclass(frozen=True)
class Bar:
    """One bar: its axis label, value, colour and hover text."""

    label: str
    value: float
    color: str = DEFAULT_COLOR
    tooltip: str = ""


def _nice_max(value: float) -> float:
    """The smallest 1/2/5 x 10^k not below ``value`` (axis top)."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for m in (1, 2, 5, 10):
        top = m * 10.0**exp
        if top >= value * (1 - 1e-12):
            return top
    return 10.0 ** (exp + 1)


def _num(v: float) -> str:
    """An axis label: up to 3 significant digits, no trailing zeros (0.125, 2.5, 40)."""
    return f"{v:.3g}"


def column_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    y_label: str = "ms",
    width: int = 900,
    height: int = 260,
    label_every: int = 0,
) -> str:
    """Vertical bars in the given order (e.g. one per layer, in file order)."""
    left, right, top, bottom = 52, 12, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    vmax = _nice_max(max((b.value for b in bars), default=0.0))
    n = max(len(bars), 1)
    step = plot_w / n
    bar_w = max(step * 0.8, 0.5)
    every = label_every or max(1, math.ceil(n / 30))
    out = _open(width, height, title, title_x=left)
    out.extend(_y_axis(left, top, plot_w, plot_h, vmax, y_label))
    for i, bar in enumerate(bars):
        h = plot_h * bar.value / vmax if vmax > 0 else 0.0
        x = left + i * step + (step - bar_w) / 2
        y = top + plot_h - h
        out.append(
            f'<rect x="{x:.2f}" y="{y:.2f}" width="{bar_w:.2f}" height="{h:.2f}" '
            f"{_fill_and_tip(bar, y_label)}</rect>"
        )
        if i % every == 0:
            out.append(
                f'<text x="{left + i * step + step / 2:.2f}" y="{top + plot_h + 14}" '
                f'class="x">{escape(bar.label)}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    unit: str = "ms",
    width: int = 440,
    row_height: int = 20,
    label_width: int = 170,
) -> str:
    """Horizontal bars, one row each, largest scale first as given (e.g. the top-10 layers)."""
    top, right = 28, 64
    height = top + row_height * max(len(bars), 1) + 8
    plot_w = width - label_width - right
    vmax = max((b.value for b in bars), default=0.0) or 1.0
    out = _open(width, height, title, title_x=4)
    for i, bar in enumerate(bars):
        y = top + i * row_height
        w = plot_w * bar.value / vmax
        out.append(
            f'<text x="{label_width - 6}" y="{y + row_height * 0.7:.1f}" class="l">'
            f"{escape(bar.label)}</text>"
        )
        out.append(
            f'<rect x="{label_width}" y="{y + 2}" width="{w:.2f}" height="{row_height - 4}" '
            f"{_fill_and_tip(bar, unit)}</rect>"
        )
        out.append(
            f'<text x="{label_width + w + 4:.2f}" y="{y + row_height * 0.7:.1f}" class="v">'
            f"{bar.value:.3g} {escape(unit)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)


def legend(kinds: Sequence[str]) -> str:
    """An inline legend (HTML, not SVG) for the kernel kinds present in a chart."""
    items = []
    for kind in kinds:
        color = KIND_COLORS.get(kind, DEFAULT_COLOR)
        items.append(
            f'<span class="lg"><span class="sw" style="background:{color}"></span>'
            f"{escape(kind)}</span>"
        )
    return '<div class="legend">' + "".join(items) + "</div>"


def _open(width: int, height: int, title: str, *, title_x: int) -> list[str]:
    """A chart's first lines: the ``<svg>`` element (labelled for screen readers) and its
    title text at ``title_x``."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{title_x}" y="16" class="t">{escape(title)}</text>',
    ]


def _fill_and_tip(bar: Bar, unit: str) -> str:
    """The end of a bar's ``<rect`` tag: its colour, and the hover text (the exact value)."""
    tip = escape(bar.tooltip or f"{bar.label}: {bar.value:.4g} {unit}")
    return f'fill="{escape(bar.color)}"><title>{tip}</title>'


def _y_axis(left: int, top: int, plot_w: int, plot_h: int, vmax: float, y_label: str) -> list[str]:
    out = []
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - frac)
        out.append(f'<line x1="{left}" y1="{y:.2f}" x2="{left + plot_w}" y2="{y:.2f}" class="g"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.2f}" class="y">{_num(vmax * frac)}</text>')
    out.append(
        f'<text x="12" y="{top + plot_h / 2:.1f}" class="y" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">{escape(y_label)}</text>'
    )
    return out
