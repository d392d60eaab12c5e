"""The unit of prediction: one GPU kernel, i.e. one main op plus the ops fused into it."""

from __future__ import annotations

from dataclasses import dataclass

#: The kernel kinds every rule set maps ops to; the predictors have one family per kind.
KINDS = (
    "conv2d",
    "depthwise_conv2d",
    "grouped_conv2d",
    "transpose_conv",
    "fully_connected",
    "pool",
    "mean",
    "concat",
    "elementwise",
    "resize",
    "softmax",
    "pad",
    "free",
    "cpu_fallback",
    "other",
)


@dataclass(frozen=True)
class Kernel:
    """One kernel the delegate runs.

    ``op_indices`` are ``Op.index`` values of the graph's main subgraph: the main op first, then
    the ops fused into it (a merged PAD, linked activations and element-wise ops). ``name`` is
    the kernel the delegate chooses (``convolution_winograd_4x4_6x6``); ``note`` says why
    (fused ops, unsupported op, free op).
    """

    index: int
    name: str
    kind: str
    op_indices: tuple[int, ...]
    on_gpu: bool
    note: str = ""

    @property
    def main_op(self) -> int:
        return self.op_indices[0]

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "op_indices": list(self.op_indices),
            "on_gpu": self.on_gpu,
            "note": self.note,
        }
