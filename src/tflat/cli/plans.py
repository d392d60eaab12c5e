"""``tflat plan show`` and ``tflat generate``: what a sampling plan holds, and its single-op
benchmark models written to a folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

import tflat
from tflat.cli.common import emit, max_specs_option
from tflat.errors import SpecError

log = logging.getLogger(__name__)


@click.group("plan")
def plan_group() -> None:
    """Sampling plans: which op specs to benchmark (shipped names or TOML files)."""


@plan_group.command("show")
@click.argument("plan")
@click.option(
    "--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True
)
@click.option("--seed", type=int, default=None, help="Override the plan's seed.")
@max_specs_option
def show_cmd(plan: str, fmt: str, seed: int | None, max_specs: int | None) -> None:
    """How many specs PLAN has, by op kind, with each parameter's values."""
    loaded = tflat.load_plan(plan)
    summary = tflat.summarize_plan(loaded, loaded.expand(seed=seed, max_specs=max_specs))
    if fmt == "json":
        emit(json.dumps(summary, indent=2) + "\n", None)
        return
    emit(_table(summary), None)


def _table(summary: dict[str, Any]) -> Any:
    from rich.table import Table

    title = f"plan {summary['plan']}: {summary['count']} specs"
    if summary["invalid"]:
        title += f", {summary['invalid']} invalid"
    table = Table(title=title, caption=summary["description"] or None)
    table.add_column("kind")
    table.add_column("specs", justify="right")
    table.add_column("parameters")
    for kind, info in summary["kinds"].items():
        parts = []
        for key, values in info["params"].items():
            if isinstance(values, dict):
                parts.append(f"{key} {values['min']}..{values['max']} ({values['distinct']})")
            else:
                parts.append(f"{key} {','.join(map(str, values))}")
        table.add_row(kind, str(info["count"]), "; ".join(parts))
    # say why specs are invalid, or a plan with a typo shows just an empty table
    examples = summary.get("invalid_examples", [])
    for reason in examples:
        table.add_row("invalid", "", reason, style="red")
    if summary["invalid"] > len(examples):
        table.add_row("invalid", str(summary["invalid"] - len(examples)), "more like these")
    return table


@click.command("generate")
@click.argument("plan")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for the models and manifest.jsonl / manifest.csv.",
)
@click.option(
    "--sample", type=click.IntRange(1), default=None, help="Only a random sample of N specs."
)
@click.option("--seed", type=int, default=None, help="Override the plan's seed.")
@max_specs_option
def generate_cmd(
    plan: str, out_dir: Path, sample: int | None, seed: int | None, max_specs: int | None
) -> None:
    """Write one single-op .tflite model per spec of PLAN into --out (re-runs skip what exists)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    loaded = tflat.load_plan(plan)
    expanded = loaded.expand(seed=seed, sample=sample, max_specs=max_specs)
    err = Console(stderr=True)
    for bad in expanded.invalid:
        log.info("invalid in plan: %s", bad.reason)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # a pipe or log file gets the summary line only
    ) as bar:
        task = bar.add_task(f"generate {loaded.name}", total=len(expanded.specs))
        report = tflat.generate(expanded.specs, out_dir, progress=lambda _spec: bar.advance(task))
    for _label, reason in report.failed:
        log.info("failed: %s", reason)
    click.echo(
        f"{report.written} written, {report.skipped} already there, {len(report.failed)} failed, "
        f"{len(expanded.invalid)} invalid in plan; {report.bytes_written} bytes written to "
        f"{report.out_dir}"
    )
    problems = len(report.failed) + len(expanded.invalid)
    if problems:
        first = report.failed[0][1] if report.failed else expanded.invalid[0].reason
        raise SpecError(
            f"{problems} spec(s) could not be generated (-v lists them all); first: {first}"
        )
