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


def _no_measurements(device: str, where: str, db_url: str | None = None) -> str:
    """The one-line error for a device with no kernel rows, worded for what the device is:
    it names the command to run first, with the same --db."""
    if device.startswith(("host-cpu", "android:")):
        what = "CPU kernel" if device.startswith("host-cpu") else "kernel"
        db = f" --db {db_url}" if db_url else ""
        return (
            f"no {what} measurements for {device} in {where}: "
            f"run 'tflat calibrate {device}{db}' first"
        )
    return (
        f"no GPU kernel measurements for {device} in {where} "
        "(import the USC data with 'tflat db import' or pass --usc FOLDER)"
    )


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
    """Train a device's predictor from the database (or --usc FOLDER).

    A phone of the USC study (pixel4, s10, ...) with no rows in the database trains on the
    USC measurements shipped with tflat.
    """
    from tflat.cli.progress import step_bar
    from tflat.predict.bundles import BUNDLED_DEVICES, bundle_json
    from tflat.predict.usc import fit_usc_device

    if usc is not None:
        with step_bar(f"train {device}") as bar:
            bundle = fit_usc_device(_usc_data(usc), device, progress=bar)
    else:
        data = _store_rows(db_url, device)
        if not data.ops and device in BUNDLED_DEVICES:
            # a phone of the USC study with nothing imported: its measurements ship with tflat
            click.echo(f"no {device} rows in the database: training on the packaged USC data",
                       err=True)  # fmt: skip
            data = _usc_data(None)
        if not data.ops:
            raise TflatError(_no_measurements(device, "the database", db_url))
        with step_bar(f"train {device}") as bar:
            if device in BUNDLED_DEVICES:
                bundle = fit_usc_device(data, device, progress=bar)
            else:
                from tflat.predict.train import fit_device

                bundle = fit_device(data.ops, data.models_for(device), device={"id": device},
                                    provenance=data.provenance, progress=bar)  # fmt: skip
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
    help="Use the USC public data folder instead of the database.",
)
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
@click.option(
    "--models",
    "models_dir",
    type=click.Path(path_type=Path),
    default=None,
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
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write a predicted-vs-measured plot: FILE.png (needs the extra tflat[plot]) or "
    "FILE.svg (needs nothing).",
)
@click.option(
    "--folds", type=click.IntRange(2), default=5, show_default=True, help="Family folds (--cv)."
)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None)
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
    from tflat.predict.evaluate import evaluate_families

    if plot is not None:  # a plot that cannot be written fails before minutes of evaluation
        from tflat.predict.plot import check_plot_path

        check_plot_path(plot)
    if models_dir is not None:
        _evaluate_measured(device, db_url, models_dir, rounds, fmt, plot, output)
        return
    if mode == "cv" and predictor_src is not None:
        raise TflatError("--cv and --predictor exclude each other")
    if mode is None:
        mode = "predictor" if predictor_src is not None or db_url is not None else "cv"
    if mode == "cv":
        data = _usc_data(usc) if usc is not None else None
        if data is None and db_url is not None:
            data = _store_rows(db_url, device)
            if not data.ops:
                raise TflatError(_no_measurements(device, db_url, db_url))
        from tflat.cli.progress import step_bar

        with step_bar(f"evaluate {device}") as bar:
            report = evaluate_families(data if data is not None else _usc_data(None), device,
                                       n_folds=folds, progress=bar)  # fmt: skip
    else:
        report = _evaluate_trained(device, db_url, usc, predictor_src or "db")
    if plot is not None:
        from tflat.predict.plot import write_plot

        written = write_plot(report, plot)
        click.echo(f"plot written to {written}", err=True)
    if fmt == "json":
        emit(json.dumps(report.to_dict(), indent=2) + "\n", output)
        return
    emit(_table(report), output)


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
    from tflat.calibrate import evaluate_models

    if not folder.is_dir():
        raise TflatError(f"--models: {folder} is not a folder")
    paths = sorted(folder.rglob("*.tflite"))
    if not paths:
        raise TflatError(f"--models: no .tflite files under {folder}")
    report = evaluate_models(device, paths, db_url, measure_rounds=rounds)
    if plot is not None:
        from tflat.predict.plot import write_plot

        written = write_plot(report.to_eval_report(), plot)
        click.echo(f"plot written to {written}", err=True)
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


def _load_trained(device: str, db_url: str | None, src: str) -> Any:
    from tflat.predict import Predictor
    from tflat.pricing.predictors import load_predictor

    if src == "bundled":
        return load_predictor(device)
    if src == "db":
        return load_predictor(device, db_url)
    path = Path(src)
    if not path.is_file():
        raise TflatError(f"--predictor: {src} is not bundled, db or a bundle file")
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TflatError(f"--predictor: cannot read {src}: {exc}") from exc
    pred = Predictor(bundle)
    if pred.device != device:
        raise TflatError(f"--predictor: {src} is a predictor for {pred.device}, not {device}")
    return pred


def _evaluate_trained(device: str, db_url: str | None, usc: Path | None, src: str) -> Any:
    from tflat.predict.evaluate import evaluate_on_models, evaluate_predictor_on_rows

    predictor = _load_trained(device, db_url, src)
    label = f"{src}: {predictor.card.source or predictor.device}"
    if usc is not None:
        data = _usc_data(usc)
        data = type(data)(ops=data.ops_for(device), models=data.models_for(device),
                          folder=data.folder, provenance=data.provenance)  # fmt: skip
        if not data.models:
            raise TflatError(f"no whole-model GPU times for {device} in {usc}")
        return evaluate_predictor_on_rows(predictor, data, label)
    from tflat.predict.dbrows import stored_model_files
    from tflat.store import open_store

    store = open_store(db_url)
    try:
        files = stored_model_files(store, device)
    finally:
        store.close()
    if files:
        return evaluate_on_models(predictor, files)
    data = _store_rows(db_url, device)
    if not data.models or not data.ops:
        raise TflatError(
            f"no whole models with kernel lists or .tflite files for {device} in the database "
            "(import some with 'tflat db import DIR --format usc')"
        )
    return evaluate_predictor_on_rows(predictor, data, label)


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
