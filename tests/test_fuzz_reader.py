"""Fuzz the reader with byte-mutated real models.

Whatever the bytes, ``read_model`` returns a Graph (that renders) or raises ModelFormatError:
never another exception, never a hang (a per-example alarm), and never memory out of
proportion to the file (tracemalloc peak against the file size).

The default run (1000 examples, derandomized) takes under a minute; set ``TFLAT_FUZZ_EXAMPLES``
for a longer, randomized one (``TFLAT_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz_reader.py``).
"""

from __future__ import annotations

import functools
import os
import signal
import struct
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tflat
from tflat.report import inspect as render

MODELS = Path(__file__).parent / "models"
SEEDS = {
    name: (MODELS / name).read_bytes()
    for name in (
        "sine_float.tflite",
        "hey_jarvis.tflite",
        "hand_recrop.tflite",
        "selfie_segmentation.tflite",
    )
}
EXAMPLES = int(os.environ.get("TFLAT_FUZZ_EXAMPLES", "1000"))
#: The default run is the same every time (CI); a longer run asked for explores new examples.
DERANDOMIZE = "TFLAT_FUZZ_EXAMPLES" not in os.environ
#: Seconds one parse may take before it counts as a hang (real parses take milliseconds).
ALARM_S = 10
#: Peak traced memory allowed per byte of file, plus a fixed allowance.
MEMORY_PER_BYTE = 64
MEMORY_FIXED = 4 << 20


class Hang(Exception):
    pass


@contextmanager
def alarm(seconds: int) -> Iterator[None]:
    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"read_model ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


_position = st.integers(0, 2**31)
_word = st.one_of(
    st.sampled_from([0, 1, 2, 4, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFF, 0x10000]),
    st.integers(0, 2**32 - 1),
)
_mutation = st.one_of(
    st.tuples(st.just("flip"), _position, st.integers(0, 7)),
    st.tuples(st.just("byte"), _position, st.integers(0, 255)),
    st.tuples(st.just("word"), _position, _word),
    st.tuples(st.just("insert"), _position, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), _position, st.integers(1, 64)),
    st.tuples(st.just("truncate"), _position, st.just(0)),
)


def mutate(data: bytes, mutations: list[tuple[str, int, object]]) -> bytes:
    buf = bytearray(data)
    for kind, raw_pos, arg in mutations:
        if not buf:
            break
        pos = raw_pos % len(buf)
        if kind == "flip":
            buf[pos] ^= 1 << int(arg)  # type: ignore[call-overload]
        elif kind == "byte":
            buf[pos] = int(arg)  # type: ignore[call-overload]
        elif kind == "word":
            pos -= pos % 4  # flatbuffer offsets and lengths are 4-byte aligned
            if pos + 4 <= len(buf):
                struct.pack_into("<I", buf, pos, int(arg))  # type: ignore[call-overload]
        elif kind == "insert":
            buf[pos:pos] = arg  # type: ignore[assignment]
        elif kind == "delete":
            del buf[pos : pos + int(arg)]  # type: ignore[call-overload]
        else:
            del buf[pos:]
    return bytes(buf)


@functools.cache
def warm() -> None:
    """Import and cache everything once, so tracemalloc sees only the parse itself."""
    for data in SEEDS.values():
        graph = tflat.read_model(data)
        render.to_json(graph)
        render.to_csv(graph)


def check(data: bytes) -> None:
    """The fuzz property: a Graph that renders, or a one-line ModelFormatError."""
    with alarm(ALARM_S):
        try:
            graph = tflat.read_model(data)
        except tflat.ModelFormatError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        render.to_json(graph)
        render.to_csv(graph)


_cases = st.tuples(
    st.sampled_from(sorted(SEEDS)), st.lists(_mutation, min_size=1, max_size=6)
)  # fmt: skip


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=None,  # hangs are caught by the alarm; wall time on a shared machine is noisy
    derandomize=DERANDOMIZE,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_cases)
def test_mutated_models_never_crash_or_hang(
    case: tuple[str, list[tuple[str, int, object]]],
) -> None:
    name, mutations = case
    check(mutate(SEEDS[name], mutations))


@settings(
    max_examples=max(EXAMPLES // 8, 50),
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_cases)
def test_mutated_models_memory_is_bounded(case: tuple[str, list[tuple[str, int, object]]]) -> None:
    name, mutations = case
    data = mutate(SEEDS[name], mutations)
    warm()
    tracemalloc.start()
    try:
        check(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= MEMORY_PER_BYTE * len(data) + MEMORY_FIXED, (name, len(data), peak)


def test_huge_vector_length_is_refused_before_allocating() -> None:
    """Every 4-byte word of a real model set to 0xFFFFFFF0 in turn: nothing huge is built."""
    data = SEEDS["sine_float.tflite"]
    warm()
    tracemalloc.start()
    try:
        for pos in range(0, len(data) - 3, 4):
            buf = bytearray(data)
            struct.pack_into("<I", buf, pos, 0xFFFFFFF0)
            check(bytes(buf))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_FIXED


def test_unmutated_seeds_read() -> None:
    for data in SEEDS.values():
        assert tflat.read_model(data).ops


def _aliased_subgraphs(copies: int) -> bytes:
    """A valid flatbuffer whose subgraph vector names the same subgraph ``copies`` times:
    a few bytes per copy in the file, a whole subgraph of objects per copy if read naively."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(SEEDS["sine_float.tflite"], 0)
    b = flatbuffers.Builder(1024)
    subgraph = model.subgraphs[0].Pack(b)
    codes = [c.Pack(b) for c in model.operatorCodes]
    buffers = [x.Pack(b) for x in model.buffers]

    def vector(items: list[int]) -> int:
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return int(b.EndVector())

    subgraphs, codes_vec, buffers_vec = vector([subgraph] * copies), vector(codes), vector(buffers)
    schema.ModelStart(b)
    schema.ModelAddVersion(b, 3)
    schema.ModelAddOperatorCodes(b, codes_vec)
    schema.ModelAddSubgraphs(b, subgraphs)
    schema.ModelAddBuffers(b, buffers_vec)
    b.Finish(schema.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_aliased_tables_cannot_amplify_memory() -> None:
    few = tflat.read_model(_aliased_subgraphs(3))  # aliasing as such is legal flatbuffer
    assert len(few.subgraphs) == 3 and len(few.all_ops) == 9
    bomb = _aliased_subgraphs(50_000)
    warm()
    tracemalloc.start()
    try:
        with alarm(ALARM_S):
            try:
                tflat.read_model(bomb)
            except tflat.ModelFormatError as exc:
                assert "more than the file can hold" in str(exc)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= MEMORY_PER_BYTE * len(bomb) + MEMORY_FIXED, (len(bomb), peak)
