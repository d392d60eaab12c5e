"""A GPU kernel's :class:`~tflat.predict.features.KernelShape`, built alike from a USC per-op
row (training) and from a kernel of a real graph (estimating), so a predictor trained on one
applies to the other. Winograd and ConvConstants are decided by the delegate's rules
(:mod:`tflat.gpu.partition`), never guessed from a name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from tflat.gpu.dispatch import base_family
from tflat.gpu.partition import GpuRules, conv_constants_chosen, winograd_chosen
from tflat.model.ops import Graph, Op
from tflat.predict.features import BYTES_PER_ELEMENT, KernelShape

_BINARY_LINKED = {"ADD", "MUL", "SUB", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "POW"}


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
    family = base_family(gpu_family)
    wino = kind == "conv2d" and winograd_chosen(
        kernel=(k, k),
        stride=(stride, stride),
        dilation=(1, 1),
        groups=groups,
        cin=cin,
        cout=cout,
        out_h=h_out,
        out_w=h_out,
        gpu_family=family,
        rules=rules,
    )
    constants = kind == "conv2d" and conv_constants_chosen(
        kernel=(k, k), groups=groups, cin=cin, cout=cout, gpu_family=family, rules=rules
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
        conv_constants=constants,
        gpu_family=gpu_family,
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


def ops_by_index(graph: Graph) -> dict[int, Op]:
    return {op.index: op for op in graph.ops}


def shape_from_kernel(
    graph: Graph,
    op_indices: Sequence[int],
    kind: str,
    name: str,
    by_index: Mapping[int, Op] | None = None,
    gpu_family: str = "default",
) -> KernelShape:
    """The :class:`KernelShape` of a kernel of ``graph`` (main op first in ``op_indices``);
    pass ``by_index`` (:func:`ops_by_index`) when calling it for many kernels."""
    by_index = by_index if by_index is not None else ops_by_index(graph)
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
        kernel_taps=kh * kw if kind not in ("mean", "concat") and kh != kw else 0,
        stride=sh,
        groups=main.groups,
        n_inputs=n_inputs,
        linked_unary=len(linked) - binary,
        linked_binary=binary,
        winograd="winograd" in name,
        flops=flops,
        conv_constants=kind == "conv2d"
        and "winograd" not in name
        and conv_constants_chosen(
            kernel=(kh, kw),
            groups=main.groups,
            cin=cin,
            cout=cout,
            gpu_family=base_family(gpu_family),
        ),
        gpu_family=gpu_family,
    )


def output_bytes(graph: Graph, main_index: int, by_index: Mapping[int, Op] | None = None) -> int:
    """fp16 bytes a kernel writes (for kernels the op-level data never lists)."""
    by_index = by_index if by_index is not None else ops_by_index(graph)
    op = by_index.get(main_index)
    if op is None or not op.outputs:
        return 0
    h, w, c = _nhwc(op.outputs[0].shape)
    return h * w * 4 * math.ceil(c / 4) * BYTES_PER_ELEMENT


def as_pointwise(shape: KernelShape) -> KernelShape:
    """The 1x1 convolution that does the work of ``shape``'s kxk (or kh x kw) one: its input
    channels times the taps (the image-to-column view: same FLOPs, weights and serial loop of
    one work item), its output and stride unchanged."""
    from dataclasses import replace

    return replace(
        shape,
        kernel=1,
        kernel_taps=0,
        cin=shape.cin * shape.taps,
        h_in=shape.h_out * shape.stride,
        w_in=shape.w_out * shape.stride,
        conv_constants=False,
    )
