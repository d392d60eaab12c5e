"""``tflat device add``: a predictor for a new phone from a few timings, or a sharper one for a
calibrated device."""

from __future__ import annotations

import math
from pathlib import Path

import click

import tflat
from tflat.cli.common import training_errors
from tflat.errors import TflatError


@click.group("device")
def device_group() -> None:
    """Add a device tflat has not measured (see 'tflat device add --help')."""


@device_group.command("add")
@click.argument("device_id", metavar="ID")
@click.option("--gpu", help="The phone's GPU, e.g. 'Mali-G710 MP7' or 'Adreno 740'.")
@click.option(
    "--timings",
    type=click.Path(path_type=Path, dir_okay=False),
    help="CSV with columns model,ms: a .tflite path (or a model of --usc DIR) and its "
    "measured whole-model GPU latency on the phone.",
)
@click.option(
    "--usc",
    type=click.Path(path_type=Path, file_okay=False),
    help="USC-layout data folder: model names for --timings and more kernels to learn "
    "from; without --timings, the phone's own rows.",
)
@click.option("--db", "db_url", help="Database with the phone's own rows (without --timings).")
@click.option(
    "--from-devices",
    help="Comma-separated source devices (default: every shipped phone but ID).",
)
@click.option(
    "--cpu-timings",
    type=click.Path(path_type=Path, dir_okay=False),
    help="CSV with columns model,ms: a .tflite path and its whole-model latency on the "
    "phone's CPU; sets the level of the CPU rates borrowed from the sources (with --timings).",
)
@click.option("--name", help="Display name of the device (default: ID).")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the bundle here instead of installing it.",
)
def add_cmd(
    device_id: str,
    gpu: str | None,
    timings: Path | None,
    usc: Path | None,
    db_url: str | None,
    from_devices: str | None,
    name: str | None,
    cpu_timings: Path | None,
    output: Path | None,
) -> None:
    """Build the predictor of a phone from a few whole-model timings (and its GPU's name),
    from its own few op-profiled models (--usc/--db, no --timings), or sharpen a calibrated
    host-cpu / android:SERIAL device with --timings. Installs it so that '-d ID' works."""
    if usc is not None and db_url is not None:
        raise TflatError("--usc and --db exclude each other")
    sources = [d.strip() for d in from_devices.split(",") if d.strip()] if from_devices else None
    if from_devices is not None and not sources:
        raise TflatError("--from-devices: no device ids")
    result = tflat.add_device(device_id, gpu=gpu, timings=timings, usc=usc, db_url=db_url,
                        from_devices=sources, name=name, cpu_timings=cpu_timings)  # fmt: skip
    for line in _summary(result):
        click.echo(line)
    if output is not None:
        tflat.write_bundle_file(output, result.bundle)
        click.echo(f"written to {output} (use it with -d {output})")
    elif result.mode == "sharpen":
        tflat.save_sharpened(device_id, result.bundle, db_url)
        click.echo(f"saved in the database: -d {device_id} uses it from now on")
    else:
        path = tflat.install_device(device_id, result.bundle)
        click.echo(f"installed {path}: -d {device_id} uses it from now on")


def _summary(result: tflat.AddResult) -> list[str]:
    b = result.bundle
    lo, hi = b.get("whole_model", {}).get("log_interval", [0.0, 0.0])
    lines = []
    if result.mode == "timings":
        t = b["provenance"]["transfer"]
        lines.append(
            f"{result.device}: transferred from {result.timings} timings, sources "
            f"{', '.join(t['sources'])}; leave-one-timing-out MAPE {t['loo_mape_pct']:.1f} %; "
            f"80 % interval of a total {math.exp(lo) - 1:+.0%} / {math.exp(hi) - 1:+.0%}"
        )
        lines.extend(result.notes)
    elif result.mode == "profiled":
        lines.append(
            f"{result.device}: trained on its own kernel rows of {result.timings} models; "
            f"{training_errors(b)}"
        )
    else:
        s = b["provenance"]["sharpened"]
        lines.append(
            f"{result.device}: sharpened with {result.timings} timings: {result.notes[0]}; "
            f"leave-one-timing-out MAPE {s['loo_mape_pct']:.1f} %"
        )
    if result.fitted:
        lines.append(f"{'model':<40}{'measured ms':>13}{'fitted ms':>11}{'error':>9}")
        for model, measured, fitted in result.fitted:
            label = model if len(model) <= 38 else "…" + model[-37:]
            lines.append(
                f"{label:<40}{measured:>13.2f}{fitted:>11.2f}{fitted / measured - 1:>+9.1%}"
            )
    return lines
