"""Features of one GPU kernel: what the delegate actually computes and moves.

The same :class:`KernelShape` is built from a USC per-op row and from a kernel of a real graph
(:mod:`tflat.predict.shapes`), so a predictor trained on one applies to the other. Channels are
packed in slices of 4 by the GPU delegate (a 3-channel tensor costs as much as a 4-channel
one), tensors are fp16 on the GPU, and a Winograd convolution does fewer multiplies: the
features say so, plus FLOPs, bytes moved and arithmetic intensity. How the delegate dispatches
the kernel on the shape's GPU family (:mod:`tflat.gpu.dispatch`: outputs per work item, idle
items of partial blocks and groups, waves per compute unit, serial steps of one item) is in
the last five columns. The features stay beside the regressors rather than in ``gpu/``: they
are the trained bundles' columns (``FEATURE_NAMES`` is checked when a bundle loads), while
``gpu/`` holds the delegate's facts they read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tflat.gpu.dispatch import conv_dispatch, gpu_facts, reduce_dispatch, simple_dispatch

#: Kinds the per-kernel regressors cover (the USC data lists them); other kinds of a real
#: graph are costed by the whole-model term's per-kernel rate (see ``Predictor``).
LISTED_KINDS = (
    "conv2d",
    "depthwise_conv2d",
    "grouped_conv2d",
    "fully_connected",
    "pool",
    "mean",
    "concat",
)
#: Kinds priced like a listed kind (closest algorithm).
PROXY_KIND = {"transpose_conv": "conv2d", "grouped_conv2d": "conv2d"}

FEATURE_NAMES = (
    "kind_code",
    "log2_pixels_in",
    "log2_pixels_out",
    "log2_cin",
    "log2_cout",
    "log2_slices_in",
    "log2_slices_out",
    "kernel",
    "stride",
    "log2_groups",
    "winograd",
    "n_inputs",
    "linked_unary",
    "linked_binary",
    "log2_flops_eff",
    "log2_bytes",
    "log2_intensity",
    "slice_padding_ratio",
    "log2_analytic_ms",
    "log2_cin_per_group",
    "log2_tasks",
    "log2_weight_bytes",
    "log2_out_bytes",
    "log2_loop_steps",
    "grid_util_xy",
    "grid_util_z",
    "log2_work_groups",
    "conv_constants",
    "log2_block",
    "dispatch_util",
    "log2_waves",
    "log2_item_steps",
    "log2_wave_steps",
)

BYTES_PER_ELEMENT = 2  # fp16 tensors on the GPU


@dataclass(frozen=True)
class KernelShape:
    """Shapes of one kernel (square or not), NHWC, batch 1."""

    kind: str
    h_in: int
    w_in: int
    cin: int
    h_out: int
    w_out: int
    cout: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    n_inputs: int = 1
    linked_unary: int = 0
    linked_binary: int = 0
    winograd: bool = False
    flops: int = 0
    conv_constants: bool = False
    #: kernel height x width when not square (a 1x256 audio conv); 0: ``kernel`` squared
    kernel_taps: int = 0
    #: the GPU family whose delegate choices (block size, work groups) the features describe
    gpu_family: str = "default"

    @property
    def taps(self) -> int:
        return self.kernel_taps or self.kernel * self.kernel

    @property
    def slices_in(self) -> int:
        return max(1, math.ceil(self.cin / 4))

    @property
    def slices_out(self) -> int:
        return max(1, math.ceil(self.cout / 4))

    @property
    def padding_ratio(self) -> float:
        """Work done on padded channels relative to real ones (>= 1)."""
        return (4 * self.slices_in / max(self.cin, 1)) * (4 * self.slices_out / max(self.cout, 1))

    @property
    def flops_eff(self) -> float:
        """FLOPs the GPU executes: padded to slices of 4, a quarter of them with Winograd."""
        f = self.flops * self.padding_ratio
        if self.kind in ("depthwise_conv2d", "pool", "mean", "concat"):
            f = self.flops * (4 * self.slices_out / max(self.cout, 1))
        return f / 4.0 if self.winograd else f

    @property
    def weight_bytes(self) -> int:
        if self.kind in ("conv2d", "grouped_conv2d", "fully_connected"):
            per_group = 4 * math.ceil(self.cin / self.groups / 4) if self.groups > 1 else 0
            cin = per_group if per_group else 4 * self.slices_in
            return self.taps * cin * 4 * self.slices_out * BYTES_PER_ELEMENT
        if self.kind == "depthwise_conv2d":
            return self.taps * 4 * self.slices_out * BYTES_PER_ELEMENT
        return 0

    @property
    def loop_steps(self) -> int:
        """Serial steps of one work item: input slices (per group) x kernel taps; a reduction
        (mean) loops over the pixels; a concatenation over every output slice (the delegate's
        ConcatZ: one work item per pixel copies all slices of all inputs)."""
        if self.kind == "mean":
            return self.h_in * self.w_in
        if self.kind == "concat":
            return self.slices_out
        if self.kind in ("depthwise_conv2d", "pool"):
            return self.taps
        if self.kind == "fully_connected":
            return max(1, math.ceil(self.slices_in / 4))
        return max(1, math.ceil(self.cin / max(self.groups, 1) / 4)) * self.taps

    @property
    def bytes_moved(self) -> int:
        act_in = self.h_in * self.w_in * 4 * self.slices_in * BYTES_PER_ELEMENT
        act_out = self.h_out * self.w_out * 4 * self.slices_out * BYTES_PER_ELEMENT
        if self.kind == "concat":
            act_in = act_out
        extra = self.linked_binary * act_out
        return act_in + act_out + self.weight_bytes + extra


def _log2(x: float) -> float:
    return math.log2(max(x, 1e-9) + 1.0)


def _vlog2(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.log2(np.maximum(x, 1e-9) + 1.0))


_SHAPE_FIELDS = ("h_in", "w_in", "cin", "h_out", "w_out", "cout", "kernel", "stride", "groups",
                 "n_inputs", "linked_unary", "linked_binary", "winograd", "flops",
                 "conv_constants", "kernel_taps")  # fmt: skip


class _Columns:
    """The properties of :class:`KernelShape` for many shapes at once (numpy, same formulas):
    a few hundred kernels are featurized in well under a millisecond."""

    def __init__(self, shapes: Sequence[KernelShape]) -> None:
        raw = np.array([[float(getattr(s, f)) for f in _SHAPE_FIELDS] for s in shapes])
        raw = raw.reshape(len(shapes), len(_SHAPE_FIELDS))
        c = dict(zip(_SHAPE_FIELDS, raw.T, strict=True))
        kinds = np.array([s.kind for s in shapes])
        self.kinds = kinds
        self.c = c
        cin, cout, groups, k = c["cin"], c["cout"], np.maximum(c["groups"], 1), c["kernel"]
        self.slices_in = np.maximum(1, np.ceil(cin / 4))
        self.slices_out = np.maximum(1, np.ceil(cout / 4))
        out_pad = 4 * self.slices_out / np.maximum(cout, 1)
        self.padding_ratio = (4 * self.slices_in / np.maximum(cin, 1)) * out_pad
        vector_like = np.isin(kinds, ("depthwise_conv2d", "pool", "mean", "concat"))
        f = np.where(vector_like, c["flops"] * out_pad, c["flops"] * self.padding_ratio)
        self.flops_eff = np.where(c["winograd"] > 0, f / 4.0, f)
        dense = np.isin(kinds, ("conv2d", "grouped_conv2d", "fully_connected"))
        per_group = np.where(c["groups"] > 1, 4 * np.ceil(cin / groups / 4), 0)
        w_cin = np.where(per_group > 0, per_group, 4 * self.slices_in)
        taps = np.where(c["kernel_taps"] > 0, c["kernel_taps"], k * k)
        w_dense = taps * w_cin * 4 * self.slices_out * BYTES_PER_ELEMENT
        w_dw = taps * 4 * self.slices_out * BYTES_PER_ELEMENT
        self.weight_bytes = np.where(dense, w_dense, np.where(kinds == "depthwise_conv2d", w_dw, 0))
        self.out_bytes = c["h_out"] * c["w_out"] * 4 * self.slices_out * BYTES_PER_ELEMENT
        act_in = c["h_in"] * c["w_in"] * 4 * self.slices_in * BYTES_PER_ELEMENT
        act_in = np.where(kinds == "concat", self.out_bytes, act_in)
        extra = c["linked_binary"] * self.out_bytes
        self.bytes_moved = act_in + self.out_bytes + self.weight_bytes + extra
        loop = np.maximum(1, np.ceil(cin / groups / 4)) * taps
        loop = np.where(np.isin(kinds, ("depthwise_conv2d", "pool")), taps, loop)
        concat = kinds == "concat"
        loop = np.where(concat, self.slices_out, loop)
        # The delegate's FullyConnected: 4 threads per output slice split the input slices
        # (then a local-memory reduction), so each loops over a quarter of them; its grid is
        # output slices only, no pixel blocks.
        fc = kinds == "fully_connected"
        loop = np.where(fc, np.maximum(1, np.ceil(self.slices_in / 4)), loop)
        self.loop_steps = np.where(kinds == "mean", c["h_in"] * c["w_in"], loop)
        # Grid quantization: the delegate's kernels cover the output in blocks of work items
        # (typically 8x4 pixels by 4 slices per work group); odd sizes (27x27, 13x13, 7x7)
        # leave part of the last groups idle. A concatenation's grid has no slice axis
        # (ConcatZ loops over the slices in one work item).
        gx, gy, gz = np.ceil(c["w_out"] / 8), np.ceil(c["h_out"] / 4), np.ceil(self.slices_out / 4)
        gz = np.where(concat, 1, gz)
        self.util_xy = np.where(fc, 1.0, c["w_out"] * c["h_out"] / np.maximum(gx * 8 * gy * 4, 1))
        self.util_z = np.where(concat, 1.0, self.slices_out / np.maximum(gz * 4, 1))
        self.work_groups = gx * gy * gz
        self.tasks = c["h_out"] * c["w_out"] * np.where(concat, 1, self.slices_out)
        self._dispatch(shapes)

    def _dispatch(self, shapes: Sequence[KernelShape]) -> None:
        """Block, launched work items and waves as the delegate dispatches each kernel on its
        GPU family (:mod:`tflat.gpu.dispatch`): convolutions by the vendor's ConvPowerVR /
        ConvolutionMetal choice, other kinds one output per item (a concatenation one pixel
        per item); a fully connected kernel has no pixel grid (block 1, its output slices)."""
        c, kinds = self.c, self.kinds
        n = len(kinds)
        block, launched, slots = np.ones(n), np.ones(n), np.ones(n)
        steps = np.asarray(self.loop_steps, dtype=float).copy()
        mean = kinds == "mean"
        conv = np.isin(kinds, ("conv2d", "grouped_conv2d")) & (c["winograd"] == 0)
        concat = kinds == "concat"
        fc = kinds == "fully_connected"
        w = np.where(fc, 1, c["w_out"])
        h = np.where(fc, 1, c["h_out"])
        s = np.where(concat, 1, self.slices_out)
        families = np.array([sh.gpu_family for sh in shapes])
        groups = np.maximum(c["groups"], 1)
        spatial = (c["kernel"] > 1) | (c["stride"] > 1) | (c["kernel_taps"] > 1)
        for fam in sorted(set(families.tolist())):
            sel = families == fam
            plain = simple_dispatch(w[sel], h[sel], s[sel])
            cv = conv_dispatch(fam, w[sel], h[sel], s[sel], spatial[sel],
                               np.maximum(1, self.slices_out[sel] / groups[sel]))  # fmt: skip
            is_conv = conv[sel]
            block[sel] = np.where(is_conv, cv.block, plain.block)
            launched[sel] = np.where(is_conv, cv.launched, plain.launched)
            items, reads = reduce_dispatch(fam, c["h_in"][sel], c["w_in"][sel], s[sel])
            is_mean = mean[sel]
            launched[sel] = np.where(is_mean, items, launched[sel])
            steps[sel] = np.where(is_mean, reads, steps[sel])
            facts = gpu_facts(fam)
            slots[sel] = facts.compute_units * facts.wave_size
        useful = np.where(mean, launched, w * h * s)
        self.block = block
        self.dispatch_util = np.minimum(1.0, useful / np.maximum(launched * block, 1))
        self.waves = launched / slots
        self.item_steps = steps * block
        self.wave_steps = np.ceil(np.maximum(self.waves, 1)) * self.item_steps


#: Columns of the analytic term; its coefficients are what each costs.
ANALYTIC_COLUMNS = (
    "launch_ms",
    "ms_per_gflop_executed",
    "ms_per_mb_moved",
    "ms_per_k_serial_steps",
)


def analytic_inputs(shapes: Sequence[KernelShape]) -> np.ndarray:
    """Columns of the analytic (roofline-like) term, as in :data:`ANALYTIC_COLUMNS`:
    [1, GFLOP executed, MB moved, thousands of serial loop steps of a convolution or mean].

    The last is the critical path of one work item (input slices per group x taps): a
    convolution with few outputs (3x3, 128 -> 32 channels on 7x7) cannot fill the GPU, and its
    time follows that loop rather than its FLOPs. A concatenation gets it too: one work item
    per pixel copies every slice (DenseNet's 7x7 concats of 1000 channels run 49 items of
    250 steps). A mean's is the pixels one work item reads: all of them when the delegate's
    Reduce gives each output slice one item (a 7x7 mean on Adreno), a share of them when a
    work group splits the slice (Mali, Apple)."""
    return _analytic_inputs(_Columns(shapes))


def _analytic_inputs(cols: _Columns) -> np.ndarray:
    out = np.ones((len(cols.kinds), len(ANALYTIC_COLUMNS)))
    out[:, 1] = cols.flops_eff / 1e9
    out[:, 2] = cols.bytes_moved / 1e6
    conv = np.isin(cols.kinds, ("conv2d", "grouped_conv2d", "concat"))
    out[:, 3] = np.where(conv, cols.loop_steps / 1e3, 0.0)
    out[:, 3] = np.where(cols.kinds == "mean", cols.item_steps / 1e3, out[:, 3])
    return out


def analytic_ms(coefs: Mapping[str, np.ndarray], shapes: Sequence[KernelShape]) -> np.ndarray:
    """The analytic term of each shape with its kind's coefficients (unknown kinds: the first
    kind's), floored at 0.1 us."""
    if not shapes:
        return np.zeros(0)
    coef = _coefficients(coefs, shapes)
    return np.maximum(np.einsum("ij,ij->i", analytic_inputs(shapes), coef), 1e-4)


