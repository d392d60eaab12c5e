"""Write a plan's single-op models to a folder, with a manifest, safely re-runnable.

Layout: ``<out>/<kind>/<spec_hash>.tflite`` plus ``manifest.jsonl`` (one row per model:
``file``, ``kind``, ``spec_hash``, ``params``, ``size_bytes``) and ``manifest.csv`` (the same
with one column per parameter). Each model is checked by reading it back before it is kept,
written through a temporary name and renamed, then its manifest row appended: an interrupted
run leaves no half-written model, and a re-run skips what is done.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tflat.errors import SpecError, TflatError
from tflat.model.spec import OpSpec

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
MANIFEST_CSV = "manifest.csv"


@dataclass(frozen=True)
class GenerateReport:
    """What a generation run did. ``failed`` holds (spec label, one-line reason)."""

    written: int
    skipped: int
    failed: tuple[tuple[str, str], ...]
    bytes_written: int
    out_dir: Path

    @property
    def total(self) -> int:
        return self.written + self.skipped + len(self.failed)


def model_path(spec: OpSpec) -> str:
    """Where a spec's model goes, relative to the output folder."""
    return f"{spec.kind.lower()}/{spec.spec_hash}.tflite"


def read_manifest(out_dir: Path) -> dict[str, dict[str, Any]]:
    """spec_hash -> manifest row; a torn last line (an interrupted run) is ignored."""
    path = out_dir / MANIFEST
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return rows
    # errors="replace": a garbled line is ignored below like a torn one, not a crash
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows[str(row["spec_hash"])] = row
        except (json.JSONDecodeError, KeyError, TypeError):
            log.warning("%s line %d: not a manifest row, ignored", path, n)
    return rows


def _end_torn_line(path: Path) -> None:
    """End a manifest whose last line an interrupted run left unfinished, so rows appended
    now start on a line of their own."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\n":
            fh.write(b"\n")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TflatError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _row(spec: OpSpec, rel: str, size: int) -> dict[str, Any]:
    return {
        "file": rel,
        "kind": spec.kind,
        "spec_hash": spec.spec_hash,
        "params": dict(spec.params),
        "size_bytes": size,
    }


def generate(
    specs: Iterable[OpSpec],
    out_dir: Path,
    *,
    progress: Callable[[OpSpec], None] | None = None,
) -> GenerateReport:
    """Write the model of each spec under ``out_dir``; see the module docstring.

    A spec that fails (cannot be built, or does not read back as itself) is reported in
    ``failed`` and the run goes on. ``progress`` is called after each spec.
    """
    from tflat.model.reader import read_model
    from tflat.model.spec import check_graph
    from tflat.model.writer import write_spec

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TflatError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    done = read_manifest(out_dir)
    _end_torn_line(out_dir / MANIFEST)
    written = skipped = nbytes = 0
    failed: list[tuple[str, str]] = []
    with (out_dir / MANIFEST).open("a", encoding="utf-8") as manifest:
        for spec in specs:
            rel = model_path(spec)
            path = out_dir / rel
            try:
                if path.exists():
                    if spec.spec_hash not in done:  # renamed, but the run stopped before its row
                        check_graph(read_model(path), spec)
                        row = _row(spec, rel, path.stat().st_size)
                        manifest.write(json.dumps(row, sort_keys=True) + "\n")
                        done[spec.spec_hash] = row
                    skipped += 1
                else:
                    data, _ = write_spec(spec)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    _write_atomic(path, data)
                    row = _row(spec, rel, len(data))
                    manifest.write(json.dumps(row, sort_keys=True) + "\n")
                    manifest.flush()
                    done[spec.spec_hash] = row
                    written += 1
                    nbytes += len(data)
            except SpecError as exc:
                log.warning("%s", exc)
                failed.append((spec.label, str(exc)))
            if progress is not None:
                progress(spec)
    write_manifest_csv(out_dir, done.values())
    return GenerateReport(written, skipped, tuple(failed), nbytes, out_dir)


def write_manifest_csv(out_dir: Path, rows: Iterable[dict[str, Any]]) -> None:
    """manifest.csv: file, kind, spec_hash, size_bytes and one column per parameter."""
    rows = list(rows)
    keys = sorted({k for r in rows for k in r.get("params", {})})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "kind", "spec_hash", "size_bytes", *keys])
    for r in rows:
        params = r.get("params", {})
        cells = [
            ";".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v)
            for v in (params.get(k) for k in keys)
        ]
        writer.writerow([r["file"], r["kind"], r["spec_hash"], r.get("size_bytes", ""), *cells])
    _write_atomic(out_dir / MANIFEST_CSV, buf.getvalue().encode("utf-8"))
