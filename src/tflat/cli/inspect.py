"""``tflat inspect``: the ops of a .tflite model with shapes, options, FLOPs and bytes."""

from __future__ import annotations

from pathlib import Path

import click

import tflat
from tflat.cli.common import FORMATS, INPUT_SHAPE_HELP, emit, output_option, render
from tflat.report import inspect as inspect_report


@click.command("inspect")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@output_option()
@click.option("--input-shape", "input_shapes", multiple=True, help=INPUT_SHAPE_HELP)
def inspect_cmd(model: Path, fmt: str, output: Path | None, input_shapes: tuple[str, ...]) -> None:
    """List the ops of MODEL (a .tflite file) with shapes, options, FLOPs and bytes.

    Shapes are the ones LiteRT resolves for the input shapes. Ops tflat has no cost formula
    for are listed and flagged "unknown", ops whose shape cannot be resolved are flagged
    "unresolved"; none is dropped.
    """
    graph = tflat.read_model(model, input_shapes=tflat.parse_input_shapes(input_shapes))
    if fmt != "table":  # the table shows them in its summary
        for line in tflat.unresolved_warnings(graph.all_ops):
            click.echo(f"tflat: warning: {line}", err=True)
    emit(render(fmt, inspect_report, graph), output)