def analytic_parts(coefs: Mapping[str, np.ndarray], shapes: Sequence[KernelShape]) -> np.ndarray:
    """The analytic term of each shape split by column (:data:`ANALYTIC_COLUMNS`: launch,
    arithmetic, bytes, serial steps), in ms, not floored: where a kernel's time goes."""
    if not shapes:
        return np.zeros((0, len(ANALYTIC_COLUMNS)))
    return np.asarray(analytic_inputs(shapes) * _coefficients(coefs, shapes))


def _coefficients(coefs: Mapping[str, np.ndarray], shapes: Sequence[KernelShape]) -> np.ndarray:
    fallback = next(iter(coefs.values()))
    coef = np.zeros((len(shapes), len(ANALYTIC_COLUMNS)))
    for i, s in enumerate(shapes):
        c = np.asarray(coefs.get(s.kind, fallback), dtype=float)
        coef[i, : c.size] = c  # an older bundle has fewer columns: the rest cost nothing
    return coef


def feature_matrix(
    shapes: Sequence[KernelShape], kinds: Sequence[str], analytic_ms: np.ndarray
) -> np.ndarray:
    """The regressors' input, columns as in :data:`FEATURE_NAMES`."""
    cols = _Columns(shapes)
    code = {k: i for i, k in enumerate(kinds)}
    c = cols.c
    # A concatenation copies every slice of every input: its work is its output; how the
    # channels split among the inputs (the data's "input channels" is the first input's) is
    # not, so its input-channel columns are 0 and trees do not read it as a wide convolution.
    cat0 = cols.kinds == "concat"
    x = np.column_stack(
        [
            np.array([code.get(str(k), -1) for k in cols.kinds], dtype=float),
            _vlog2(c["h_in"] * c["w_in"]),
            _vlog2(c["h_out"] * c["w_out"]),
            _vlog2(np.where(cat0, 0, c["cin"])),
            _vlog2(c["cout"]),
            _vlog2(np.where(cat0, 0, cols.slices_in)),
            _vlog2(cols.slices_out),
            c["kernel"],
            c["stride"],
            _vlog2(c["groups"]),
            c["winograd"],
            c["n_inputs"],
            c["linked_unary"],
            c["linked_binary"],
            _vlog2(cols.flops_eff),
            _vlog2(cols.bytes_moved),
            _vlog2(cols.flops_eff / np.maximum(cols.bytes_moved, 1)),
            cols.padding_ratio,
            np.log2(np.maximum(np.asarray(analytic_ms, dtype=float), 1e-6)),
            _vlog2(np.where(cat0, 0, c["cin"] / np.maximum(c["groups"], 1))),
            _vlog2(cols.tasks),
            _vlog2(cols.weight_bytes),
            _vlog2(cols.out_bytes),
            _vlog2(cols.loop_steps),
            cols.util_xy,
            cols.util_z,
            _vlog2(cols.work_groups),
            c["conv_constants"],
            _vlog2(cols.block),
            cols.dispatch_util,
            _vlog2(cols.waves),
            _vlog2(cols.item_steps),
            _vlog2(cols.wave_steps),
        ]
    )
    return x.reshape(len(shapes), len(FEATURE_NAMES))
