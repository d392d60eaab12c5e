"""``tflat estimate`` and ``tflat devices``: a model's latency on the devices asked, rendered
as a table, CSV, JSON or HTML, and the devices that have a predictor."""

from __future__ import annotations

from pathlib import Path

import click

import tflat
from tflat.cli.common import (
    INPUT_SHAPE_HELP,
    db_option,
    emit,
    output_option,
    path_option,
    render,
    write_text_atomic,
)

ESTIMATE_FORMATS = ("table", "csv", "json", "html")


@click.command("estimate")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "-d",
    "--device",
    "devices",
    multiple=True,
    default=("pixel4",),
    show_default=True,
    help="Device id (repeat for several devices side by side; see 'tflat devices'), or a "
    "predictor bundle file (FILE.json), checked before it is used.",
)
@click.option(
    "--format", "fmt", type=click.Choice(ESTIMATE_FORMATS), default="table", show_default=True
)
@output_option()
@path_option(
    "--overlay",
    help="Also write Model Explorer node data (a latency heat map) to FILE "
    "(one FILE.<device>.json per device when several).",
)
@click.option(
    "--precision",
    type=click.Choice(("fp16", "fp32")),
    help="GPU math precision (default: the one each device's data was measured in, see "
    "'tflat devices'; the other one is extrapolated and says so).",
)
@db_option("for calibrated devices")
@click.option("--input-shape", "input_shapes", multiple=True, help=INPUT_SHAPE_HELP)
def estimate_cmd(
    model: Path,
    devices: tuple[str, ...],
    fmt: str,
    output: Path | None,
    overlay: Path | None,
    precision: str | None,
    db_url: str | None,
    input_shapes: tuple[str, ...],
) -> None:
    """Estimate MODEL's latency per layer on each DEVICE's GPU, with an interval."""
    graph = tflat.read_model(model, input_shapes=tflat.parse_input_shapes(input_shapes))
    _check_db(db_url)
    unique = list(dict.fromkeys(devices))
    estimates = [
        tflat.estimate(graph, device=d, db_url=db_url, precision=precision) for d in unique
    ]
    if overlay is not None:
        from tflat.report import overlay as me

        for est, path in zip(estimates, me.overlay_paths(overlay, unique), strict=True):
            write_text_atomic(path, me.to_json(est))
    from tflat.report import estimate_text, html

    emit(render(fmt, html if fmt == "html" else estimate_text, estimates), output)


@click.command("devices")
@db_option("for calibrated devices")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table")
@output_option()
def devices_cmd(db_url: str | None, fmt: str, output: Path | None) -> None:
    """List the devices tflat can estimate for: bundled and calibrated, with provenance."""
    from tflat.report import estimate_devices as render

    _check_db(db_url)
    cards = tflat.list_devices(db_url=db_url)
    emit(render.to_json(cards) if fmt == "json" else render.to_table(cards), output)


def _check_db(db_url: str | None) -> None:
    """An explicit --db that cannot be opened is an error (exit 2), not a silent fallback to
    the bundled predictors; nor does it create an empty database at a mistyped path."""
    if db_url is not None:
        tflat.open_store(db_url, create=False).close()
