"""Parse what TFLite's and LiteRT's benchmark tools print into typed timings.

Why a parser of text: ``benchmark_model`` has no stable machine-readable output across the
versions people have on their phones, and it prints only aggregates (count, first, min, max,
avg, std) in microseconds, not every run. Formats understood, each tested on output recorded
in public docs and issues (tests/data/benchmark_model/SOURCE.md):

* TFLite ``benchmark_model`` (2.x): ``count=N first=.. curr=.. min=.. max=.. avg=.. std=..``
  lines for warm-up and regular runs, ``Inference timings in us: Init: .., First inference: ..,
  Warmup (avg): .., Inference (avg): ..``; with or without ``INFO:`` prefixes or logcat prefixes.
* the older tool's ``Average inference timings in us: Warmup: .., Init: .., no stats: ..``.
* ``--enable_op_profiling=true`` tables: the ``Run Order`` table after ``Operator-wise Profiling
  Info for Regular Benchmark Runs``, tab- or space-aligned, with or without a ``[start]`` column;
  delegate kernels (``TfLiteGpuDelegateV2``, ``TfLiteNnapiDelegate``) appear as their own rows.
* LiteRT's ``benchmark_litert_model`` results block (``Inference (avg): 1.28 ms (20 runs)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from tflat.errors import DeviceError
from tflat.store.measurement import Measurement, OpProfileRow, ReportedTimings

_LOGCAT = re.compile(r"^\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+[VDIWEF]\s+[^:]*?:\s?")
_LEVEL = re.compile(r"^(?:INFO|WARNING|VERBOSE): ")
_STAT = re.compile(r"^count=\d+(?:\s+\w+=[-\d.eE+]+)+\s*$")
_KV = re.compile(r"(\w+)=([-\d.eE+]+)")
_SUMMARY = re.compile(r"Inference timings in us:\s*(.*)$")
_OLD_SUMMARY = re.compile(r"Average inference timings in us:\s*(.*)$")
_LITERT_LINE = re.compile(
    r"^(Model initialization|Warmup \(first\)|Warmup \(avg\)|Inference \((?:avg|min|max|median|"
    r"std|p5|p95)\)):\s+([-\d.]+) ms(?: \((\d+) runs\))?"
)
_NODE_SUFFIX = re.compile(r"^(.*):(\d+)$")
_FAILURE_MARKERS = ("Benchmarking failed", "Failed to", "ERROR:", "Segmentation fault", "Aborted")


@dataclass(frozen=True)
class BenchmarkOutput:
    """What one run of a benchmark tool reported. Times in ms (the tools print µs)."""

    tool: str  # "tflite_benchmark_model" or "litert_benchmark"
    inference: ReportedTimings | None
    warmup: ReportedTimings | None = None
    init_ms: float | None = None
    first_ms: float | None = None
    op_profile: tuple[OpProfileRow, ...] = ()
    error: str | None = None  # set when the tool said it failed

    def to_measurement(self, warmup: int) -> Measurement:
        """The runner's record: aggregates in ``reported`` (the tool gives no per-run times)."""
        if self.inference is None:
            return Measurement(
                status="failed", warmup=warmup, error=self.error or "no timings", init_ms=None
            )
        return Measurement(
            status="ok",
            warmup=warmup,
            init_ms=self.init_ms,
            op_profile=self.op_profile,
            reported=self.inference,
        )


def clean_lines(text: str) -> list[str]:
    """Lines without logcat and ``INFO:`` prefixes, right-stripped."""
    out = []
    for raw in text.splitlines():
        line = _LOGCAT.sub("", raw.rstrip("\r\n"))
        line = _LEVEL.sub("", line)
        out.append(line.rstrip())
    return out


