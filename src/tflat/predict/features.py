"""Features of one GPU kernel: what the delegate actually computes and moves.

The same :class:`KernelShape` is built from a USC per-op row and from a kernel of a real graph,
so a predictor trained on one applies to the other. Channels are packed in slices of 4 by the
GPU delegate (a 3-channel tensor costs as much as a 4-channel one), tensors are fp16 on the GPU,
and a Winograd convolution does fewer multiplies: the features say so, plus FLOPs, bytes moved
and arithmetic intensity.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tflat.gpu.partition import GpuRules, winograd_chosen
from tflat.model.ops import Graph, Op

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
)

BYTES_PER_ELEMENT = 2  # fp16 tensors on the GPU
_BINARY_LINKED = {"ADD", "MUL", "SUB", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "POW"}


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
            return self.kernel * self.kernel * cin * 4 * self.slices_out * BYTES_PER_ELEMENT
        if self.kind == "depthwise_conv2d":
            return self.kernel * self.kernel * 4 * self.slices_out * BYTES_PER_ELEMENT
        return 0

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


def analytic_inputs(shapes: Sequence[KernelShape]) -> np.ndarray:
    """Columns [1, GFLOP executed, MB moved] of the analytic (roofline-like) term."""
    out = np.ones((len(shapes), 3))
    for i, s in enumerate(shapes):
        out[i, 1] = s.flops_eff / 1e9
        out[i, 2] = s.bytes_moved / 1e6
    return out


def feature_matrix(
    shapes: Sequence[KernelShape], kinds: Sequence[str], analytic_ms: np.ndarray
) -> np.ndarray:
    """The regressors' input, columns as in :data:`FEATURE_NAMES`."""
    code = {k: i for i, k in enumerate(kinds)}
    x = np.zeros((len(shapes), len(FEATURE_NAMES)))
    for i, s in enumerate(shapes):
        bytes_moved = s.bytes_moved
        x[i] = (
            code.get(s.kind, -1),
            _log2(s.h_in * s.w_in),
            _log2(s.h_out * s.w_out),
            _log2(s.cin),
            _log2(s.cout),
            _log2(s.slices_in),
            _log2(s.slices_out),
            s.kernel,
            s.stride,
            _log2(s.groups),
            float(s.winograd),
            s.n_inputs,
            s.linked_unary,
            s.linked_binary,
            _log2(s.flops_eff),
            _log2(bytes_moved),
            _log2(s.flops_eff / max(bytes_moved, 1)),
            s.padding_ratio,
            math.log2(max(float(analytic_ms[i]), 1e-6)),
        )
    return x


# ---------------------------------------------------------------- from USC per-op rows

_LINKED = re.compile(r"_linked_:_([a-z_]+?)_\d+")


def _usc_kind(operation: str, kernel_name: str) -> str:
    if kernel_name.startswith("fully_connected"):
        return "fully_connected"
    if kernel_name.startswith("mean"):
        return "mean"
    return {
        "CONV_2D": "conv2d",
        "CONV_2D_GROUP": "grouped_conv2d",
        "DEPTHWISE_CONV_2D": "depthwise_conv2d",
        "FULLY_CONNECTED": "fully_connected",
        "MEAN": "mean",
        "MAX_POOL_2D": "pool",
        "AVERAGE_POOL_2D": "pool",
        "CONCATENATION": "concat",
    }.get(operation, "other")


