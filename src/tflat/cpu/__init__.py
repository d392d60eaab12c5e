"""The CPU room: what LiteRT's XNNPACK delegate does to a graph, and latency on a CPU.

:mod:`tflat.cpu.xnnpack` applies XNNPACK's rules (``rules/xnnpack.toml``) and returns the same
kernel records as :mod:`tflat.gpu`; :mod:`tflat.cpu.features` reads a kernel's work,
:mod:`tflat.cpu.regressor` fits one latency model per op type on single-op measurements taken
by ``tflat calibrate``, and :mod:`tflat.cpu.predictor` composes them into a whole model;
:mod:`tflat.cpu.delegates` partitions a graph under any delegate's rules by name. Importing this
package loads nothing heavy.
"""
