"""The kernels of a graph under any delegate tflat knows, chosen by the rules' name.

Why in the CPU room: a predictor calibrated from measured single-op kernels
(:mod:`tflat.cpu.predictor`) runs on whichever delegate the device was calibrated with,
XNNPACK on a CPU (``rules="xnnpack"``) or the GPU delegate on a phone calibrated on its GPU
(``rules="tflite_gpu"``), so this room reads both. :mod:`tflat.gpu` never reads this one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tflat.gpu.kernel import Kernel
    from tflat.gpu.partition import GpuRules
    from tflat.model.ops import Graph

#: The rules name of LiteRT's CPU delegate; every other name is a GPU delegate's rules.
XNNPACK = "xnnpack"


def partition(
    graph: Graph, rules: str | GpuRules = "tflite_gpu", gpu_family: str = "default"
) -> tuple[Kernel, ...]:
    """The kernels the delegate named by ``rules`` runs for ``graph.ops``, in execution order:
    XNNPACK's for ``"xnnpack"``, else the GPU delegate's (:func:`tflat.gpu.partition`, whose
    kernel choices depend on ``gpu_family``). Every op is in exactly one kernel."""
    if rules == XNNPACK:
        from tflat.cpu.xnnpack import partition as xnnpack_partition

        return xnnpack_partition(graph)
    from tflat.gpu.partition import partition as gpu_partition

    return gpu_partition(graph, rules=rules, gpu_family=gpu_family)
