"""Helpers shared by the CLI modules: output formats and where output goes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tflat.errors import TflatError

FORMATS = ("table", "csv", "json")


def emit(content: Any, output: Path | None) -> None:
    """Write text, or print a rich renderable, to ``output`` or stdout.

    A file is written whole through a temporary name, so a failure never leaves half of it.
    """
    if isinstance(content, str):
        if output is None:
            click.echo(content, nl=not content.endswith("\n"))
            return
        write_text_atomic(output, content)
        return
    from rich.console import Console

    if output is None:
        Console(soft_wrap=False).print(content)
        return
    with output.open("w", encoding="utf-8") as fh:
        Console(file=fh, width=200, color_system=None).print(content)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise TflatError(f"cannot write {path}: {exc.strerror or exc}") from exc
