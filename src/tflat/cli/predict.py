"""``tflat train`` and ``tflat evaluate``: build a device predictor and measure how good it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tflat.cli.common import emit, write_text_atomic
from tflat.errors import TflatError


def _usc_data(usc: Path | None) -> Any:
    from tflat.datasets.usc import load_usc

    return load_usc(usc)


def _store_rows(db: str | None, device: str) -> Any:
    from tflat.predict.dbrows import rows_from_store
    from tflat.store import open_store

    store = open_store(db)
    try:
        return rows_from_store(store, device)
    finally:
        store.close()


@click.command("train")
@click.option("--device", required=True, help="Device id (pixel4, s10, ..., host-cpu).")
@click.option("--db", "db_url", default=None, help="Database URL (default: TFLAT_DB or SQLite).")
@click.option(
    "--usc",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Train from the USC public data folder instead of the database.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the bundle JSON here instead of saving it in the database.",
)
def train_cmd(device: str, db_url: str | None, usc: Path | None, output: Path | None) -> None:
    """Train a device's predictor from the database (or --usc FOLDER)."""
    from tflat.predict.bundles import BUNDLED_DEVICES, bundle_json
    from tflat.predict.usc import fit_usc_device

    if usc is not None:
        bundle = fit_usc_device(_usc_data(usc), device)
    else:
        data = _store_rows(db_url, device)
        if not data.ops:
            raise TflatError(
                f"no GPU kernel measurements for {device} in the database "
                "(import the USC data with 'tflat db import' or pass --usc FOLDER)"
            )
        if device in BUNDLED_DEVICES:
            bundle = fit_usc_device(data, device)
        else:
            from tflat.predict.train import fit_device

            bundle = fit_device(data.ops, data.models_for(device), device={"id": device},
                                provenance=data.provenance)  # fmt: skip
    if output is not None:
        write_text_atomic(output, bundle_json(bundle) + "\n")
        where = str(output)
    else:
        from tflat.store import open_store

        store = open_store(db_url)
        try:
            store.save_predictor(device, bundle, provenance=bundle.get("provenance"))
        finally:
            store.close()
        where = "the database"
    m = bundle["metrics"]
    click.echo(
        f"trained {device}: {bundle['training_rows']['kernels']} kernels, "
        f"{bundle['training_rows']['models']} models; out-of-fold kernel MAPE "
        f"{m['kernel_oof_mape_pct']:.1f} %, model MAPE {m.get('model_oof_mape_pct', 0):.1f} %; "
        f"saved to {where}"
    )


@click.command("evaluate")
@click.option("--device", required=True, help="Device id.")
@click.option("--db", "db_url", default=None, help="Database URL (default: TFLAT_DB or SQLite).")
@click.option(
    "--usc",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Cross-validate on the USC public data folder.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write a predicted-vs-measured plot (PNG, or SVG).",
)
@click.option("--folds", type=int, default=5, show_default=True, help="Family folds.")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None)
def evaluate_cmd(
    device: str,
    db_url: str | None,
    usc: Path | None,
    fmt: str,
    plot: Path | None,
    folds: int,
    output: Path | None,
) -> None:
    """Evaluate a predictor with architecture families held out.

    With stored whole models that have a .tflite file, the device's trained predictor is
    checked on them; otherwise the training pipeline is cross-validated by family on the
    database's kernel rows (or --usc FOLDER, or the USC data next to the repository).
    """
    from tflat.predict.evaluate import evaluate_families, evaluate_on_models

    report = None
    if usc is None:
        from tflat.predict.dbrows import stored_model_files
        from tflat.store import open_store

        store = open_store(db_url)
        try:
            files = stored_model_files(store, device)
        finally:
            store.close()
        if files:
            from tflat.predict import load_predictor

            report = evaluate_on_models(load_predictor(device, db_url), files)
        else:
            data = _store_rows(db_url, device)
            if data.ops:
                report = evaluate_families(data, device, n_folds=folds)
    if report is None:
        report = evaluate_families(_usc_data(usc), device, n_folds=folds)
    if plot is not None:
        from tflat.predict.plot import write_plot

        written = write_plot(report, plot)
        click.echo(f"plot written to {written}", err=True)
    if fmt == "json":
        emit(json.dumps(report.to_dict(), indent=2) + "\n", output)
        return
    emit(_table(report), output)


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
