"""``tflat inspect``: the ops of a .tflite model with shapes, options, FLOPs and bytes."""

from __future__ import annotations

from pathlib import Path

import click

from tflat.cli.common import FORMATS, emit
from tflat.model import read_model
from tflat.report import inspect as render


@click.command("inspect")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Write to FILE instead of stdout."
)
def inspect_cmd(model: Path, fmt: str, output: Path | None) -> None:
    """List the ops of MODEL (a .tflite file) with shapes, options, FLOPs and bytes.

    Ops tflat has no cost formula for are listed and flagged "unknown", never dropped.
    """
    graph = read_model(model)
    if fmt == "json":
        emit(render.to_json(graph), output)
    elif fmt == "csv":
        emit(render.to_csv(graph), output)
    else:
        emit(render.to_table(graph), output)
