"""The ``host-cpu`` runner: this machine's CPU through LiteRT (XNNPACK), one model at a time.

Why a worker child process: a model can segfault or hang inside LiteRT, and a campaign measures
thousands of models, so each is run in a child process with a timeout; a crash or a hang becomes a
failed or timed-out :class:`Measurement` and the child is replaced. Importing LiteRT costs about
0.3 s, so the child is persistent (:mod:`tflat.bench.worker`): it speaks JSON lines over pipes
and measures models one by one. This module is the parent's side: starting, feeding and
replacing the child.

The worker's protocol channel is a private copy of its stdout; its file descriptor 1 is pointed at
stderr, so whatever LiteRT's C++ code prints can never corrupt the protocol.

LiteRT's Python API has no per-op profiler (``Interpreter`` offers ``_get_ops_details`` and
``experimental_force_delegate_node_profiling``, but no way to install or read a profiler), so
host-cpu measures whole models only and ``profile=True`` returns no ``op_profile`` rows.

Every measurement carries a speed reference (``Measurement.reference_ms``): the worker keeps a
small fixed model loaded, waits (bounded) for the machine's fast regime before a model's timed
runs, times the reference right before and right after them, and retries a model whose
reference says the regime flipped meanwhile. Why and with what figures: :mod:`tflat.bench.speed`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from tflat.bench.base import DeviceInfo, Measurement, Runner, RunSettings, RuntimeInfo
from tflat.bench.speed import BACKOFF_MODELS
from tflat.bench.worker import litert_version
from tflat.errors import DeviceError

log = logging.getLogger(__name__)

#: Time the worker may take to start (import LiteRT) before the runner gives up.
STARTUP_TIMEOUT_S = 60.0
#: A fresh worker after this many models bounds what a leak in LiteRT can cost.
MODELS_PER_WORKER = 400
#: Reference readings kept for the fast-regime reference (about the last 1000 models).
_READINGS_KEPT = 2000
_STDERR_TAIL_BYTES = 1500


def host_device_id(threads: int) -> str:
    """``host-cpu`` for one thread, ``host-cpu-tN`` for N threads: each is its own device."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return "host-cpu" if threads == 1 else f"host-cpu-t{threads}"


