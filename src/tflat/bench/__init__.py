"""Benchmark runners: measure .tflite models on a device, one model at a time.

``get_runner`` turns a device id into a runner; runners load their heavy parts (LiteRT, adb)
only when they measure, so importing this package costs nothing.
"""

from __future__ import annotations

import re
from typing import Any

from tflat.bench.base import Runner
from tflat.errors import TflatError
from tflat.store.measurement import (
    DeviceInfo,
    Measurement,
    OpProfileRow,
    ReportedTimings,
    RunSettings,
    RuntimeInfo,
    Status,
)

__all__ = [
    "DeviceInfo",
    "Measurement",
    "OpProfileRow",
    "ReportedTimings",
    "RunSettings",
    "Runner",
    "RuntimeInfo",
    "Status",
    "get_runner",
]

_HOST = re.compile(r"host-cpu(?:-t(\d+))?")


def get_runner(device_id: str, **options: Any) -> Runner:
    """The runner for ``device_id``.

    * ``host-cpu`` (options ``threads=1``, ``seed=0``); ``host-cpu-tN`` means ``threads=N``.
    * ``android:<serial>`` (options ``benchmark_binary=PATH`` required, ``adb=PATH``,
      ``remote_dir``, ``executor`` for tests).

    Unknown ids raise :class:`~tflat.errors.TflatError` (bad input, exit 1); a device that
    cannot be used raises :class:`~tflat.errors.DeviceError` when first used (exit 2).
    """
    host = _HOST.fullmatch(device_id)
    if host is not None:
        from tflat.bench.local import LocalRunner

        threads = int(options.pop("threads", None) or host.group(1) or 1)
        if host.group(1) is not None and threads != int(host.group(1)):
            raise TflatError(f"device {device_id} contradicts threads={threads}")
        if threads < 1:
            raise TflatError(f"threads must be at least 1, got {threads}")
        return LocalRunner(threads=threads, **options)
    if device_id.startswith("android:"):
        serial = device_id.partition(":")[2]
        if not serial:
            raise TflatError("android device needs a serial: android:<serial> (see adb devices)")
        from tflat.bench.android import AndroidRunner

        return AndroidRunner(serial, **options)
    raise TflatError(
        f"unknown device {device_id!r}: runners exist for host-cpu, host-cpu-tN, android:<serial>"
    )
