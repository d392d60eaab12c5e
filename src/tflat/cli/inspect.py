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
        _print_table(render.to_table(graph), output)


def _print_table(table: object, output: Path | None) -> None:
    # A terminal gets rich's own layout; a pipe or a file gets the table's natural width,
    # so `tflat inspect m.tflite | less` shows whole cells rather than 80 cropped columns.
    from rich.console import Console

    if output is None:
        console = Console(soft_wrap=False)
        if not console.is_terminal:
            console = Console(soft_wrap=False, width=render.natural_width(table))
        console.print(table)
        return
    import io

    text = io.StringIO()
    Console(file=text, width=render.natural_width(table), color_system=None).print(table)
    emit(text.getvalue(), output)
