"""Helpers shared by the CLI modules: the options several commands take (database, paths,
seconds, plan size), output formats and where output goes."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from tflat.errors import TflatError

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "csv", "json")
INPUT_SHAPE_HELP = (
    "Shape of a model input, e.g. 1,224,224,3 (one per input, in order; NAME:1,224,224,3 to "
    "name an input). Needed when an input's height or width is dynamic; a dynamic batch is 1 "
    "unless given."
)


def db_option(what: str = "") -> Callable[[F], F]:
    """The ``--db URL`` option every command that opens the database takes (``what`` says
    what for, e.g. "for calibrated devices")."""
    purpose = f" {what}" if what else ""
    return click.option(
        "--db",
        "db_url",
        metavar="URL",
        default=None,
        help=f"Database URL or SQLite file{purpose} (default: TFLAT_DB or the user data dir).",
    )


def seconds_option(name: str, *, minimum: float, default: float, help: str) -> Callable[[F], F]:
    """An option of a duration in seconds, at least ``minimum``; the command receives it as
    ``<name>_s`` (``--timeout`` -> ``timeout_s``), the unit in the name."""
    return click.option(
        name,
        f"{name.lstrip('-').replace('-', '_')}_s",
        type=click.FloatRange(min=minimum),
        default=default,
        show_default=True,
        help=help,
    )


def path_option(
    *names: str, help: str, kind: str = "", exists: bool = False, **kw: Any
) -> Callable[[F], F]:
    """An option naming a path (a ``Path``, None when not given); ``kind`` "folder" or
    "file" refuses the other kind."""
    okay = {"folder": {"file_okay": False}, "file": {"dir_okay": False}}.get(kind, {})
    path = click.Path(path_type=Path, exists=exists, **okay)
    return click.option(*names, type=path, default=kw.pop("default", None), help=help, **kw)


def output_option(help: str = "Write to FILE instead of stdout.") -> Callable[[F], F]:
    """``-o/--output FILE``: write to a file (whole, through a temporary name) not stdout."""
    return path_option("-o", "--output", help=help)


def render(fmt: str, renderer: Any, what: Any) -> Any:
    """``renderer.to_<fmt>(what)``: a report module's rendering of ``what`` as ``fmt``."""
    return getattr(renderer, f"to_{fmt}")(what)


#: Width of tables written to a pipe or a file: wide enough that no cell is cut.
PLAIN_WIDTH = 400


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
        Console(soft_wrap=False, width=stdout_width()).print(content)
        return
    import io

    text = io.StringIO()
    Console(file=text, width=PLAIN_WIDTH, color_system=None).print(content)
    write_text_atomic(output, text.getvalue())


def stdout_width() -> int | None:
    """The width tables on stdout fit: COLUMNS when the environment sets it (the user asked
    for that width), else the terminal's (None: rich asks it), else PLAIN_WIDTH: a pipe gets
    whole cells, not a table cropped to 80 columns."""
    import os
    import sys

    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if sys.stdout.isatty() else PLAIN_WIDTH


def training_errors(bundle: dict[str, Any]) -> str:
    """A trained bundle's errors in words: out-of-fold kernel and model MAPE, the model error
    marked in-sample when too few models were trained on to hold one out."""
    m = bundle.get("metrics", {})
    in_sample = bundle.get("whole_model", {}).get("selection") == "in-sample"
    how = " in-sample (too few models to hold one out)" if in_sample else ""
    return (
        f"out-of-fold kernel MAPE {m.get('kernel_oof_mape_pct', math.nan):.1f} %, "
        f"model MAPE {m.get('model_oof_mape_pct', math.nan):.1f} %{how}"
    )


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through ``path.part``: a failure leaves neither half a file
    nor the ``.part`` behind, and raises a one-line :class:`TflatError`."""
    if path.is_dir():
        raise TflatError(f"cannot write {path}: is a folder")
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise TflatError(f"cannot write {path}: {exc.strerror or exc}") from exc


def max_specs_option(f: Any) -> Any:
    """``--max-specs N``: the largest plan a command expands (tflat.plans.DEFAULT_MAX_SPECS,
    ten million, when not given: it guards the memory against a plan of 10^12 specs)."""
    return click.option(
        "--max-specs",
        type=click.IntRange(1),
        default=None,
        help="Refuse a plan of more specs than this, before making any [default: 10000000].",
    )(f)
