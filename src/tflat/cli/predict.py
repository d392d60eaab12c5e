"""``tflat train`` and ``tflat evaluate``: build a device predictor and measure how good it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

import tflat
from tflat.cli.common import db_option, emit, path_option, training_errors, write_text_atomic
from tflat.errors import TflatError


@click.command("train")
@click.option("--device", required=True, help="Device id (pixel4, s10, ..., host-cpu).")
@db_option()
@path_option(
    "--usc", kind="folder", help="Train from the USC public data folder instead of the database."
)
@path_option(
    "--output", "-o", kind="file",
    help="Write the bundle JSON here instead of saving it in the database.",
)  # fmt: skip
def train_cmd(device: str, db_url: str | None, usc: Path | None, output: Path | None) -> None:
    """Train a device's predictor from the database (or --usc FOLDER).

    A phone of the USC study (pixel4, s10, ...) with no rows in the database trains on the
    USC measurements shipped with tflat.
    """
    from tflat.cli.progress import step_bar

    with step_bar(f"train {device}") as bar:
        bundle = tflat.train_device(device, db_url=db_url, usc=usc, save=output is None,
                                    progress=bar)  # fmt: skip
    if output is not None:
        write_text_atomic(output, tflat.bundle_json(bundle) + "\n")
    click.echo(
        f"trained {device}: {bundle['training_rows']['kernels']} kernels, "
        f"{bundle['training_rows']['models']} models; {training_errors(bundle)}; "
        f"saved to {output if output is not None else 'the database'}"
    )


@click.command("evaluate")
@click.option("--device", required=True, help="Device id.")
@db_option()
@path_option("--usc", kind="folder", help="Use the USC public data folder instead of the database.")
@click.option(
    "--cv",
    "mode",
    flag_value="cv",
    default=None,
    help="Cross-validate the training pipeline, architecture families held out "
    "(default without --db).",
)
@click.option(
    "--predictor",
    "predictor_src",
    default=None,
    metavar="bundled|db|FILE",
    help="Evaluate a trained predictor as it is on the models of --db (or --usc): the shipped "
    "bundle, the database's predictor of the device (else the shipped one), or a bundle JSON "
    "file. Default with --db: db.",
)
@path_option(
    "--models",
    "models_dir",
    help="Estimate AND measure every .tflite under this folder on the device (host-cpu, "
    "android:SERIAL) with its trained predictor: MAPE, share within ±10 %, Spearman.",
)
@click.option(
    "--rounds",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="Measurement rounds per model with --models (the lowest round minimum counts).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@path_option(
    "--plot",
    kind="file",
    help="Write a predicted-vs-measured plot: FILE.png (needs the extra tflat[plot]) or "
    "FILE.svg (needs nothing).",
)
@click.option(
    "--folds", type=click.IntRange(2), default=5, show_default=True, help="Family folds (--cv)."
)
@path_option("--output", "-o", kind="file", help="Write to FILE instead of stdout.")
def evaluate_cmd(
    device: str,
    db_url: str | None,
    usc: Path | None,
    mode: str | None,
    predictor_src: str | None,
    models_dir: Path | None,
    rounds: int,
    fmt: str,
    plot: Path | None,
    folds: int,
    output: Path | None,
) -> None:
    """Evaluate a device's predictor on measured whole models.

    Two modes. --cv (the default without --db) retrains the whole pipeline once per fold with
    the test architecture families left out, on the kernel rows of --usc FOLDER, of --db, or of
    the USC data shipped with tflat (TFLAT_USC_DIR overrides). --predictor SRC (the default
    with --db, SRC=db) takes a trained predictor as it is and predicts the models stored in
    --db (or --usc): from their kernel lists, and from their .tflite file when the database
    has one.
    """
    from tflat.cli.progress import step_bar

    if plot is not None:  # a plot that cannot be written fails before minutes of evaluation
        tflat.check_plot_path(plot)
    if models_dir is not None:
        _evaluate_measured(device, db_url, models_dir, rounds, fmt, plot, output)
        return
    if mode == "cv" and predictor_src is not None:
        raise TflatError("--cv and --predictor exclude each other")
    if mode is None:
        mode = "predictor" if predictor_src is not None or db_url is not None else "cv"
    with step_bar(f"evaluate {device}") as bar:
        report = tflat.evaluate_device(
            device, db_url=db_url, usc=usc, folds=folds,
            predictor=None if mode == "cv" else predictor_src or "db",
            progress=bar if mode == "cv" else None,
        )  # fmt: skip
    _plot(report, plot)
    if fmt == "json":
        emit(json.dumps(report.to_dict(), indent=2) + "\n", output)
        return
    emit(_table(report), output)


def _plot(report: Any, plot: Path | None) -> None:
    if plot is not None:
        written = tflat.write_plot(report, plot)
        click.echo(f"plot written to {written}", err=True)


def _evaluate_measured(
    device: str,
    db_url: str | None,
    folder: Path,
    rounds: int,
    fmt: str,
    plot: Path | None,
    output: Path | None,
) -> None:
    """``--models DIR``: the device's predictor against fresh measurements of real models."""
    if not folder.is_dir():
        raise TflatError(f"--models: {folder} is not a folder")
    paths = sorted(folder.rglob("*.tflite"))
    if not paths:
        raise TflatError(f"--models: no .tflite files under {folder}")
    report = tflat.evaluate_models(device, paths, db_url, measure_rounds=rounds)
    _plot(report.to_eval_report(), plot)
    if fmt == "json":
        emit(json.dumps(report.to_dict(), indent=2) + "\n", output)
        return
    m = report.metrics
    lines = [
        f"{device}: {len(report.ok)} of {len(report.checks)} models measured ({report.statistic})"
    ]
    lines.append(f"{'model':<40}{'estimated ms':>14}{'measured ms':>14}{'error':>9}  status")
    for c in report.checks:
        measured = f"{c.measured_ms:.3f}" if c.status == "ok" else "-"
        err = f"{c.error_pct:+.1f} %" if c.status == "ok" else ""
        lines.append(f"{c.model:<40}{c.estimated_ms:>14.3f}{measured:>14}{err:>9}  {c.status}")
    if m.get("n"):
        lines.append(
            f"MAPE {m['mape_pct']:.1f} %, within ±10 %: {m['within_10_pct']:.0f} %, "
            f"Spearman {m['spearman']:.3f}"
        )
    emit("\n".join(lines) + "\n", output)


def _table(report: Any) -> str:
    def row(name: str, m: dict[str, Any]) -> str:
        if not m.get("n"):
            return f"{name:<26}{'-':>6}"
        return (
            f"{name:<26}{m['n']:>6}{m['mape_pct']:>9.2f}{m['within_5_pct']:>9.1f}"
            f"{m['within_10_pct']:>9.1f}{m['spearman']:>10.4f}"
            f"{m.get('interval_coverage_pct', float('nan')):>11.1f}"
        )

    lines = [
        f"{report.device}: {report.method}",
        f"{'level':<26}{'n':>6}{'MAPE %':>9}{'±5 %':>9}{'±10 %':>9}{'Spearman':>10}"
        f"{'cover80 %':>11}",
        row("whole model", report.model_metrics),
        row("op", report.op_metrics),
        row("op, shapes unseen", report.op_unseen_metrics),
    ]
    return "\n".join(lines) + "\n"
