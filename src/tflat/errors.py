"""The errors tflat raises, on the ground floor: every room imports them, they import no room.

Every error a user can cause or meet carries a one-line message and the exit code the CLI
returns for it: 1 for bad input (a bad file, an unknown device, an invalid spec), 2 for a device
or database that failed. Library code raises these; only the CLI turns them into exit codes.
"""

from __future__ import annotations

from pathlib import Path


class TflatError(Exception):
    """Base of all tflat errors. ``str(err)`` is one line meant for the user."""

    exit_code = 1


class ModelFormatError(TflatError):
    """A file that is not a readable .tflite model (missing, empty, truncated, not TFLite)."""


class SpecError(TflatError):
    """An op spec or sampling plan that cannot describe a valid model."""


class PredictorError(TflatError):
    """No predictor for a device, or a predictor bundle that cannot be loaded."""


class DeviceError(TflatError):
    """A device that cannot be reached or used: no phone, no adb, a runner that failed."""

    exit_code = 2


class StoreError(TflatError):
    """The measurement database failed: cannot connect, migrate, read or write."""

    exit_code = 2


def read_text(path: Path, what: str, error: type[TflatError] = TflatError) -> str:
    """The UTF-8 text of a file the user named; a file that cannot be read, or is not UTF-8
    text, raises ``error`` with one line naming it and ``what`` it should be ("a manifest")."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not {what} (not UTF-8 text)") from exc
