"""The unit of prediction: one kernel, i.e. one main op plus the ops a delegate fuses into it.

The record is the same whichever delegate made it (the GPU delegate here, XNNPACK in
:mod:`tflat.cpu`), so pricing and estimation read one shape of kernel.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from tflat.errors import SpecError

#: The kernel kinds every rule set maps ops to; the predictors have one family per kind.
KINDS = (
    "conv2d",
    "depthwise_conv2d",
    "grouped_conv2d",
    "transpose_conv",
    "fully_connected",
    "pool",
    "mean",
    "reduce",
    "batch_matmul",
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


def read_rules(name: str, what: str = "delegate", package: str = "tflat.gpu") -> dict[str, Any]:
    """The rules shipped as ``<package>/rules/<name>.toml`` (``tflat/gpu/rules`` for the GPU
    delegate, ``tflat/cpu/rules`` for XNNPACK), parsed; unknown name -> SpecError."""
    res = resources.files(package).joinpath("rules", f"{name}.toml")
    try:
        text = res.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise SpecError(f"no {what} rules named {name!r}") from exc
    return tomllib.loads(text)
