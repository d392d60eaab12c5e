"""How the TFLite GPU delegate spreads a kernel's output over the GPU, per vendor.

A convolution's time on a phone GPU is not its FLOPs over a peak: one work item computes a
block of outputs (pixels x 4-channel slices) whose size the delegate picks per vendor from the
output size and the GPU's compute units, and work items are launched in work groups. Odd
sizes (13x13, 27x27) leave part of the last blocks and groups idle, and a small output fills
only part of the GPU for a few long waves. This module reproduces those choices (facts from
the delegate's source, listed with their figures in ``gpu/rules/tflite_gpu.toml``), for many
kernels at once with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from tflat.gpu.kernel import read_rules

#: Largest work group the FAST work-group guess uses (``GetWorkGroupConv``: min(256, max)).
MAX_GROUP = 256


@dataclass(frozen=True)
class GpuFacts:
    """The delegate's view of one GPU: vendor branch, compute units, wave size."""

    vendor: str
    compute_units: int
    wave_size: int
    block_waves: tuple[float, ...] = ()
    block_per_cu: tuple[float, ...] = ()
    max_group_z: int = 16
    bionic: bool = False
    reduce_group: int = 256
    reduce_min_group: int = 64


def base_family(gpu_family: str) -> str:
    """The vendor family of ``"family:model"`` (``"apple:a12"`` -> ``"apple"``): the delegate's
    kernel choices (Winograd, ConvConstants) are per family, its figures per GPU model."""
    return gpu_family.split(":", 1)[0]


@lru_cache(maxsize=16)
def gpu_facts(gpu_family: str) -> GpuFacts:
    """The facts of ``gpu_family`` (``"adreno"`` or ``"adreno:616"``) from the rules: the
    family's entry updated by the model's; an unknown family gets the default entry."""
    table: dict[str, Any] = read_rules("tflite_gpu").get("gpu", {})
    family = base_family(gpu_family)
    vendor = family if family in table else "default"
    t = {**table.get(vendor, {}), **table.get(gpu_family, {})}
    return GpuFacts(
        vendor=vendor,
        compute_units=int(t.get("compute_units", 4)),
        wave_size=int(t.get("wave_size", 32)),
        block_waves=tuple(float(v) for v in t.get("block_waves", ())),
        block_per_cu=tuple(float(v) for v in t.get("block_per_cu", ())),
        max_group_z=int(t.get("max_group_z", 16)),
        bionic=bool(t.get("bionic", False)),
        reduce_group=int(t.get("reduce_group", 256)),
        reduce_min_group=int(t.get("reduce_min_group", 64)),
    )


@dataclass(frozen=True)
class Dispatch:
    """Per kernel: output block of one work item (x, y, slices), work items launched (with
    the idle ones of partial work groups) and the number of work groups."""

    block_x: np.ndarray
    block_y: np.ndarray
    block_s: np.ndarray
    launched: np.ndarray
    groups: np.ndarray

    @property
    def block(self) -> np.ndarray:
        return np.asarray(self.block_x * self.block_y * self.block_s)


