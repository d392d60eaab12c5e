"""The ``android:<serial>`` runner: a real phone over the real ``adb`` client.

The user brings a ``benchmark_model`` binary built for the phone (TFLite's or LiteRT's); tflat
pushes it and each model to ``/data/local/tmp/tflat/``, runs it with the GPU delegate or on CPU,
and parses what it prints (:mod:`tflat.bench.parse`). Every adb call is an argument list with a
timeout, through one injectable executor (tests replay recorded output through it, or put a
fake ``adb`` executable first on PATH).

Why every shell word is quoted: ``adb shell a b c`` does not pass an argument list to the phone,
it joins the words with spaces and hands the line to the phone's ``sh``. A model named
``a;touch X;b.tflite`` would run ``touch X`` there. So each word goes through ``shlex.quote``,
and models are pushed under names tflat chooses (their content hash), never their own.

``benchmark_model`` prints aggregates, not every run: measurements carry them in
``Measurement.reported`` and leave ``samples_ms`` empty.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tflat.bench.base import DeviceInfo, Measurement, Runner, RunSettings, RuntimeInfo
from tflat.bench.parse import parse_benchmark_output
from tflat.errors import DeviceError

log = logging.getLogger(__name__)

REMOTE_DIR = "/data/local/tmp/tflat"
_ADB_TIMEOUT_S = 30.0
_PUSH_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


#: Runs one command (argument list) with a timeout in seconds; raises TimeoutError on timeout.
Executor = Callable[[Sequence[str], float], CommandResult]


def run_command(args: Sequence[str], timeout_s: float) -> CommandResult:
    """The real executor: ``subprocess.run`` without a shell."""
    try:
        done = subprocess.run(
            list(args), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise TimeoutError(f"{' '.join(args[:4])} ... took more than {timeout_s:g} s") from exc
    except FileNotFoundError as exc:
        raise DeviceError(f"{args[0]} not found; install the Debian package adb") from exc
    return CommandResult(done.returncode, done.stdout or "", done.stderr or "")


class AndroidRunner(Runner):
    """Measures models on one phone with the user's ``benchmark_model`` binary."""

    def __init__(
        self,
        serial: str,
        *,
        benchmark_binary: str | Path | None = None,
        adb: str | None = None,
        remote_dir: str = REMOTE_DIR,
        executor: Executor | None = None,
    ) -> None:
        self.serial = serial
        self.device_id = f"android:{serial}"
        self.benchmark_binary = Path(benchmark_binary) if benchmark_binary else None
        self.remote_dir = PurePosixPath(remote_dir)
        self._adb = adb
        self._run = executor or run_command
        self._ready = False
        self._pushed: set[str] = set()

    # -- adb -----------------------------------------------------------------------------------

    def adb_path(self) -> str:
        if self._adb is None:
            found = shutil.which("adb")
            if found is None:
                raise DeviceError("adb not found; install the Debian package adb")
            self._adb = found
        return self._adb

    def adb(self, *args: str, timeout_s: float = _ADB_TIMEOUT_S) -> CommandResult:
        """``adb -s SERIAL args...``; a timeout becomes a DeviceError."""
        cmd = [self.adb_path(), "-s", self.serial, *args]
        try:
            return self._run(cmd, timeout_s)
        except TimeoutError as exc:
            raise DeviceError(f"adb timed out on {self.serial}: {exc}") from exc

    def shell(self, *args: str, timeout_s: float = _ADB_TIMEOUT_S) -> CommandResult:
        """Run ``args`` on the phone as one command: adb joins them into a line for the phone's
        ``sh``, so each word is quoted for it and none can start another command."""
        return self.adb("shell", *(shlex.quote(a) for a in args), timeout_s=timeout_s)

    def check_device(self) -> None:
        """The phone is listed by ``adb devices`` in state ``device``, else DeviceError."""
        try:
            listing = self._run([self.adb_path(), "devices"], _ADB_TIMEOUT_S)
        except TimeoutError as exc:
            raise DeviceError(f"adb devices timed out: {exc}") from exc
        if listing.returncode != 0:
            raise DeviceError(f"adb devices failed: {_first(listing.stderr or listing.stdout)}")
        states = parse_adb_devices(listing.stdout)
        if self.serial not in states:
            attached = ", ".join(states) or "none"
            raise DeviceError(f"no phone {self.serial} attached (adb devices lists: {attached})")
        if states[self.serial] != "device":
            raise DeviceError(f"phone {self.serial} is {states[self.serial]}, not ready")

    def _prepare(self) -> None:
        if self._ready:
            return
        binary = self.benchmark_binary
        if binary is None:
            raise DeviceError("android runner needs --benchmark-binary PATH (benchmark_model)")
        if not binary.is_file():
            raise DeviceError(f"benchmark binary {binary} not found")
        self.check_device()
        self._must(self.shell("mkdir", "-p", str(self.remote_dir)), "mkdir")
        remote = str(self.remote_dir / "benchmark_model")
        self._must(self.adb("push", _local(binary), remote, timeout_s=_PUSH_TIMEOUT_S), "push")
        self._must(self.shell("chmod", "+x", remote), "chmod")
        self._ready = True

    def _must(self, result: CommandResult, what: str) -> CommandResult:
        if result.returncode != 0:
            raise DeviceError(f"adb {what} failed on {self.serial}: {_first(result.stderr)}")
        return result

    # -- facts ---------------------------------------------------------------------------------

    def device_info(self) -> DeviceInfo:
        self.check_device()
        props = {}
        for key in (
            "ro.product.manufacturer",
            "ro.product.model",
            "ro.board.platform",
            "ro.soc.model",
            "ro.build.version.release",
            "ro.hardware.egl",
        ):
            props[key] = self.shell("getprop", key).stdout.strip()
        gles = self.shell("dumpsys", "SurfaceFlinger").stdout
        renderer, driver = parse_gles_line(gles)
        return DeviceInfo(
            device_id=self.device_id,
            vendor=props["ro.product.manufacturer"],
            model=props["ro.product.model"],
            soc=props["ro.soc.model"] or props["ro.board.platform"],
            gpu=renderer or props["ro.hardware.egl"],
            os=f"Android {props['ro.build.version.release']}".strip(),
            driver=driver,
            extra={k: v for k, v in props.items() if v},
        )

    def runtime_info(self) -> RuntimeInfo:
        name = self.benchmark_binary.name if self.benchmark_binary else "benchmark_model"
        return RuntimeInfo(runtime="benchmark_model", version=name)

    # -- measuring -----------------------------------------------------------------------------

    def command(
        self, remote_model: str, settings: RunSettings, *, profile: bool = False
    ) -> list[str]:
        """The ``benchmark_model`` argument list run on the phone for one model."""
        args = [
            str(self.remote_dir / "benchmark_model"),
            f"--graph={remote_model}",
            f"--num_runs={settings.repeats}",
            f"--warmup_runs={settings.warmup}",
            "--min_secs=0",
            "--warmup_min_secs=0",
        ]
        if settings.delegate == "gpu":
            args.append("--use_gpu=true")
            loss = "true" if settings.precision == "fp16" else "false"
            args.append(f"--gpu_precision_loss_allowed={loss}")
        else:
            args.append(f"--num_threads={settings.threads}")
            xnn = "true" if settings.delegate == "xnnpack" else "false"
            args.append(f"--use_xnnpack={xnn}")
        if profile:
            args.append("--enable_op_profiling=true")
        return args

    def measure(self, model: Path, settings: RunSettings, *, profile: bool = False) -> Measurement:
        model = Path(model)
        if not model.is_file():
            return Measurement(status="failed", error=f"{model}: no such file")
        if settings.delegate != "gpu" and settings.precision == "fp16":
            return Measurement(status="unsupported", error="fp16 is a GPU delegate setting")
        try:
            name = remote_name(model)
        except OSError as exc:
            return Measurement(status="failed", error=f"{model}: {exc.strerror or exc}")
        self._prepare()
        remote_model = str(self.remote_dir / name)
        if remote_model not in self._pushed:
            self._must(
                self.adb("push", _local(model), remote_model, timeout_s=_PUSH_TIMEOUT_S), "push"
            )
            self._pushed.add(remote_model)
        cmd = self.command(remote_model, settings, profile=profile)
        try:
            result = self.shell(*cmd, timeout_s=settings.timeout_s)
        except DeviceError as exc:
            self.check_device()  # the phone is gone: stop the campaign
            return Measurement(status="timeout", warmup=settings.warmup, error=str(exc))
        text = result.stdout + "\n" + result.stderr
        parsed = parse_benchmark_output(text)
        measurement = parsed.to_measurement(settings.warmup)
        if result.returncode != 0 and measurement.ok:
            log.warning("benchmark_model exited %d but printed timings", result.returncode)
        return measurement

    def close(self) -> None:
        """Remove pushed models (the binary stays for the next run)."""
        if not self._pushed:
            return
        try:
            self.shell("rm", "-f", *sorted(self._pushed))
        except DeviceError as exc:
            log.warning("could not clean %s: %s", self.remote_dir, exc)
        self._pushed.clear()


