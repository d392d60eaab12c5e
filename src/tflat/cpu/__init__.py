"""The CPU room: what LiteRT's XNNPACK delegate does to a graph, and latency on a CPU.

:mod:`tflat.cpu.xnnpack` applies XNNPACK's rules (``rules/xnnpack.toml``) and returns the same
kernel records as :mod:`tflat.gpu`; :mod:`tflat.cpu.predictor` prices them from single-op
measurements taken by ``tflat calibrate``; :mod:`tflat.cpu.delegates` partitions a graph under
any delegate's rules by name. Importing this package loads nothing heavy.
"""
