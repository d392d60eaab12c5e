"""The contract every benchmark runner keeps.

A runner measures one .tflite model at a time on one device and returns a
:class:`Measurement` (the records live in :mod:`tflat.store.measurement`, below the runners,
because the store keeps them); it never writes to the database (the campaign in
:mod:`tflat.bench.campaign` does). Units: milliseconds everywhere.

Contract of :class:`Runner`:

* ``measure`` never raises for a model that fails, crashes or hangs on the device: it returns a
  ``Measurement`` with ``status`` other than ``"ok"`` and the error text. It raises
  :class:`~tflat.errors.DeviceError` only when the device itself cannot be used (no phone, no
  adb, no benchmark binary), which stops a campaign.
* ``samples_ms`` holds every timed repetition, in order, warm-up runs excluded. A tool that
  prints only aggregates (``benchmark_model``) leaves it empty and fills ``reported``.
* Runners are not thread-safe; use one per thread.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from tflat.store.measurement import DeviceInfo, Measurement, RunSettings, RuntimeInfo


class Runner(ABC):
    """Measures .tflite models on one device. See the module docstring for the contract."""

    device_id: str

    @abstractmethod
    def device_info(self) -> DeviceInfo: ...

    @abstractmethod
    def runtime_info(self) -> RuntimeInfo: ...

    @abstractmethod
    def measure(
        self, model: Path, settings: RunSettings, *, profile: bool = False
    ) -> Measurement: ...

    def close(self) -> None:  # noqa: B027 - optional hook, most runners hold nothing
        """Release what the runner holds (files pushed to a phone, child processes)."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