def remote_name(model: Path) -> str:
    """The name a model gets on the phone: its content's sha256 (so equal files are pushed
    once and no file name, however hostile, reaches the phone's shell)."""
    with Path(model).open("rb") as fh:
        return f"{hashlib.file_digest(fh, 'sha256').hexdigest()[:32]}.tflite"


def _local(path: Path) -> str:
    """An absolute local path: a name starting with ``-`` must not read as an adb option."""
    return str(Path(path).resolve())


def parse_adb_devices(text: str) -> dict[str, str]:
    """``adb devices`` output -> {serial: state} (``device``, ``offline``, ``unauthorized``)."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("List of devices", "*")):
            continue
        parts = line.split()
        if len(parts) >= 2:
            states[parts[0]] = parts[1]
    return states


def parse_gles_line(dumpsys: str) -> tuple[str, str]:
    """From ``dumpsys SurfaceFlinger``: (renderer, driver version) of the ``GLES:`` line.

    The line reads ``GLES: <vendor>, <renderer>, OpenGL ES <version> <driver...>``.
    """
    for line in dumpsys.splitlines():
        line = line.strip()
        if line.startswith("GLES:"):
            parts = [p.strip() for p in line[len("GLES:") :].split(",", 2)]
            renderer = parts[1] if len(parts) > 1 else parts[0]
            driver = parts[2] if len(parts) > 2 else ""
            return renderer, driver
    return "", ""


def _first(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else "no message"
