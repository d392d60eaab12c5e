"""What a kernel asks of the hardware: bytes moved, FLOPs, serial steps, launches.

The analytic and CPU pricers turn these quantities into milliseconds; this module only counts.
Counting follows the GPU delegate's view (as :mod:`tflat.predict.features` does for the learned
kinds): tensors are stored in slices of 4 channels (a 3-channel tensor moves as much as a
4-channel one), 2 bytes an element in fp16 (4 in fp32), the last dimension is the channel
axis and everything before it is pixels. A kernel reads each non-constant input once and
writes its output once; ops linked into it read their extra operands.

Op classes (:data:`OP_CLASS`) say how a kernel's work is laid out: ``elementwise`` (one output
element per work item), ``copy`` (data movement), ``layout`` (a copy that reorders: transpose,
depth-to-space), ``reduce`` (a work item loops over the reduced axis), ``softmax`` (reads its
input twice: max and sum, then the normalised output), ``resize``, ``matmul`` (FLOPs-bound:
convolutions, fully connected, batched matrix products) and ``pool``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from tflat.gpu.dispatch import gpu_facts, reduce_dispatch, simple_dispatch
from tflat.model.cost import DATA_MOVEMENT, ELEMENTWISE, REDUCTIONS
from tflat.model.ops import Op, TensorInfo
from tflat.predict.rates import KernelWork

_MATMUL = frozenset(
    {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "CONV_3D", "FULLY_CONNECTED",
     "BATCH_MATMUL", "CUSTOM:Convolution2DTransposeBias", "UNIDIRECTIONAL_SEQUENCE_LSTM"}
)  # fmt: skip
_LAYOUT = frozenset({"TRANSPOSE", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "GATHER", "GATHER_ND"})
_POOL = frozenset({"MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_POOL_2D", "CUSTOM:MaxPoolingWithArgmax2D"})

#: FLOPs of one output element of a transcendental op, relative to an add: the delegate
#: evaluates exp/log/tanh/sigmoid with a few multiply-adds each (a count, not a measurement).
_TRANSCENDENTAL = {"EXP": 4, "LOG": 4, "TANH": 6, "LOGISTIC": 6, "GELU": 8, "POW": 8, "SIN": 4,
                   "COS": 4, "RSQRT": 2, "SQRT": 2, "HARD_SWISH": 3, "ELU": 4}  # fmt: skip


def op_class(op_type: str) -> str:
    """The class of an op type (see the module docstring)."""
    if op_type in _MATMUL:
        return "matmul"
    if op_type in _POOL:
        return "pool"
    if op_type in REDUCTIONS:
        return "reduce"
    if op_type in ("SOFTMAX", "LOG_SOFTMAX", "L2_NORMALIZATION"):
        return "softmax"
    if op_type in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        return "resize"
    if op_type in _LAYOUT:
        return "layout"
    if op_type in DATA_MOVEMENT:
        return "copy"
    if op_type in ELEMENTWISE:
        return "elementwise"
    return "copy"


def nhwc(shape: Sequence[int]) -> tuple[int, int]:
    """(pixels, channels) of a tensor as the delegate lays it out: the last axis is the
    channels, every axis before it (batch included) counts as pixels; a scalar or a vector
    is one pixel of that many channels. Dynamic dimensions (-1) count as 1."""
    dims = [max(int(d), 1) for d in shape] or [1]
    return math.prod(dims[:-1]), dims[-1]


def tensor_mbytes(t: TensorInfo, bytes_per_element: int, slices: bool = True) -> float:
    """MB of a tensor stored in slices of 4 channels (the GPU's layout; ``slices=False``: as
    the CPU stores it, channels unpadded)."""
    pixels, channels = nhwc(t.shape)
    stored = 4 * math.ceil(channels / 4) if slices else channels
    return pixels * stored * bytes_per_element / 1e6


def kernel_work(
    ops: Sequence[Op],
    gpu_family: str = "default",
    bytes_per_element: int = 2,
    slices: bool = True,
) -> KernelWork:
    """The work of a kernel made of ``ops`` (main op first, then the ops linked into it)."""
    main = ops[0]
    cls = op_class(main.type)

    def mbytes(ts: Sequence[TensorInfo]) -> float:
        return sum(tensor_mbytes(t, bytes_per_element, slices) for t in ts)

    mb = mbytes(main.activations) + mbytes(main.outputs)
    if cls == "softmax":  # max and sum, then the normalised output: the input is read twice
        mb += mbytes(main.activations)
    if cls == "matmul":  # weights stream from memory in a whole inference
        mb += mbytes([t for t in main.inputs if t.is_constant])
    linked_ids = {t.index for op in ops for t in op.outputs}
    for op in ops[1:]:
        mb += mbytes([t for t in op.activations if t.index not in linked_ids])
    gflops = sum(_flops(op) for op in ops) / 1e9
    out = main.outputs[0] if main.outputs else (main.inputs[0] if main.inputs else None)
    steps = _wave_steps(main, cls, out, gpu_family)
    # a batched matrix product is three kernels on the delegate (operation_selector.cc:
    # transpose of the second operand, conversion to weights, then the convolution)
    launches = 3 if main.type == "BATCH_MATMUL" and len(main.activations) == 2 else 1
    return KernelWork(cls, mb, gflops, steps, launches)


def _flops(op: Op) -> float:
    if op.flops:
        return float(op.flops) * _TRANSCENDENTAL.get(op.type, 1)
    return float(sum(t.numel for t in op.outputs))


def _wave_steps(op: Op, cls: str, out: TensorInfo | None, gpu_family: str) -> float:
    """ceil(waves) x steps of one work item, with the delegate's simple dispatch (one output
    element-slice per item) or, for a reduction over H x W, its Reduce dispatch."""
    if out is None:
        return 1.0
    facts = gpu_facts(gpu_family)
    slots = facts.compute_units * facts.wave_size
    pixels, channels = nhwc(out.shape)
    slices = math.ceil(channels / 4)
    steps = 1.0
    if cls in ("reduce", "softmax", "matmul") and op.inputs:
        in_pixels, in_channels = nhwc(op.inputs[0].shape)
        if cls == "reduce" and in_pixels > pixels:  # over H x W: the delegate's Reduce
            items, reads = reduce_dispatch(
                gpu_family, np.array([in_pixels]), np.array([1.0]), np.array([slices])
            )
            return float(math.ceil(max(items[0] / slots, 1)) * reads[0])
        if cls in ("reduce", "softmax"):  # over the channels: one item per pixel loops over
            # the slices (a softmax twice: the max and sum, then the normalised output)
            steps = math.ceil(in_channels / 4) * (2 if cls == "softmax" else 1)
            slices = 1
        elif cls == "matmul":
            steps = math.ceil(in_channels / 4)
    if cls == "pool" and op.kernel:
        steps = float(op.kernel[0] * op.kernel[1])
    d = simple_dispatch(np.array([pixels]), np.array([1.0]), np.array([slices]))
    return float(math.ceil(max(d.launched[0] / slots, 1)) * steps)


def kernel_ops(op_indices: Sequence[int], ops_by_index: Mapping[int, Op]) -> list[Op]:
    """The ops of a kernel in its order (main op first), skipping indices not in the graph."""
    return [ops_by_index[i] for i in op_indices if i in ops_by_index]
