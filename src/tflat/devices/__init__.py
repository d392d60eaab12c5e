"""New devices from little: a phone from a few whole-model timings and its GPU's name
(transferred from the shipped phones), from its own few op-profiled models, or a calibrated
device sharpened by a few timings. ``add_device`` is the entry point of ``tflat device add``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["add_device"]


def __getattr__(name: str) -> Any:
    # Building a device pulls scipy and LightGBM: load the module only when asked for.
    if name == "add_device":
        from tflat.devices.add import add_device

        return add_device
    raise AttributeError(name)
