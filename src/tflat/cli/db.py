"""``tflat db``: what the measurement database holds, and moving measurements in and out."""

from __future__ import annotations

import json
from pathlib import Path

import click

import tflat
from tflat.cli.common import db_option, emit, output_option
from tflat.errors import TflatError


@click.group("db")
def db_group() -> None:
    """The measurement database: stats, import, export."""


@db_group.command("stats")
@db_option()
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def stats_cmd(db_url: str | None, fmt: str) -> None:
    """Row counts of every table and per device."""
    # an explicit --db must name an existing database: a typo should not create an empty one
    with tflat.open_store(db_url, create=db_url is None) as store:
        stats = store.stats()
    if fmt == "json":
        emit(json.dumps(stats.to_dict(), indent=2, sort_keys=True) + "\n", None)
        return
    from rich.table import Table

    tables = Table(title=f"{stats.url} (schema {stats.revision})")
    tables.add_column("table")
    tables.add_column("rows", justify="right")
    for name, count in stats.tables.items():
        tables.add_row(name, str(count))
    emit(tables, None)
    if stats.devices:
        per = Table(title="per device")
        for col in ("device", "single-op ok", "single-op failed", "model runs", "op profile rows"):
            per.add_column(col, justify="left" if col == "device" else "right")
        for d in stats.devices:
            per.add_row(
                d.device_id,
                str(d.measurements_ok),
                str(d.measurements_failed),
                str(d.model_measurements),
                str(d.op_profile_rows),
            )
        emit(per, None)


@db_group.command("export")
@db_option()
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True
)
@click.option(
    "--table",
    type=click.Choice(["measurements", "model_measurements"]),
    default="measurements",
    show_default=True,
    help="Single-op measurements, or whole-model measurements.",
)
@output_option("Write to FILE (required for parquet).")
def export_cmd(db_url: str | None, fmt: str, table: str, output: Path | None) -> None:
    """Export measurements as tflat CSV (re-importable) or Parquet."""
    with tflat.open_store(db_url, create=db_url is None) as store:
        if fmt == "csv":
            emit(tflat.export_measurements_csv(store, table), output)
            return
        if output is None:
            raise TflatError("parquet export needs -o FILE")
        rows = tflat.export_measurements_parquet(store, output, table)
    click.echo(f"wrote {rows} rows to {output}", err=True)


@db_group.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@db_option()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tflat", "usc"]),
    default="tflat",
    show_default=True,
    help="tflat: a CSV from 'tflat db export'; usc: the mobile-ml-benchmark folder.",
)
def import_cmd(path: Path, db_url: str | None, fmt: str) -> None:
    """Import measurements from PATH into the database (rows already there are kept)."""
    if not path.exists():
        raise TflatError(f"{path}: no such file or folder")
    with tflat.open_store(db_url) as store:
        if fmt == "usc":
            if not path.is_dir():
                raise TflatError(
                    f"{path}: --format usc needs the folder with the two USC CSV files"
                )
            r = tflat.import_usc(store, path)
            click.echo(
                f"imported {r.models} models, {r.model_measurements} whole-model measurements, "
                f"{r.op_profile_rows} per-op rows (ms; op lists partial); "
                f"{r.skipped_existing} measurements were stored already"
            )
            return
        written, existing = tflat.import_measurements_csv(store, path)
        click.echo(f"imported {written} measurements; {existing} were stored already")
