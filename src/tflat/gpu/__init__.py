"""What a delegate does to a graph: which ops it takes, what it fuses, which kernel it picks.

:func:`partition` turns a :class:`~tflat.model.Graph` into the kernels a delegate runs; every
op is in exactly one kernel. The rules are data (``rules/<name>.toml``).
"""

from tflat.gpu.kernel import KINDS, Kernel
from tflat.gpu.partition import GPU_FAMILIES, GpuRules, load_gpu_rules, partition, winograd_chosen

__all__ = [
    "GPU_FAMILIES",
    "KINDS",
    "GpuRules",
    "Kernel",
    "load_gpu_rules",
    "partition",
    "winograd_chosen",
]