def shape_from_usc(
    operation: str,
    feature: dict[str, int],
    kernel_name: str,
    gpu_family: str,
    rules: GpuRules | None = None,
) -> KernelShape:
    """A USC per-op row as a :class:`KernelShape` (Winograd decided by the rules, not the name,
    exactly as for a real graph)."""
    f = feature
    kind = _usc_kind(operation, kernel_name)
    linked = [m.upper() for m in _LINKED.findall(kernel_name)]
    binary = sum(1 for t in linked if t in _BINARY_LINKED)
    h_in = f.get("Input_shape", 1)
    cin = f.get("Input_channel", 1)
    h_out = f.get("Output_shape", h_in)
    cout = f.get("Filter", cin)
    k = f.get("Kernel", 1)
    stride = f.get("Stride", 1)
    groups = f.get("Group", 1)
    n_inputs = 1
    if kind == "depthwise_conv2d":
        cout, groups = cin * max(f.get("Filter", 1), 1), cin
    elif kind == "mean":
        cout, h_out, k = cin, 1, h_in
    elif kind == "fully_connected":
        h_in = h_out = 1
    elif kind == "pool":
        cout = cin
    elif kind == "concat":
        n_inputs, k = max(f.get("Kernel", 2), 1), 1
    wino = kind == "conv2d" and winograd_chosen(
        kernel=(k, k),
        stride=(stride, stride),
        dilation=(1, 1),
        groups=groups,
        cin=cin,
        cout=cout,
        out_h=h_out,
        out_w=h_out,
        gpu_family=gpu_family,
        rules=rules,
    )
    return KernelShape(
        kind=kind,
        h_in=h_in,
        w_in=h_in,
        cin=cin,
        h_out=h_out,
        w_out=h_out,
        cout=cout,
        kernel=k,
        stride=stride,
        groups=groups,
        n_inputs=n_inputs,
        linked_unary=len(linked) - binary,
        linked_binary=binary,
        winograd=wino,
        flops=f.get("FLOPS", 0),
    )


# ---------------------------------------------------------------- from a real graph


def _nhwc(shape: tuple[int, ...]) -> tuple[int, int, int]:
    dims = [max(d, 1) for d in shape]
    if len(dims) == 4:
        return dims[1], dims[2], dims[3]
    if len(dims) == 3:
        return dims[0], dims[1], dims[2]
    if len(dims) == 2:
        return 1, 1, dims[1]
    return 1, 1, dims[0] if dims else 1


def shape_from_kernel(graph: Graph, op_indices: Sequence[int], kind: str, name: str) -> KernelShape:
    """The :class:`KernelShape` of a kernel of ``graph`` (main op first in ``op_indices``)."""
    by_index = {op.index: op for op in graph.ops}
    main: Op = by_index[op_indices[0]]
    fused = [by_index[i] for i in op_indices[1:] if i in by_index]
    linked = [op for op in fused if op.type not in ("PAD", "PADV2", "MIRROR_PAD")]
    binary = sum(1 for op in linked if len(op.activations) > 1)
    data = main.activations
    h_in, w_in, cin = _nhwc(data[0].shape) if data else (1, 1, 1)
    h_out, w_out, cout = _nhwc(main.outputs[0].shape) if main.outputs else (1, 1, 1)
    pads = [op for op in fused if op.type in ("PAD", "PADV2", "MIRROR_PAD")]
    if pads and pads[0].outputs:
        # USC rows describe a conv by its (explicitly padded) input; so do we.
        h_in, w_in, cin = _nhwc(pads[0].outputs[0].shape)
    kh, kw = main.kernel or (1, 1)
    sh, _ = main.stride or (1, 1)
    n_inputs = len(data)
    flops = main.flops
    if kind == "mean":
        kh = h_in
    if kind == "concat":
        kh = 1
    return KernelShape(
        kind=kind,
        h_in=h_in,
        w_in=w_in,
        cin=cin,
        h_out=h_out,
        w_out=w_out,
        cout=cout,
        kernel=max(kh, kw) if kind != "mean" else kh,
        stride=sh,
        groups=main.groups,
        n_inputs=n_inputs,
        linked_unary=len(linked) - binary,
        linked_binary=binary,
        winograd="winograd" in name,
        flops=flops,
    )


def output_bytes(graph: Graph, main_index: int) -> int:
    """fp16 bytes a kernel writes (for kernels the op-level data never lists)."""
    op = next((o for o in graph.ops if o.index == main_index), None)
    if op is None or not op.outputs:
        return 0
    h, w, c = _nhwc(op.outputs[0].shape)
    return h * w * 4 * math.ceil(c / 4) * BYTES_PER_ELEMENT
