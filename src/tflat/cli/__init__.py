"""The ``tflat`` command line: parse, call the public API, render, exit.

Each area's commands live in their own module below and are imported only when invoked, so
``tflat --help`` and ``tflat inspect`` stay fast. Exit codes: 0 ok, 1 bad input, 2 device or
database failure, 3 a bug in tflat; every error becomes one line on stderr, never a traceback
(``-vv`` logs the traceback of an internal error).
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from tflat import __version__
from tflat.errors import TflatError

#: command name -> (module, attribute, one-line help shown by ``tflat --help``)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "inspect": (
        "tflat.cli.inspect",
        "inspect_cmd",
        "List the ops of a .tflite model with their cost.",
    ),
    "plan": ("tflat.cli.plans", "plan_group", "Show sampling plans."),
    "generate": (
        "tflat.cli.plans",
        "generate_cmd",
        "Write single-op benchmark models from a plan.",
    ),
    "bench": ("tflat.cli.bench", "bench_cmd", "Measure models on a device into the database."),
    "db": ("tflat.cli.db", "db_group", "The measurement database: stats, import, export."),
    "train": ("tflat.cli.predict", "train_cmd", "Train a device's predictor from the database."),
    "evaluate": ("tflat.cli.predict", "evaluate_cmd", "Evaluate a predictor on held-out models."),
    "estimate": ("tflat.cli.estimate", "estimate_cmd", "Estimate a model's latency per layer."),
    "devices": ("tflat.cli.estimate", "devices_cmd", "List the devices tflat can estimate for."),
    "calibrate": ("tflat.cli.calibrate", "calibrate_cmd", "Calibrate a new device end to end."),
    "device": (
        "tflat.cli.devices",
        "device_group",
        "Add a phone from a few timings, or sharpen a calibrated one (device add).",
    ),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attr, _ = entry
        try:
            cmd = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            return _unavailable(cmd_name, entry[2])
        assert isinstance(cmd, click.Command)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in sorted(COMMANDS)])


def _unavailable(name: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def cmd(args: Any) -> None:
        raise TflatError(f"'tflat {name}' is not available in this build")

    return cmd


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tflat")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bars with ETA on stderr for long commands [default: when stderr is a terminal].",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, progress: bool | None) -> None:
    """Estimate TFLite model latency on phone GPUs, per layer, before running on a phone."""
    ctx.meta["tflat.progress"] = progress  # read by tflat.cli.progress
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (and exits with it when run as a script)."""
    try:
        cli.main(args=argv, prog_name="tflat", standalone_mode=False)
    except TflatError as exc:
        click.echo(f"tflat: error: {_one_line(exc)}", err=True)
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("tflat: interrupted", err=True)
        code = 130
    except click.ClickException as exc:
        click.echo(f"tflat: error: {_one_line(exc.format_message())}", err=True)
        code = 1
    except KeyboardInterrupt:
        click.echo("tflat: interrupted", err=True)
        code = 130
    except BrokenPipeError:
        code = 0
    except Exception as exc:  # a bug in tflat: one line for the user, the traceback in the log
        logging.getLogger("tflat.cli").debug("internal error", exc_info=True)
        click.echo(
            f"tflat: internal error: {type(exc).__name__}: {_one_line(exc)} "
            "(run with -vv for the traceback; please report it)",
            err=True,
        )
        code = 3
    else:
        code = 0
    if argv is None:
        sys.exit(code)
    return code


def _one_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