def parse_benchmark_output(text: str) -> BenchmarkOutput:
    """Parse a benchmark tool's combined stdout/stderr.

    Returns timings, or a :class:`BenchmarkOutput` with ``error`` set when the tool reported a
    failure. Raises :class:`DeviceError` quoting the first lines when the text is neither.
    """
    lines = clean_lines(text)
    if any(_LITERT_LINE.match(ln.strip()) for ln in lines):
        return _parse_litert(lines)
    stats = [_stat(ln.strip()) for ln in lines if _STAT.match(ln.strip())]
    summary = _summary(lines)
    inference, warmup = _assign_stats(stats, summary)
    profile = _op_profile(lines)
    profiled = _profiled_run_timings(lines)
    if inference is None:
        inference = profiled
    if not summary and profiled is None and len(stats) < 2:
        # A finished run always ends with its summary line: this output was cut short.
        inference, warmup = None, stats[0] if stats else None
        if _failure(lines) is None and stats:
            return BenchmarkOutput(
                tool="tflite_benchmark_model",
                inference=None,
                warmup=warmup,
                error="output ends before the regular runs' timings (killed or cut short)",
            )
    if inference is None and "inference_avg_ms" in summary:
        inference = ReportedTimings(count=0, avg_ms=summary["inference_avg_ms"])
    if inference is not None and summary.get("first_ms") is not None and warmup is not None:
        warmup = _with_first(warmup, summary["first_ms"])
    if inference is None:
        failure = _failure(lines)
        if failure is None:
            head = " | ".join(ln.strip() for ln in lines if ln.strip())[:200]
            raise DeviceError(f"cannot read benchmark output (no timings found): {head!r}")
        return BenchmarkOutput(tool="tflite_benchmark_model", inference=None, error=failure)
    return BenchmarkOutput(
        tool="tflite_benchmark_model",
        inference=inference,
        warmup=warmup,
        init_ms=summary.get("init_ms"),
        first_ms=summary.get("first_ms") or (warmup.first_ms if warmup else None),
        op_profile=profile,
    )


# -- TFLite benchmark_model ------------------------------------------------------------------


def _stat(line: str) -> ReportedTimings:
    kv = {k: float(v) for k, v in _KV.findall(line)}
    return ReportedTimings(
        count=int(kv["count"]),
        avg_ms=kv["avg"] / 1000 if "avg" in kv else kv.get("curr", 0.0) / 1000,
        min_ms=_ms(kv.get("min")),
        max_ms=_ms(kv.get("max")),
        std_ms=_ms(kv.get("std")),
        first_ms=_ms(kv.get("first")),
        median_ms=_ms(kv.get("median")),
    )


def _ms(us: float | None) -> float | None:
    return us / 1000 if us is not None else None


def _summary(lines: list[str]) -> dict[str, float]:
    found: dict[str, float] = {}
    names = {
        "Init": "init_ms",
        "First inference": "first_ms",
        "Warmup (avg)": "warmup_avg_ms",
        "Inference (avg)": "inference_avg_ms",
        # the pre-2.3 tool
        "Warmup": "warmup_avg_ms",
        "no stats": "inference_avg_ms",
    }
    for line in lines:
        m = _SUMMARY.search(line) or _OLD_SUMMARY.search(line)
        if not m:
            continue
        for part in m.group(1).split(","):
            key, _, value = part.partition(":")
            name = names.get(key.strip())
            if name is not None:
                try:
                    found[name] = float(value) / 1000
                except ValueError:
                    continue
    return found


def _assign_stats(
    stats: list[ReportedTimings], summary: dict[str, float]
) -> tuple[ReportedTimings | None, ReportedTimings | None]:
    """Which ``count=`` line is the regular runs and which the warm-up.

    The tool prints warm-up first, then regular runs; the summary line's averages identify them
    when only one of the two lines is present.
    """
    if not stats:
        return None, None
    want = summary.get("inference_avg_ms")
    if len(stats) == 1 and want is not None and not _close(stats[0].avg_ms, want):
        return None, stats[0]
    if len(stats) == 1:
        return stats[0], None
    return stats[-1], stats[-2]


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-3 * max(abs(a), abs(b), 1e-9)


def _with_first(timing: ReportedTimings, first_ms: float) -> ReportedTimings:
    return timing if timing.first_ms is not None else replace(timing, first_ms=first_ms)


def _failure(lines: list[str]) -> str | None:
    errors = [ln.strip() for ln in lines if ln.strip().startswith(_FAILURE_MARKERS)]
    if not errors:
        return None
    first_error = next((e for e in errors if e.startswith("ERROR:")), errors[0])
    return first_error.removeprefix("ERROR:").strip()


