"""Predicted-vs-measured plot of an evaluation: what ``tflat evaluate --plot FILE`` writes.

The file name says the format. ``.svg`` is written by hand here and needs nothing; ``.png`` (and
``.pdf``) are drawn by matplotlib, an optional extra (``pip install "tflat[plot]"``): without it
the user gets one line naming the extra, never a file of another format under the asked name.
Both show the same: log-log axes in ms, the identity line, the ±10 % band around it, every
model with its 80 % interval, and the model-level MAPE in the title.
"""

from __future__ import annotations

import math
from pathlib import Path

from tflat.errors import TflatError
from tflat.predict.evaluate import EvalReport

#: Formats matplotlib draws; SVG is always written by hand.
MATPLOTLIB_SUFFIXES = (".png", ".pdf")
#: The PNG's size in pixels (inches x dpi): 960 x 720.
PNG_INCHES, PNG_DPI = (9.6, 7.2), 100
#: The band drawn around the identity line: predictions within ±10 % of the measurement.
BAND = 0.10


def check_plot_path(path: Path) -> None:
    """Refuse a plot file tflat cannot write before any work is done (one-line errors)."""
    suffix = path.suffix.lower()
    if suffix == ".svg":
        return
    if suffix not in MATPLOTLIB_SUFFIXES:
        raise TflatError(f"--plot {path}: name a .png, .pdf or .svg file")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise TflatError(
            f"--plot {path.name}: a {suffix[1:].upper()} needs matplotlib: "
            'pip install "tflat[plot]" (or name a .svg file, which needs nothing)'
        ) from None


def write_plot(report: EvalReport, path: Path) -> Path:
    """Write the plot in the format ``path``'s suffix names; returns ``path``."""
    check_plot_path(path)
    if path.suffix.lower() == ".svg":
        _write(path, svg_plot(report))
    else:
        _matplotlib(report, path)
    return path


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise TflatError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _title(report: EvalReport) -> str:
    mape = report.model_metrics.get("mape_pct", float("nan"))
    within = report.model_metrics.get("within_10_pct", float("nan"))
    return (
        f"{report.device}: {report.method} — {len(report.models)} models, "
        f"MAPE {mape:.1f} %, {within:.0f} % within ±10 %"
    )


def _range(report: EvalReport) -> tuple[float, float]:
    """The axes' common range in ms (log scale), with room around the points."""
    vals = [v for r in report.models for v in (r.measured_ms, r.predicted_ms, r.low_ms, r.high_ms)
            if v > 0]  # fmt: skip
    if not vals:
        return 0.1, 10.0
    return min(vals) * 0.8, max(vals) * 1.25


def _matplotlib(report: EvalReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    lo, hi = _range(report)
    fig, ax = plt.subplots(figsize=PNG_INCHES, dpi=PNG_DPI)
    try:
        ax.fill_between([lo, hi], [lo * (1 - BAND), hi * (1 - BAND)],
                        [lo * (1 + BAND), hi * (1 + BAND)], color="0.88",
                        label=f"±{BAND * 100:.0f} % of measured")  # fmt: skip
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, label="predicted = measured")
        m = [r.measured_ms for r in report.models]
        p = [r.predicted_ms for r in report.models]
        below = [max(r.predicted_ms - r.low_ms, 0.0) for r in report.models]
        above = [max(r.high_ms - r.predicted_ms, 0.0) for r in report.models]
        ax.errorbar(m, p, yerr=[below, above], fmt="o", ms=4, lw=0.6, color="tab:blue",
                    label="a model (bar: 80 % interval)")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain = matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:g}")  # 20, not 2×10¹
        sparse = matplotlib.ticker.FuncFormatter(
            lambda v, _pos: f"{v:g}" if _mantissa(v) in (2, 5) else ""
        )
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(sparse)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("measured latency (ms)")
        ax.set_ylabel("predicted latency (ms)")
        ax.set_title(_title(report), fontsize=10)
        ax.grid(True, which="both", color="0.93", lw=0.5)
        ax.legend(loc="upper left", fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=PNG_DPI)
    except OSError as exc:
        raise TflatError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)


def _mantissa(v: float) -> int:
    """The leading digit of a tick value (2 for 0.2, 20, 200)."""
    return round(v / 10 ** math.floor(math.log10(v))) if v > 0 else 0


def _ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks per decade inside [lo, hi]."""
    out = []
    for exp in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**exp
            if lo <= v <= hi:
                out.append(v)
    return out


def _esc(text: str) -> str:
    from html import escape

    return escape(text, quote=True)


def svg_plot(report: EvalReport, width: int = 640, height: int = 520) -> str:
    """The same plot as a standalone SVG, written by hand (no dependency)."""
    left, right, top, bottom = 64, 16, 40, 52
    pw, ph = width - left - right, height - top - bottom
    lo, hi = _range(report)
    llo, lhi = math.log10(lo), math.log10(hi)

    def x(v: float) -> float:
        return left + (math.log10(max(v, lo)) - llo) / (lhi - llo) * pw

    def y(v: float) -> float:
        return top + ph - (math.log10(max(v, lo)) - llo) / (lhi - llo) * ph

    band = [(lo, lo * (1 + BAND)), (hi, hi * (1 + BAND)), (hi, hi * (1 - BAND)),
            (lo, lo * (1 - BAND))]  # fmt: skip
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<clipPath id="plot"><rect x="{left}" y="{top}" width="{pw}" height="{ph}"/></clipPath>',
        f'<text x="{width / 2:.0f}" y="20" text-anchor="middle" font-size="12">'
        f"{_esc(_title(report))}</text>",
        '<polygon clip-path="url(#plot)" fill="#e0e0e0" points="'
        + " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in band)
        + f'"><title>±{BAND * 100:.0f} % of measured</title></polygon>',
    ]
    for t in _ticks(lo, hi):
        label = f"{t:g}"
        parts.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{top + ph}" '
                     f'stroke="#eee"/>')  # fmt: skip
        parts.append(f'<line x1="{left}" y1="{y(t):.1f}" x2="{left + pw}" y2="{y(t):.1f}" '
                     f'stroke="#eee"/>')  # fmt: skip
        parts.append(f'<text x="{x(t):.1f}" y="{top + ph + 16}" text-anchor="middle">'
                     f"{label}</text>")  # fmt: skip
        parts.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{label}</text>')
    parts += [
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>',
        f'<line x1="{x(lo):.1f}" y1="{y(lo):.1f}" x2="{x(hi):.1f}" y2="{y(hi):.1f}" '
        'stroke="black" stroke-width="0.8"/>',
        f'<text x="{left + pw / 2:.0f}" y="{height - 12}" text-anchor="middle">'
        "measured latency (ms)</text>",
        f'<text transform="translate(16 {top + ph / 2:.0f}) rotate(-90)" '
        'text-anchor="middle">predicted latency (ms)</text>',
    ]
    for r in report.models:
        cx, cy = x(r.measured_ms), y(r.predicted_ms)
        tip = (f"{r.model}: measured {r.measured_ms:.3g} ms, predicted {r.predicted_ms:.3g} ms "
               f"({r.low_ms:.3g}–{r.high_ms:.3g})")  # fmt: skip
        bar = f'x1="{cx:.1f}" y1="{y(r.low_ms):.1f}" x2="{cx:.1f}" y2="{y(r.high_ms):.1f}"'
        parts.append(f'<line {bar} stroke="steelblue" stroke-width="0.8"/>')
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="steelblue">'
                     f"<title>{_esc(tip)}</title></circle>")  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