def _ceil(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    return np.asarray(np.ceil(a / b))


def _biggest_divider(n: np.ndarray, max_divider: int) -> np.ndarray:
    """The biggest divider of each ``n`` up to ``max_divider`` (few distinct sizes: per value)."""
    values, inverse = np.unique(n, return_inverse=True)
    best = [next(d for d in range(max_divider, 0, -1) if int(v) % d == 0) for v in values]
    return np.asarray(best, dtype=float)[inverse.reshape(-1)]


def _groups_conv(
    gx: np.ndarray, gy: np.ndarray, gz: np.ndarray, max_z: int
) -> tuple[np.ndarray, np.ndarray]:
    """``GetWorkGroupConv`` (FAST tuning): as many slices per group as divide the grid (up to
    ``max_z``), the rest of 256 items along x then y; returns (launched items, groups)."""
    wz = _biggest_divider(gz, max_z)
    wxy = np.floor(MAX_GROUP / wz)
    wx = np.minimum(gx, wxy)
    wy = np.minimum(np.floor(wxy / wx), gy)
    wy = np.where((wy == gy) & (gy % 2 == 0), gy / 2, wy)
    wy = np.maximum(wy, 1)
    groups = _ceil(gx, wx) * _ceil(gy, wy) * _ceil(gz, wz)
    return groups * wx * wy * wz, groups


def _adreno_block(
    facts: GpuFacts, w: np.ndarray, h: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    waves = w * h * s / facts.compute_units / facts.wave_size
    t1, t2, t3 = facts.block_waves or (6.0, 12.0, 24.0)
    bx = np.where(waves <= t1, 1, 2)
    by = np.where(waves <= t3, 1, 2)
    bs = np.where(waves <= t2, 1, 2)
    return bx, by, bs


def _mali_block(
    facts: GpuFacts, w: np.ndarray, h: np.ndarray, s: np.ndarray, spatial: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    per_cu = w * h * s / facts.compute_units
    t1, t2, t4 = facts.block_per_cu or (256.0, 1536.0, 4096.0)
    size = np.where(per_cu <= t1, 1, np.where(per_cu <= t2, 2, np.where(per_cu <= t4, 4, 8)))
    size = np.where(spatial, np.minimum(size, 4), size)
    thin = (s == 1) | (s == 3)
    bx = np.where(size >= 2, 2, 1)
    by = np.where((size == 8) | ((size == 4) & thin), 2, 1)
    bs = np.where(((size == 8) | (size == 4)) & ~thin, 2, 1)
    return bx, by, bs


def _powervr_block(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bs = np.where(
        (s % 8 == 0) | (s >= 32),
        8,
        np.where((s % 4 == 0) | (s >= 8), 4, np.where((s % 2 == 0) | (s >= 4), 2, s)),
    )
    return np.full_like(s, 2), np.ones_like(s), np.minimum(bs, 4)


def _apple_dispatch(
    facts: GpuFacts, w: np.ndarray, h: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, ...]:
    waves = _ceil(w * h * s, 32)
    cu = facts.compute_units
    size = np.where(
        waves >= cu * 64, 8, np.where(waves >= cu * 32, 4, np.where(waves >= cu * 16, 2, 1))
    )
    bx, by = np.ones_like(w), np.ones_like(w)
    if facts.bionic:
        second = size >= 2
        along_x = (h % 2 != 0) & (w % 2 == 0)
        bx = np.where(second & along_x, 2, 1)
        by = np.where(second & ~along_x, 2, 1)
        size = np.where(second, size // 2, size)
    bs = np.where(
        (size >= 4) & ((s % 4 == 0) | (s >= 16)),
        4,
        np.where((size >= 2) & ((s % 2 == 0) | (s >= 4)), 2, 1),
    )
    gx, gy, gz = _ceil(w, bx), _ceil(h, by), _ceil(s, bs)
    g1 = _ceil(gx, 8) * _ceil(gy, 4) * gz
    g2 = _ceil(gx * gy, 32) * gz
    g3 = _ceil(gx * gy * gz, 32)
    groups = np.where(g2 < g1, g2, g1)
    groups = np.where(g2 / g3 > (1.0 if facts.bionic else 1.04), g3, groups)
    return bx, by, bs, groups * 32, groups


def conv_dispatch(
    gpu_family: str,
    w: np.ndarray,
    h: np.ndarray,
    slices: np.ndarray,
    spatial: np.ndarray,
    group_slices: np.ndarray,
) -> Dispatch:
    """The dispatch of convolutions with output ``w`` x ``h`` x ``slices`` on ``gpu_family``.

    ``spatial``: the kernel is not 1x1 stride 1 (Mali caps its block at 4 outputs then);
    ``group_slices``: output slices per group (a grouped convolution's slice block must divide
    it: 4 -> 2 -> 1, as ConvPowerVR does)."""
    facts = gpu_facts(gpu_family)
    w, h, s = (np.asarray(a, dtype=float) for a in (w, h, slices))
    if facts.vendor == "apple":
        bx, by, bs, launched, groups = _apple_dispatch(facts, w, h, s)
        return Dispatch(bx, by, bs, launched, groups)
    if facts.vendor == "adreno":
        bx, by, bs = _adreno_block(facts, w, h, s)
    elif facts.vendor == "mali":
        bx, by, bs = _mali_block(facts, w, h, s, np.asarray(spatial, dtype=bool))
    else:
        bx, by, bs = _powervr_block(s)
    gs = np.asarray(group_slices, dtype=float)
    odd = gs % bs != 0
    bs = np.where(odd, np.where((bs == 4) & (gs % 2 == 0), 2, 1), bs)
    gx, gy, gz = _ceil(w, bx), _ceil(h, by), _ceil(s, bs)
    if facts.vendor in ("adreno", "mali"):
        launched, groups = _groups_conv(gx, gy, gz, facts.max_group_z)
    else:
        # PowerVR (and the default): fixed 32-wide groups over the flattened pixels
        groups = _ceil(gx * gy, 32) * gz
        launched = groups * 32
    return Dispatch(bx, by, bs, launched, groups)


def simple_dispatch(w: np.ndarray, h: np.ndarray, slices: np.ndarray) -> Dispatch:
    """One output element per work item, work group from ``GetWorkGroup`` (FAST tuning): up to
    8 slices deep (8, 4 or 2 first when they divide), half the width, the rest along y. The
    element-wise kernels, depthwise convolutions, pooling and concatenations use it."""
    gx, gy, gz = (np.asarray(a, dtype=float) for a in (w, h, slices))
    wz = np.where(
        gz % 8 == 0, 8, np.where(gz % 4 == 0, 4, np.where(gz % 2 == 0, 2, _odd_divider(gz)))
    )
    wxy = np.floor(MAX_GROUP / wz)
    wx = np.minimum(_ceil(gx, 2), wxy)
    wy = np.maximum(np.minimum(np.floor(wxy / wx), gy), 1)
    groups = _ceil(gx, wx) * _ceil(gy, wy) * _ceil(gz, wz)
    one = np.ones_like(gx)
    return Dispatch(one, one, one, groups * wx * wy * wz, groups)


def _odd_divider(n: np.ndarray) -> np.ndarray:
    """Biggest divider of an odd ``n`` up to 8 (7, 5, 3 or 1)."""
    return _biggest_divider(n, 8)


def reduce_dispatch(
    gpu_family: str, h: np.ndarray, w: np.ndarray, slices: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A mean over H x W (``Reduce``): (work items launched, pixels each one reads).

    The work group doubles along W, then H, while the pixels fill it (up to the vendor's
    total); if that reaches the vendor's minimum, one group shares each output slice (each
    item reads a share of the pixels, then a local-memory tree), else one item per slice
    reads all of them: a 7x7 mean is serial on Adreno and shared on Mali."""
    facts = gpu_facts(gpu_family)
    h, w, s = (np.asarray(a, dtype=float) for a in (h, w, slices))
    wx, wy = _fill(w, facts.reduce_group), np.ones_like(h)
    wy = _fill(h, np.floor(facts.reduce_group / wx))
    shared = wx * wy >= facts.reduce_min_group
    items = np.where(shared, s * wx * wy, s)
    reads = np.where(shared, _ceil(w, wx) * _ceil(h, wy) + np.log2(wx * wy), h * w)
    return items, reads


def _fill(size: np.ndarray, limit: np.ndarray | float) -> np.ndarray:
    """The largest power of two <= ``size`` and <= ``limit`` (at least 1)."""
    out = np.ones_like(size)
    while True:
        grow = (size >= out * 2) & (out * 2 <= limit)
        if not grow.any():
            return out
        out = np.where(grow, out * 2, out)