def _regular_profile_start(lines: list[str]) -> int | None:
    return next(
        (i for i, ln in enumerate(lines) if "Profiling Info for Regular Benchmark Runs" in ln), None
    )


def _profiled_run_timings(lines: list[str]) -> ReportedTimings | None:
    """The ``Timings (microseconds): count=..`` line closing the regular runs' profile.

    Output pasted without the ``count=`` lines still has this one: the profiler's own summary
    of the same regular runs.
    """
    start = _regular_profile_start(lines)
    if start is None:
        return None
    for line in lines[start:]:
        head, sep, rest = line.strip().partition("Timings (microseconds):")
        if sep and not head and _STAT.match(rest.strip()):
            return _stat(rest.strip())
    return None


def _op_profile(lines: list[str]) -> tuple[OpProfileRow, ...]:
    """Rows of the Run Order table of the regular runs (not of initialization)."""
    start = _regular_profile_start(lines)
    if start is None:
        return ()
    header_at = next(
        (i for i in range(start, len(lines)) if "[node type]" in lines[i].lower()), None
    )
    if header_at is None:
        return ()
    columns = [c.strip().lower() for c in re.findall(r"\[([^\]]+)\]", lines[header_at])]
    rows = []
    for line in lines[header_at + 1 :]:
        if not line.strip() or line.lstrip().startswith("="):
            break
        row = _profile_row(line, columns)
        if row is not None:
            rows.append(row)
    return tuple(rows)


def _profile_row(line: str, columns: list[str]) -> OpProfileRow | None:
    fields = [f for f in re.split(r"\t|\s{2,}", line.strip()) if f.strip()]
    if len(fields) < len(columns) - 1:
        return None
    if len(fields) > len(columns):  # a name with wide gaps: join the tail back
        fields = [*fields[: len(columns) - 1], " ".join(fields[len(columns) - 1 :])]
    cell = dict(zip(columns, (f.strip() for f in fields), strict=False))
    try:
        avg_ms = float(cell["avg ms"])
        first_ms = float(cell["first"]) if "first" in cell else None
        share = float(cell["%"].rstrip("%")) / 100 if "%" in cell else None
        times = int(float(cell.get("times called", "1")))
    except (KeyError, ValueError):
        return None
    raw_name = cell.get("name", "")
    node_index = None
    m = _NODE_SUFFIX.match(raw_name)
    if m:
        raw_name, node_index = m.group(1), int(m.group(2))
    if raw_name.startswith("[") and raw_name.endswith("]"):
        raw_name = raw_name[1:-1]
    return OpProfileRow(
        node_index=node_index,
        op_type=cell.get("node type", ""),
        name=raw_name,
        avg_ms=avg_ms,
        first_ms=first_ms,
        share=share,
        times_called=times,
    )


# -- LiteRT's benchmark_litert_model ---------------------------------------------------------


def _parse_litert(lines: list[str]) -> BenchmarkOutput:
    values: dict[str, float] = {}
    runs: dict[str, int] = {}
    for line in lines:
        m = _LITERT_LINE.match(line.strip())
        if m:
            values[m.group(1)] = float(m.group(2))
            if m.group(3):
                runs[m.group(1)] = int(m.group(3))
    if "Inference (avg)" not in values:
        raise DeviceError("cannot read LiteRT benchmark output: no 'Inference (avg)' line")
    inference = ReportedTimings(
        count=runs.get("Inference (avg)", 0),
        avg_ms=values["Inference (avg)"],
        min_ms=values.get("Inference (min)"),
        max_ms=values.get("Inference (max)"),
        std_ms=values.get("Inference (std)"),
        median_ms=values.get("Inference (median)"),
    )
    warmup = None
    if "Warmup (avg)" in values:
        warmup = ReportedTimings(
            count=runs.get("Warmup (avg)", 0),
            avg_ms=values["Warmup (avg)"],
            first_ms=values.get("Warmup (first)"),
        )
    return BenchmarkOutput(
        tool="litert_benchmark",
        inference=inference,
        warmup=warmup,
        init_ms=values.get("Model initialization"),
        first_ms=values.get("Warmup (first)"),
    )
