"""Installing a device bundle: predictors a user added with ``tflat device add``.

They live as ``<id>.json`` in one folder (:func:`tflat.pricing.predictors.installed_dir`:
``TFLAT_DEVICES_DIR`` when set, else ``devices`` in the user data folder), where
:func:`tflat.load_predictor` finds them, so ``-d ID`` works from then on. A bundle is
written whole through a temporary name; an id must be a plain file name.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

from tflat.errors import TflatError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_id(device: str) -> str:
    """A device id usable as a file name: letters, digits, '.', '_', '-' (not ':' or '/')."""
    if not _ID.match(device) or device.endswith(".json"):
        raise TflatError(
            f"device id {device!r}: use letters, digits, '.', '_' or '-' (at most 64 "
            "characters), e.g. pixel7"
        )
    return device


def write_bundle_file(path: Path, bundle: dict[str, Any]) -> Path:
    """Write ``bundle`` to ``path`` through ``path.part`` (never half a file)."""
    from tflat.predict.bundles import bundle_json

    tmp = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(bundle_json(bundle) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise TflatError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def install_bundle(device: str, bundle: dict[str, Any]) -> Path:
    """Install ``bundle`` as the predictor of ``device``; returns its path."""
    from tflat.pricing.predictors import installed_dir

    check_id(device)
    return write_bundle_file(installed_dir() / f"{device}.json", bundle)
