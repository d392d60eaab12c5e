"""Predicted-vs-measured plot of an evaluation: PNG through matplotlib, else hand-written SVG."""

from __future__ import annotations

import math
from pathlib import Path

from tflat.errors import TflatError
from tflat.predict.evaluate import EvalReport


def write_plot(report: EvalReport, path: Path) -> Path:
    """Write the plot; ``.svg`` always works, ``.png`` needs matplotlib (else SVG beside it)."""
    if path.suffix.lower() != ".svg":
        try:
            return _matplotlib(report, path)
        except ImportError:
            path = path.with_suffix(".svg")
    path.write_text(_svg(report), encoding="utf-8")
    return path


def _matplotlib(report: EvalReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = [r.measured_ms for r in report.models]
    p = [r.predicted_ms for r in report.models]
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    lo, hi = min(m + p) * 0.8, max(m + p) * 1.25
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
    ax.fill_between(
        [lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="0.9", label="±10 %"
    )
    ax.errorbar(
        m,
        p,
        yerr=[[pi - r.low_ms for pi, r in zip(p, report.models, strict=True)],
              [r.high_ms - pi for pi, r in zip(p, report.models, strict=True)]],
        fmt="o", ms=3, lw=0.5, label="models (80 % interval)",
    )  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured (ms)")
    ax.set_ylabel("predicted (ms)")
    mape = report.model_metrics.get("mape_pct", float("nan"))
    ax.set_title(f"{report.device}: {report.method}, MAPE {mape:.1f} %", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise TflatError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    return path


def _svg(report: EvalReport) -> str:
    size, pad = 400, 40
    vals = [v for r in report.models for v in (r.measured_ms, r.predicted_ms) if v > 0]
    if not vals:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}"/>\n'
    lo, hi = math.log10(min(vals) * 0.8), math.log10(max(vals) * 1.25)

    def pos(v: float) -> float:
        return pad + (math.log10(max(v, 1e-9)) - lo) / (hi - lo) * (size - 2 * pad)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}">',
        f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="black"/>',
        f'<text x="{pad}" y="20" font-size="12">{report.device}: predicted vs measured '
        f"(log-log)</text>",
    ]
    for r in report.models:
        x, y = pos(r.measured_ms), size - pos(r.predicted_ms)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="steelblue">'
                     f"<title>{r.model}</title></circle>")  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
