"""What the TFLite GPU delegate does to a graph: which ops it takes, what it fuses, which
kernel it picks, and how it dispatches that kernel on each GPU family.

:func:`partition` turns a :class:`~tflat.model.Graph` into the kernels the delegate runs; every
op is in exactly one kernel (the :class:`Kernel` record is shared with XNNPACK's partition in
:mod:`tflat.cpu`). The rules are data (``rules/<name>.toml``).
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