class LocalRunner(Runner):
    """Measures .tflite models on this machine's CPU with LiteRT in a persistent child process.

    ``threads`` picks the device variant (``host-cpu`` or ``host-cpu-tN``); ``seed`` fixes the
    random input data. Figures: every timed ``invoke()`` in ``samples_ms``; the campaign uses the
    minimum as the robust statistic on this noisy, shared machine.
    """

    def __init__(
        self,
        threads: int = 1,
        *,
        seed: int = 0,
        reference: bool = True,
        wait_fast_s: float | None = None,
    ) -> None:
        from tflat.bench.speed import WAIT_FAST_S

        self.threads = threads
        self.device_id = host_device_id(threads)
        self.seed = seed
        self.reference = reference
        #: how long to wait for the fast regime before a model (0: never wait, only read)
        self.wait_fast_s = WAIT_FAST_S if wait_fast_s is None else wait_fast_s
        self._worker: _Worker | None = None
        self._litert_version: str | None = None
        self._reference_path: Path | None = None
        #: recent reference readings (ms), for the fast-regime reference the worker gates on
        self._readings: deque[float] = deque(maxlen=_READINGS_KEPT)
        self._skip_gate = 0  # models to measure without waiting (see _note_gate)
        self._backoff = BACKOFF_MODELS  # the next such pause, doubled when a wait fails

    @property
    def fast_reference_ms(self) -> float | None:
        """The reference's fast-regime time (ms) from the readings seen so far (None before)."""
        from tflat.bench.speed import fast_reference

        return fast_reference(self._readings)

    def add_reference_readings(self, readings: Iterable[float | None]) -> None:
        """Seed the fast-regime reference, e.g. with readings stored by an earlier run."""
        self._readings.extend(float(v) for v in readings if v is not None and v > 0)

    # -- facts ---------------------------------------------------------------------------------

    def device_info(self) -> DeviceInfo:
        cpu = _cpuinfo()
        return DeviceInfo(
            device_id=self.device_id,
            vendor=cpu.get("vendor_id", ""),
            model=cpu.get("model name", "") or platform.processor(),
            soc=cpu.get("model name", "") or platform.machine(),
            gpu="",
            os=platform.platform(),
            driver="",
            extra={
                "cores": str(os.cpu_count() or 0),
                "arch": platform.machine(),
                "threads": str(self.threads),
                "python": platform.python_version(),
            },
        )

    def runtime_info(self) -> RuntimeInfo:
        return RuntimeInfo(runtime="ai-edge-litert", version=litert_version())

    def default_settings(self, **overrides: Any) -> RunSettings:
        """Settings that match this runner (XNNPACK, fp32, the runner's thread count)."""
        values: dict[str, Any] = {"delegate": "xnnpack", "threads": self.threads}
        values.update(overrides)
        return RunSettings(**values)

    # -- measuring -----------------------------------------------------------------------------

    def measure(self, model: Path, settings: RunSettings, *, profile: bool = False) -> Measurement:
        model = Path(model)
        refusal = self._refuse(model, settings)
        if refusal is not None:
            return refusal
        if settings.threads != self.threads:
            log.warning(
                "%s measures with settings.threads=%d (runner made for %d threads)",
                self.device_id,
                settings.threads,
                self.threads,
            )
        request = {
            "model": str(model.resolve()),
            "threads": settings.threads,
            "delegate": settings.delegate,
            "warmup": settings.warmup,
            "repeats": settings.repeats,
            "seed": self.seed,
            **self._reference_request(),
        }
        worker = self._ensure_worker()
        try:
            reply = worker.request(request, timeout_s=settings.timeout_s)
        except _WorkerTimeout:
            tail = worker.kill()
            self._worker = None
            log.warning("%s: timed out after %.1f s; worker restarted", model, settings.timeout_s)
            return Measurement(
                status="timeout",
                warmup=settings.warmup,
                error=_one_line(f"no result after {settings.timeout_s:g} s", tail),
            )
        except _WorkerDied as exc:
            self._worker = None
            log.warning("%s: worker died (%s); restarted", model, exc)
            return Measurement(status="failed", warmup=settings.warmup, error=str(exc))
        if worker.served >= MODELS_PER_WORKER:
            worker.stop()
            self._worker = None
        self.add_reference_readings(float(v) for v in reply.get("reference_readings", ()))
        self._note_gate(reply)
        return _measurement(reply, settings)

    def _note_gate(self, reply: dict[str, Any]) -> None:
        """Stop waiting for the fast regime for a while after a model that never got it.

        Why: on a loaded machine a slow stretch can last tens of seconds; waiting and retrying
        every model through it would cost seconds per model for nothing. The reference is
        still read around every model, so normalising and re-measuring later still work.
        """
        from tflat.bench import speed

        if self._skip_gate > 0:
            self._skip_gate -= 1
        elif reply.get("disturbed"):
            # each failed wait doubles the next pause: a machine that stays slow soon costs
            # nothing more than the readings themselves
            self._skip_gate = self._backoff
            self._backoff = min(2 * self._backoff, speed.BACKOFF_MAX_MODELS)
        elif "disturbed" in reply:
            self._backoff = speed.BACKOFF_MODELS

    def _reference_request(self) -> dict[str, Any]:
        """The speed-reference part of a request (nothing when the reference is off)."""
        if not self.reference:
            return {}
        from tflat.bench import speed

        if self._reference_path is None:
            self._reference_path = speed.reference_model()
        gate = self._skip_gate == 0
        return {
            "reference": str(self._reference_path),
            "reference_runs": speed.REFERENCE_RUNS,
            "fast_ms": self.fast_reference_ms,
            "fast_cut": speed.FAST_CUT,
            "wait_s": self.wait_fast_s if gate else 0.0,
            "attempts": speed.MAX_ATTEMPTS if gate else 1,
            "min_cpu_share": speed.MIN_CPU_SHARE,
        }

    def _refuse(self, model: Path, settings: RunSettings) -> Measurement | None:
        if settings.delegate == "gpu":
            return Measurement(
                status="unsupported", error="host-cpu has no GPU delegate; use xnnpack or cpu"
            )
        if settings.precision != "fp32":
            return Measurement(
                status="unsupported",
                error=f"host-cpu runs fp32 only (asked {settings.precision})",
            )
        if not model.is_file():
            return Measurement(status="failed", error=f"{model}: no such file")
        return None

    def _ensure_worker(self) -> _Worker:
        if self._worker is None or not self._worker.alive():
            self._worker = _Worker.start()
            self._litert_version = self._worker.litert_version
        return self._worker

    def close(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def __del__(self) -> None:  # a forgotten close() must not leave a child behind
        worker = getattr(self, "_worker", None)
        if worker is not None:
            worker.kill()


def _measurement(reply: dict[str, Any], settings: RunSettings) -> Measurement:
    status = reply.get("status")
    if status == "ok":
        ref = reply.get("reference_ms")
        share = reply.get("cpu_share")
        return Measurement(
            status="ok",
            samples_ms=tuple(float(v) for v in reply["samples_ms"]),
            warmup=settings.warmup,
            init_ms=float(reply["init_ms"]),
            reference_ms=float(ref) if ref is not None else None,
            cpu_share=float(share) if share is not None else None,
        )
    return Measurement(
        status="failed",
        warmup=settings.warmup,
        error=str(reply.get("error") or "worker gave no reason"),
        init_ms=reply.get("init_ms"),
    )


def _one_line(head: str, tail: str) -> str:
    last = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    return f"{head}: {last[-1]}" if last else head


# -- the parent's side of the worker ---------------------------------------------------------


class _WorkerTimeout(Exception):
    pass


class _WorkerDied(Exception):
    pass


class _Worker:
    """A child process running :func:`_worker_main`, and the line reader that talks to it."""

    def __init__(self, proc: subprocess.Popen[bytes], stderr: IO[bytes]) -> None:
        self.proc = proc
        self.stderr = stderr
        self.served = 0
        self.litert_version = ""
        self._buf = b""

    @classmethod
    def start(cls) -> _Worker:
        # Owned by the worker, closed with it; a file (not a pipe) so a chatty child never blocks.
        stderr = tempfile.TemporaryFile(mode="a+b")  # noqa: SIM115
        cmd = [sys.executable, "-m", "tflat.bench.worker", "--worker"]
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, close_fds=True
            )
        except OSError as exc:
            stderr.close()
            raise DeviceError(f"cannot start the LiteRT worker: {exc}") from exc
        worker = cls(proc, stderr)
        try:
            hello = worker._read_reply(STARTUP_TIMEOUT_S)
        except (_WorkerTimeout, _WorkerDied) as exc:
            tail = worker.kill()
            raise DeviceError(_one_line(f"the LiteRT worker did not start ({exc})", tail)) from exc
        if not hello.get("ready"):
            worker.kill()
            raise DeviceError(f"the LiteRT worker cannot run: {hello.get('error', hello)}")
        worker.litert_version = str(hello.get("litert_version", ""))
        log.debug("LiteRT worker %d ready (LiteRT %s)", proc.pid, worker.litert_version)
        return worker

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, payload: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self._truncate_stderr()
        try:
            self.proc.stdin.write(json.dumps(payload).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise _WorkerDied(self._death_note()) from exc
        reply = self._read_reply(timeout_s)
        self.served += 1
        return reply

    def _read_reply(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _WorkerTimeout(f"no reply in {timeout_s:g} s")
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise _WorkerDied(self._death_note())
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _WorkerDied(f"worker sent garbage: {line[:120]!r}") from exc
        if not isinstance(reply, dict):
            raise _WorkerDied(f"worker sent garbage: {line[:120]!r}")
        return reply

    def _death_note(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        tail = self._stderr_tail()
        self.stderr.close()
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            head = f"LiteRT worker crashed ({name})"
        else:
            head = f"LiteRT worker exited with code {code}"
        return _one_line(head, tail)

    def _stderr_tail(self) -> str:
        try:
            self.stderr.seek(0, os.SEEK_END)
            size = self.stderr.tell()
            self.stderr.seek(max(0, size - _STDERR_TAIL_BYTES))
            return self.stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _truncate_stderr(self) -> None:
        # LiteRT logs a line per interpreter; keep only what the current model printed.
        with contextlib.suppress(OSError, ValueError):
            self.stderr.truncate(0)

    def stop(self) -> None:
        """Ask the worker to finish (close its stdin), kill it if it does not."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_pipes()

    def kill(self) -> str:
        """Kill the worker now; returns the end of what it wrote to stderr."""
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.error("LiteRT worker %d survived SIGKILL", self.proc.pid)
        tail = self._stderr_tail()
        self._close_pipes()
        return tail

    def _close_pipes(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
            if stream is not None and not stream.closed:
                with contextlib.suppress(OSError):
                    stream.close()


# -- facts -----------------------------------------------------------------------------------


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    facts: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return facts
    for line in text.splitlines():
        if not line.strip():
            if facts.get("model name"):
                break
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip() not in facts:
            facts[key.strip()] = value.strip()
    return facts
