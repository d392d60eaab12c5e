#!/usr/bin/env python3
"""Ship pixel7 and galaxy-s23: predictors transferred from the MobileNetV4 paper's Table 6.

The paper (arXiv 2404.10518, Table 6) times ImageNet classifiers on the GPUs of the Pixel 7
(Google Tensor G2, Mali-G710 MP7) and the Galaxy S23 (Snapdragon 8 Gen 2, Adreno 740). Seven
of them are ``keras.applications`` models; this script writes them with tflat's own writer
(:mod:`tflat.devices.keras_apps`, op for op like a Keras export), writes each phone's
``model,ms`` timings CSV next to them, and runs the same transfer as ``tflat device add``
(sources: the six USC phones; the USC data adds kernels to distil on). The table's CPU rows
(the Galaxy S23's own; for the Pixel 7 the Pixel 6's, :data:`CPU_ROWS`) go in as
``--cpu-timings``: they set the level of the CPU rates the phone borrows from the sources.
The bundles keep the timings, the CSV text and the published source in their provenance.

    python scripts/build_table6.py [--published CSV] [--usc DIR] [--out DIR]

Defaults: the USC data of ``TFLAT_USC_DIR`` (else the copy shipped in the package),
``published/published_tables.csv`` beside that folder (else in ``../shared/data`` next to the
repository), and the shipped bundle folder ``src/tflat/data/devices``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

#: tflat id -> (the paper's device name, the GPU's name, display name, SoC)
PHONES = {
    "pixel7": ("Pixel 7", "Mali-G710 MP7", "Google Pixel 7", "Google Tensor G2"),
    "galaxy-s23": ("Samsung S23", "Adreno 740", "Samsung Galaxy S23", "Snapdragon 8 Gen 2"),
}
#: tflat id -> (the paper's device whose CPU rows set the phone's CPU level, why that one).
#: The table times the Pixel 7 on its GPU only; its CPU rows are the Pixel 6's, whose Tensor
#: (G1) has the same two big cores as the Pixel 7's Tensor G2 (Cortex-X1), the closest
#: CPU measured. Without them the CPU rates borrowed from the USC phones (one big core of
#: 2018-2019 phones) put the Pixel 6's ConvNeXt-S CPU figure below the 80 % interval.
CPU_ROWS = {
    "pixel7": ("Pixel 6", "stand-in: the Pixel 6 (Tensor G1, the same Cortex-X1 big cores)"),
    "galaxy-s23": ("Samsung S23", "the phone's own CPU rows"),
}
SOURCE_ID = "mnv4"


def default_published() -> Path:
    """The published-tables CSV beside the USC data named by ``TFLAT_USC_DIR``, else in the
    shared data folder next to the repository."""
    env = os.environ.get("TFLAT_USC_DIR")
    base = Path(env).parent if env else REPO.parent / "shared" / "data"
    return base / "published" / "published_tables.csv"


def published_timings(path: Path, device: str, processor: str = "GPU") -> dict[str, dict[str, str]]:
    """The Table 6 rows of ``device`` on ``processor`` for the models tflat can build, by paper
    name (GPU: every one of them, or exit; CPU: those the table has)."""
    from tflat.devices.keras_apps import TABLE6_MODELS

    with path.open(newline="", encoding="utf-8") as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if r["source_id"] == SOURCE_ID
            and r["processor"] == processor
            and r["device"] == device
            and r["model"] in TABLE6_MODELS
        ]
    found = {r["model"]: r for r in rows}
    missing = sorted(set(TABLE6_MODELS) - set(found))
    if missing and processor == "GPU":
        raise SystemExit(f"{path}: no {device} GPU row for {', '.join(missing)}")
    return found


def model_file(paper_name: str) -> str:
    from tflat.devices.keras_apps import TABLE6_MODELS

    arch, width = TABLE6_MODELS[paper_name]
    return f"{arch}_{width:g}.tflite"


def build_models(folder: Path) -> None:
    from tflat.devices.keras_apps import TABLE6_MODELS, build_keras_app

    for name, (arch, width) in TABLE6_MODELS.items():
        path = folder / model_file(name)
        if not path.is_file():
            path.write_bytes(build_keras_app(arch, width))
            print(f"built {path.name} ({name})", flush=True)


def write_timings(
    folder: Path, phone: str, rows: dict[str, dict[str, str]], suffix: str = "timings"
) -> Path:
    path = folder / f"{phone}.{suffix}.csv"
    lines = ["model,ms"] + [f"{model_file(n)},{float(r['latency_ms']):g}" for n, r in rows.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_phone(phone: str, folder: Path, published: Path, usc: Path) -> dict[str, Any]:
    from tflat.devices import add_device

    paper_device, gpu, display, soc = PHONES[phone]
    rows = published_timings(published, paper_device)
    csv_path = write_timings(folder, phone, rows)
    # the table's CPU rows (the phone's own, or a stand-in's: CPU_ROWS) set the level of the
    # CPU rates the phone borrows from the sources
    cpu_device, cpu_why = CPU_ROWS[phone]
    cpu_rows = published_timings(published, cpu_device, "CPU")
    cpu_path = write_timings(folder, phone, cpu_rows, "cpu_timings") if cpu_rows else None
    result = add_device(phone, gpu=gpu, timings=csv_path, usc=usc, name=display,
                        cpu_timings=cpu_path)  # fmt: skip
    bundle = result.bundle
    bundle["device"]["soc"] = soc
    first = next(iter(rows.values()))
    bundle["provenance"]["published"] = {
        "source": first["source_title"],
        "url": first["source_url"],
        "location": first["source_location"],
        "device": paper_device,
        "precision": first["precision"],
        "runtime": first["runtime"],
        "data_file": "shared/data/published/published_tables.csv",
        "models": {model_file(n): n for n in rows},
    }
    bundle["provenance"]["timings_csv"] = csv_path.read_text(encoding="utf-8")
    if cpu_path is not None:
        bundle["provenance"]["cpu_timings_csv"] = cpu_path.read_text(encoding="utf-8")
        bundle["provenance"]["published"]["cpu_rows"] = {
            "device": cpu_device,
            "why": cpu_why,
            "models": {model_file(n): n for n in cpu_rows},
        }
        cpu = bundle["pricing"]["cpu"]["provenance"]["cpu_timings"]
        print(
            f"{phone}: CPU level from {len(cpu_rows)} {cpu_device} CPU rows "
            f"x{cpu['level']:.3f}, "
            f"leave-one-timing-out MAPE {cpu['loo_mape_pct']:.1f} %"
        )
    bundle["provenance"]["models_built_by"] = "tflat.devices.keras_apps (scripts/build_table6.py)"
    t = bundle["provenance"]["transfer"]
    for note in result.notes:
        print(note)
    print(
        f"{phone}: {len(rows)} timings, {result.timings} fitted, leave-one-timing-out MAPE "
        f"{t['loo_mape_pct']:.1f} %"
    )
    return bundle


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from tflat.datasets.usc import default_folder

    usc = default_folder()
    ap.add_argument(
        "--published", type=Path, default=usc.parent / "published" / "published_tables.csv"
    )
    ap.add_argument("--usc", type=Path, default=usc)
    ap.add_argument("--out", type=Path, default=REPO / "src" / "tflat" / "data" / "devices")
    ap.add_argument("--models", type=Path, default=None, help="keep the built .tflite here")
    ap.add_argument("--phones", default=",".join(PHONES))
    args = ap.parse_args()
    from tflat.devices.install import write_bundle_file

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.models or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        build_models(folder)
        for phone in args.phones.split(","):
            bundle = build_phone(phone, folder, args.published, args.usc)
            out = write_bundle_file(args.out / f"{phone}.json", bundle)
            print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
